//! Helpers shared by the CLI integration tests (each test file uses some of them).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// `vouch ARGS` run in the repository root with an empty environment.
pub fn vouch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .current_dir(repo())
        .env_clear()
        .output()
        .unwrap()
}

/// Run `vouch ARGS` (as [`vouch`]), expect exit `code`, and return (stdout, stderr).
#[track_caller]
pub fn run(args: &[&str], code: i32) -> (String, String) {
    let o = vouch(args);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(code),
        "vouch {args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

/// A copy of the example model `testdata/models/tiny-llm` at `dir/tiny-llm`.
pub fn copy_example_model(dir: &Path) -> PathBuf {
    let model = dir.join("tiny-llm");
    std::fs::create_dir(&model).unwrap();
    for e in std::fs::read_dir(repo().join("testdata/models/tiny-llm")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), model.join(e.file_name())).unwrap();
    }
    model
}
