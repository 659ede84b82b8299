//! `vouch model verify` against signatures recorded from the real model-signing 1.1.1
//! (`testdata/oms/`, made by `scripts/make-oms-fixtures`; how each was made:
//! `testdata/README.md`). No Python needed: the live two-way check is `scripts/interop-oms`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{key, repo, stderr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn oms(name: &str) -> PathBuf {
    repo().join("testdata/oms").join(name)
}

fn model() -> PathBuf {
    repo().join("testdata/models/tiny-llm")
}

/// Run `vouch model verify MODEL --signature testdata/oms/SIG` with `trust` arguments.
fn verify(model: &Path, sig: &str, trust: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["model", "verify"])
        .arg(model)
        .arg("--signature")
        .arg(oms(sig))
        .args(trust)
        .output()
        .unwrap()
}

fn with_key(model: &Path, sig: &str, public: &str) -> Output {
    let k = key(public);
    verify(model, sig, &["--key", k.to_str().unwrap()])
}

fn with_ca(model: &Path, sig: &str, ca: &str) -> Output {
    let ca = oms(ca);
    verify(model, sig, &["--certificate-chain", ca.to_str().unwrap()])
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

#[track_caller]
fn assert_verified(o: &Output) {
    assert_exit(o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("verified: `tiny-llm`"), "stdout: {out}");
}

#[track_caller]
fn assert_rejected(o: &Output, needles: &[&str]) {
    assert_exit(o, 1);
    let err = stderr(o);
    for n in needles {
        assert!(
            err.to_lowercase().contains(&n.to_lowercase()),
            "stderr does not mention {n:?}:\n{err}"
        );
    }
}

/// A copy of the example model in a temporary directory.
fn model_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tiny-llm");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(model()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    (dir, copy)
}

fn flip_byte(file: &Path, offset: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset] ^= 0xff;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn key_fixture_verifies() {
    assert_verified(&with_key(&model(), "key.sig", "release.pub"));
}

#[test]
fn p384_key_fixture_verifies() {
    assert_verified(&with_key(&model(), "key-p384.sig", "p384.pub"));
}

#[test]
fn certificate_fixture_verifies_with_the_root_ca() {
    let o = with_ca(&model(), "certificate.sig", "ca.pem");
    assert_verified(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("https://ci.example.com/vouch/oms-fixtures"),
        "the signer's identity is shown: {out}"
    );
}

#[test]
fn certificate_fixture_verifies_with_intermediate_and_root_as_authorities() {
    assert_verified(&with_ca(&model(), "certificate.sig", "chain.pem"));
}

#[test]
fn sharded_fixture_with_float_shard_size_verifies() {
    // model-signing writes `"shard_size": 1024.0`; it cannot verify this itself.
    assert_verified(&with_key(&model(), "shards-1024.sig", "release.pub"));
}

#[test]
fn blake3_fixture_verifies() {
    assert_verified(&with_key(&model(), "blake3.sig", "release.pub"));
}

#[test]
fn expired_certificate_fixture_is_rejected() {
    // model-signing 1.1.1 accepts this signature (it checks the chain at the leaf's
    // notBefore); vouch checks at the current time.
    let o = with_ca(&model(), "expired.sig", "ca.pem");
    assert_rejected(&o, &["expired"]);
    assert!(stderr(&o).contains("hint:"), "{}", stderr(&o));
}

#[test]
fn certificate_fixture_under_an_unrelated_ca_is_rejected() {
    let o = with_ca(&model(), "certificate.sig", "other-ca.pem");
    assert_rejected(&o, &["not trusted", "--certificate-chain"]);
}

#[test]
fn key_fixture_against_another_key_is_rejected() {
    let o = with_key(&model(), "key.sig", "other.pub");
    assert_rejected(&o, &["another key", "--key"]);
}

#[test]
fn p384_fixture_against_the_p256_key_is_rejected() {
    let o = with_key(&model(), "key-p384.sig", "release.pub");
    assert_rejected(&o, &["another key"]);
}

#[test]
fn certificate_fixture_given_a_key_is_rejected() {
    let o = with_key(&model(), "certificate.sig", "release.pub");
    assert_rejected(&o, &["certificate", "--certificate-chain"]);
}

#[test]
fn key_fixture_given_certificate_authorities_is_rejected() {
    let o = with_ca(&model(), "key.sig", "ca.pem");
    assert_rejected(&o, &["public key", "--key"]);
}

#[test]
fn modified_model_is_rejected_under_the_key_fixture() {
    let (_dir, copy) = model_copy();
    flip_byte(&copy.join("model.safetensors"), 4000);
    let o = with_key(&copy, "key.sig", "release.pub");
    assert_rejected(&o, &["model.safetensors", "content differs"]);
}

#[test]
fn modified_model_is_rejected_under_the_certificate_fixture() {
    let (_dir, copy) = model_copy();
    flip_byte(&copy.join("tokenizer.json"), 10);
    let o = with_ca(&copy, "certificate.sig", "ca.pem");
    assert_rejected(&o, &["tokenizer.json", "content differs"]);
}

#[test]
fn modified_model_is_rejected_under_the_sharded_fixture_naming_the_shard() {
    let (_dir, copy) = model_copy();
    flip_byte(&copy.join("model.safetensors"), 5000);
    let o = with_key(&copy, "shards-1024.sig", "release.pub");
    assert_rejected(&o, &["model.safetensors` bytes 4096..5120"]);
}

#[test]
fn extra_and_missing_files_are_named() {
    let (_dir, copy) = model_copy();
    std::fs::write(copy.join("backdoor.py"), "import os\n").unwrap();
    std::fs::remove_file(copy.join("generation_config.json")).unwrap();
    let o = with_key(&copy, "key.sig", "release.pub");
    assert_rejected(
        &o,
        &[
            "backdoor.py",
            "not signed",
            "generation_config.json",
            "missing",
        ],
    );
}

#[test]
fn ignore_paths_recorded_by_model_signing_are_honoured() {
    let (_dir, copy) = model_copy();
    std::fs::write(copy.join("README.md"), "changed at will\n").unwrap();
    std::fs::create_dir(copy.join("scratch")).unwrap();
    std::fs::write(copy.join("scratch/notes.txt"), "anything\n").unwrap();
    assert_verified(&with_key(&copy, "ignore-paths.sig", "release.pub"));
}

#[test]
fn ignore_paths_recorded_by_model_signing_do_not_cover_other_files() {
    let (_dir, copy) = model_copy();
    std::fs::write(copy.join("README.md.bak"), "not ignored\n").unwrap();
    let o = with_key(&copy, "ignore-paths.sig", "release.pub");
    assert_rejected(&o, &["README.md.bak", "not signed"]);
}

#[test]
fn git_paths_are_ignored_as_model_signing_records() {
    let (_dir, copy) = model_copy();
    std::fs::create_dir(copy.join(".git")).unwrap();
    std::fs::write(copy.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(copy.join(".gitattributes"), "*.safetensors filter=lfs\n").unwrap();
    assert_verified(&with_key(&copy, "key.sig", "release.pub"));
}

#[test]
fn fixture_copied_into_the_model_is_ignored_when_named_with_signature() {
    let (_dir, copy) = model_copy();
    let inside = copy.join("model.sig");
    std::fs::copy(oms("key.sig"), &inside).unwrap();
    let k = key("release.pub");
    let o = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["model", "verify"])
        .arg(&copy)
        .arg("--signature")
        .arg(&inside)
        .arg("--key")
        .arg(k)
        .output()
        .unwrap();
    assert_verified(&o);
}

// ---------------------------------------------------------------------------------------
// Key usage of the signing certificate. model-signing 1.1.1 accepts a leaf whose KeyUsage
// has digitalSignature or whose ExtendedKeyUsage has codeSigning, and refuses any other.

#[test]
fn leaf_restricted_to_server_auth_is_rejected() {
    // Stricter than model-signing (which accepts it for its digitalSignature key usage):
    // an extended key usage that names other purposes only excludes code signing.
    let o = with_ca(&model(), "server-auth.sig", "ca.pem");
    assert_rejected(&o, &["extended key usage", "code signing"]);
}

#[test]
fn leaf_whose_key_usage_excludes_digital_signature_is_rejected() {
    let o = with_ca(&model(), "key-encipherment.sig", "ca.pem");
    assert_rejected(
        &o,
        &[
            "key usage",
            "digitalSignature",
            "cannot be used for signing",
            "CN=vouch test model signer (key-encipherment)",
        ],
    );
}

#[test]
fn leaf_without_any_key_usage_is_rejected() {
    let o = with_ca(&model(), "no-usage.sig", "ca.pem");
    assert_rejected(
        &o,
        &[
            "usage",
            "cannot be used for signing",
            "CN=vouch test model signer (no-usage)",
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Other shapes model-signing produces

#[test]
fn key_fixture_verifies_with_a_compressed_point_public_key() {
    let k = oms("release-compressed.pub");
    let o = verify(&model(), "key.sig", &["--key", k.to_str().unwrap()]);
    assert_verified(&o);
}

#[test]
fn compressed_point_public_key_still_rejects_another_signer() {
    let k = oms("release-compressed.pub");
    let o = verify(&model(), "key-p384.sig", &["--key", k.to_str().unwrap()]);
    assert_rejected(&o, &["another key"]);
}

#[test]
fn single_file_fixture_verifies() {
    let file = model().join("model.safetensors");
    let k = key("release.pub");
    let o = verify(&file, "single-file.sig", &["--key", k.to_str().unwrap()]);
    assert_exit(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("verified: `model.safetensors`"),
        "stdout: {out}"
    );
}

#[test]
fn single_file_fixture_rejects_a_modified_file() {
    let (_dir, copy) = model_copy();
    let file = copy.join("model.safetensors");
    flip_byte(&file, 4000);
    let k = key("release.pub");
    let o = verify(&file, "single-file.sig", &["--key", k.to_str().unwrap()]);
    assert_rejected(&o, &["`.`", "content differs"]);
}

#[test]
fn single_file_fixture_rejects_another_file() {
    let k = key("release.pub");
    let o = verify(
        &model().join("tokenizer.json"),
        "single-file.sig",
        &["--key", k.to_str().unwrap()],
    );
    assert_rejected(&o, &["content differs"]);
}

#[test]
fn directory_fixture_does_not_verify_a_single_file() {
    let o = with_key(&model().join("model.safetensors"), "key.sig", "release.pub");
    assert_rejected(&o, &["single file"]);
}

/// The signed statement inside a fixture or signature file.
fn statement(sig: &Path) -> serde_json::Value {
    let bundle = vouch_bundle::Bundle::from_json(&std::fs::read(sig).unwrap()).unwrap();
    serde_json::from_slice(&bundle.envelope.payload).unwrap()
}

#[test]
fn vouch_signs_a_single_file_as_model_signing_does() {
    let dir = tempfile::tempdir().unwrap();
    let sig = dir.path().join("single.sig");
    let o = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["model", "sign"])
        .arg(model().join("model.safetensors"))
        .arg("--key")
        .arg(key("release.key"))
        .arg("--signature")
        .arg(&sig)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let ours = statement(&sig);
    let theirs = statement(&oms("single-file.sig"));
    assert_eq!(ours["subject"], theirs["subject"]);
    assert_eq!(
        ours["predicate"]["resources"],
        theirs["predicate"]["resources"]
    );
    let ser = |v: &serde_json::Value, k: &str| v["predicate"]["serialization"][k].clone();
    for k in ["method", "hash_type", "allow_symlinks"] {
        assert_eq!(ser(&ours, k), ser(&theirs, k), "{k}");
    }
}

#[test]
fn single_file_fixture_does_not_verify_a_directory() {
    // Whatever single-file support looks like, `.` must not match a whole directory.
    let o = with_key(&model(), "single-file.sig", "release.pub");
    assert_rejected(&o, &["`.`"]);
}
