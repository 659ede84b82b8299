//! `vouch-admission --help`: environment variables are named, their values never shown.

use std::process::Command;

#[test]
fn help_shows_env_names_without_values() {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-admission"))
        .arg("--help")
        .env_clear()
        .env("VOUCH_POLICY", "/secret/policy.yaml")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    assert!(help.contains("[env: VOUCH_POLICY]"), "{help}");
    assert!(help.contains("[env: VOUCH_REGISTRY_CA]"), "{help}");
    assert!(!help.contains("=]"), "no flag shows an env value: {help}");
    assert!(!help.contains("/secret/policy.yaml"), "{help}");
}
