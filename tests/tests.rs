//! End-to-end tests: the real `backup` binary against local repositories
//! and a real Garage S3 server.

mod cluster;
mod common;
mod crash;
mod daemon;
mod damage;
mod exits;
mod faults;
mod fidelity;
mod forget;
mod local;
mod postgres;
mod power_loss;
mod prune;
mod rollback;
mod s3;
mod system;
