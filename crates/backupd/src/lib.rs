//! backupd: the daemon that takes scheduled snapshots, keeps proving they
//! restore (verification with rotating read-data subsets, restore drills),
//! applies retention and prunes, and says how it goes over HTTP
//! (`/healthz`, `/metrics`, `/v1/status`).
//!
//! `main` is a thin shell over [`run`], which tests drive directly.

pub mod backend;
pub mod clock;
pub mod daemon;
pub mod http;
pub mod jobs;
pub mod loaded;
pub mod metrics;
pub mod notify;
pub mod planned;
pub mod planned_http;
pub mod schedule;
pub mod shared;
pub mod state;

pub use backend::{Backend, RealBackend};
pub use clock::Clock;
pub use daemon::Control;
pub use loaded::Loaded;
pub use shared::Shared;

use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Runs the daemon with the system description at `config`, serving HTTP on
/// `listener`, until `control` says [`Control::Shutdown`] (or closes). A
/// running job is cancelled cleanly on shutdown: no half snapshot, locks
/// released.
pub async fn run(
    config: &Path,
    listener: tokio::net::TcpListener,
    control: mpsc::Receiver<Control>,
) -> Result<()> {
    let loaded = Loaded::load(config)?;
    let shared = Arc::new(Shared::new(loaded, Clock::Wall, Arc::new(RealBackend))?);
    let addr = listener
        .local_addr()
        .context("the listener has no address")?;
    tracing::info!(%addr, jobs = shared.config().system.schedules.len(), "backupd started");
    let (stop_http, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = http::router(shared.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    let result = daemon::schedule_loop(shared, control).await;
    let _ = stop_http.send(());
    let _ = server.await;
    tracing::info!("backupd stopped");
    result
}
