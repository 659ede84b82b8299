//! `vouch`: the command line. Parsing and output only; the work is in the `vouch-*` crates.

#![forbid(unsafe_code)]

mod args;
mod cmd;
mod failure;
mod files;
mod progress;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.print();
            failure.exit_code()
        }
    }
}
