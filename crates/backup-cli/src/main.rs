//! The `backup` command.

mod cli;
mod commands;
mod exit;
mod output;
mod settings;

fn main() {
    let code = cli::run();
    std::process::exit(code);
}
