//! What both benchmark programs share: the entry point, the `backup` binary, child processes,
//! the work directory and the report table.

pub mod process;
pub mod report;
pub mod workdir;

use std::error::Error;
use std::process::ExitCode;

pub type Result<T> = std::result::Result<T, Box<dyn Error>>;

pub const MIB: u64 = 1024 * 1024;
pub const KIB: u64 = 1024;

/// The `main` of a benchmark program `name`: runs `run` only when `--bench` is among the
/// arguments, and reports its error.
pub fn main(name: &str, run: fn() -> Result<()>) -> ExitCode {
    // `cargo test --all-targets` runs bench programs too; only `cargo bench`
    // passes `--bench`, and only then is the (long) benchmark run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("{name} benchmark: run it with `cargo bench --bench {name}`");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench {name}: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The number in environment variable `name`, at least 1; `default` when it is not set.
pub fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{name}={v:?} is not a number"))?;
            if n == 0 {
                return Err(format!("{name} must be at least 1").into());
            }
            Ok(n)
        }
        Err(_) => Ok(default),
    }
}

/// The cores this program may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
