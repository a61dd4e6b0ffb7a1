//! `backupd --config FILE`: parses flags, sets up logging and signals,
//! binds the listener, and runs [`backupd::run`].

use anyhow::{Context, Result};
use backupd::Control;
use clap::Parser;
use std::path::PathBuf;
use tokio::signal::unix::{signal, SignalKind};

/// The backup daemon: scheduled snapshots, verification, restore drills,
/// retention and prune, with /healthz and /metrics.
#[derive(Debug, Parser)]
#[command(name = "backupd", version)]
struct Args {
    /// The system description (the same file as `backup --config`), with [daemon] and [[schedule]].
    #[arg(long, env = "BACKUP_CONFIG")]
    config: PathBuf,
    /// Log lines as text or JSON.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    /// Listen here instead of daemon.listen (e.g. 127.0.0.1:0 in tests).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_logging(&args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "backupd failed");
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: Args) -> Result<()> {
    // The file is checked before anything binds, so a bad key fails at once.
    let loaded = backupd::Loaded::load(&args.config)?;
    let addr = args.listen.unwrap_or(loaded.daemon.listen);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (in use? set daemon.listen)"))?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            let c = tokio::select! {
                _ = term.recv() => Control::Shutdown,
                _ = int.recv() => Control::Shutdown,
                _ = hup.recv() => Control::Reload,
            };
            if tx.send(c).await.is_err() {
                return;
            }
        }
    });
    backupd::run(&args.config, listener, rx).await
}
