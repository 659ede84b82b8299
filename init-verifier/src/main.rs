//! `vouch-init`: runs before the model server, on the same volume, and exits non-zero unless
//! every model file matches the signed, pinned combined attestation.
//!
//! Thin by design: flags (or the matching `VOUCH_*` environment variables) become a
//! [`config::Config`]; [`run::run`] does the checks with the verification crates; `main`
//! writes the outcome (one JSON line on stdout, a reason on stderr and in the termination
//! message file) and maps it to the exit code: 0 verified, 1 rejected, 2 could not decide.
//! No signing, OIDC or web-server code is linked (see ARCHITECTURE.md).

#![forbid(unsafe_code)]

mod config;
mod pull;
mod run;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let args = config::Args::parse();
    let default_log = std::path::Path::new("/dev/termination-log");
    let termination_log = args
        .termination_log
        .clone()
        .or_else(|| default_log.exists().then(|| default_log.to_path_buf()));
    let outcome = config::Config::try_from(args).and_then(|c| run::run(&c));
    let seconds = started.elapsed().as_secs_f64();
    let (code, line, reason) = run::report(&outcome, seconds);
    println!("{line}");
    if let Some(reason) = &reason {
        eprintln!("{reason}");
    }
    let message = reason.unwrap_or_else(|| line.clone());
    if let Some(path) = termination_log
        && let Err(e) = std::fs::write(&path, message.as_bytes())
    {
        eprintln!(
            "warning: cannot write termination message to `{}`: {e}",
            path.display()
        );
    }
    ExitCode::from(code)
}
