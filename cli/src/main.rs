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
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let json = cli.json();
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if json {
                failure.print_json();
            }
            failure.print();
            failure.exit_code()
        }
    }
}

/// A command line clap refused: its message on stderr (exit 2) and, when `--json` was
/// asked for, the same failure as JSON on stdout. `--help` and `--version` print as usual.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    if matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    if std::env::args_os().any(|a| a == "--json") {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first);
        failure::Failure::usage(message)
            .hint("see `--help` for the flags this command takes")
            .print_json();
    }
    // Exits with clap's usage code, 2.
    e.exit()
}
