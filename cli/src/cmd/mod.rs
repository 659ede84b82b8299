//! Step two: typed settings, the work, and the output of each command.

mod attest;
mod key;
pub mod keyless;
mod model;
mod model_artifact;
pub mod policy;
mod registry;
pub mod sign_bundle;
pub mod verify_bundle;

use crate::args::{Cli, Command};
use crate::failure::Result;

pub fn run(cli: Cli) -> Result {
    match cli.command {
        Command::Key(k) => key::run(k),
        Command::Model(m) => model::run(m),
        Command::Attest(a) => attest::attest(a),
        Command::Verify(v) => attest::verify(v),
        Command::Inspect(i) => attest::inspect(i),
        Command::Policy(p) => policy::run(p),
        Command::VerifyBundle(v) => verify_bundle::run(v),
        Command::SignBundle(s) => sign_bundle::run(s),
    }
}
