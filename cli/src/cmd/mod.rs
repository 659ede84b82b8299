//! Step two: typed settings, the work, and the output of each command.

mod key;
mod model;

use crate::args::{Cli, Command};
use crate::failure::Result;

pub fn run(cli: Cli) -> Result {
    match cli.command {
        Command::Key(k) => key::run(k),
        Command::Model(m) => model::run(m),
    }
}
