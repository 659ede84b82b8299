//! Helpers shared by the CLI integration tests (each test file uses some of them).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository root (testdata/ lives there).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A key file in testdata/keys.
pub fn key(name: &str) -> PathBuf {
    repo().join("testdata/keys").join(name)
}

/// A run's standard error, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
