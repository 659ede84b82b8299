//! Hostile input for `vouch model`: tampered models, damaged and forged signature files,
//! links and special files inside the model, crafted (but validly signed) manifests, bad
//! arguments. Every case checks the exit code (0 verified, 1 rejected, 2 could not decide)
//! and that the message names the file or the problem.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{copy_example_model, key, repo, stderr};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn vouch<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .output()
        .unwrap()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}\nstdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&o.stdout),
    );
    for n in needles {
        assert!(err.contains(n), "stderr does not mention {n:?}:\n{err}");
    }
}

/// A copy of the example model in a temporary directory, with room for signatures next to
/// it (outside the model).
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_example_model(dir.path());
        Self { dir }
    }

    fn model(&self) -> PathBuf {
        self.dir.path().join("tiny-llm")
    }

    /// A path next to the model (not inside it).
    fn outside(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `vouch model sign MODEL --key KEY --signature SIG EXTRA...`
    fn sign(&self, private: &str, sig: &Path, extra: &[&str]) -> Output {
        let mut args: Vec<&OsStr> = vec!["model".as_ref(), "sign".as_ref()];
        let model = self.model();
        let k = key(private);
        args.extend([model.as_os_str(), "--key".as_ref(), k.as_os_str()]);
        args.extend(["--signature".as_ref(), sig.as_os_str(), "--quiet".as_ref()]);
        args.extend(extra.iter().map(OsStr::new));
        vouch(args)
    }

    /// Sign with `release.key` to `outside("model.sig")` and insist it worked.
    fn signed(&self, extra: &[&str]) -> PathBuf {
        let sig = self.outside("model.sig");
        assert_exit(&self.sign("release.key", &sig, extra), 0, &[]);
        sig
    }

    /// `vouch model verify MODEL --signature SIG --key PUB EXTRA...`
    fn verify(&self, sig: &Path, public: &str, extra: &[&str]) -> Output {
        let k = key(public);
        let mut args: Vec<&OsStr> = vec!["model".as_ref(), "verify".as_ref()];
        let model = self.model();
        args.extend([model.as_os_str(), "--signature".as_ref(), sig.as_os_str()]);
        args.extend(["--key".as_ref(), k.as_os_str()]);
        args.extend(extra.iter().map(OsStr::new));
        vouch(args)
    }

    /// Names in the model directory (top level).
    fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.model())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Names next to the model (top level of the temporary directory).
    fn outside_listing(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn flip_byte(file: &Path, offset: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset] ^= 0x01;
    std::fs::write(file, bytes).unwrap();
}

#[track_caller]
fn assert_verified(o: &Output) {
    assert_exit(o, 0, &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("verified: `tiny-llm`"), "stdout: {out}");
}

/// The decoded statement inside a signature file.
fn statement_of(sig: &Path) -> Value {
    let bundle = vouch_bundle::Bundle::from_json(&std::fs::read(sig).unwrap()).unwrap();
    serde_json::from_slice(&bundle.envelope.payload).unwrap()
}

/// Rewrite a signature file's JSON.
fn edit_json(sig: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(sig).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(sig, serde_json::to_vec(&v).unwrap()).unwrap();
}

// ---------------------------------------------------------------------------------------
// The model on disk differs from what was signed

#[test]
fn tampered_weight_byte_is_rejected_naming_the_file() {
    let w = Work::new();
    let sig = w.signed(&[]);
    flip_byte(&w.model().join("model.safetensors"), 4000);
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(
        &o,
        1,
        &[
            "does not match its signature",
            "`model.safetensors`: content differs",
            "hint:",
        ],
    );
}

#[test]
fn appended_byte_is_rejected_naming_the_file() {
    // OMS file resources carry no size, so a longer file shows as different content.
    let w = Work::new();
    let sig = w.signed(&[]);
    let f = w.model().join("tokenizer.json");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.push(b'\n');
    std::fs::write(&f, bytes).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`tokenizer.json`: content differs"]);
}

#[test]
fn added_removed_and_renamed_files_are_each_named() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let m = w.model();
    std::fs::write(m.join("extra.py"), "print('hi')\n").unwrap();
    std::fs::remove_file(m.join("special_tokens_map.json")).unwrap();
    std::fs::rename(m.join("config.json"), m.join("config.json.orig")).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(
        &o,
        1,
        &[
            "`extra.py`: on disk, but not signed",
            "`special_tokens_map.json`: signed, but missing",
            "`config.json`: signed under this name, found as `config.json.orig` (renamed)",
        ],
    );
}

#[test]
fn file_swapped_into_a_subdirectory_is_rejected() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let m = w.model();
    std::fs::create_dir(m.join("sub")).unwrap();
    std::fs::rename(m.join("tokenizer.json"), m.join("sub/tokenizer.json")).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["tokenizer.json"]);
}

// ---------------------------------------------------------------------------------------
// Damaged or forged signature files

#[test]
fn truncated_bundle_json_is_rejected_as_unusable() {
    // A signature file that does not parse is a verdict (exit 1): it cannot vouch for the
    // model (cli/src/failure.rs maps every bundle error to "rejected").
    let w = Work::new();
    let sig = w.signed(&[]);
    let bytes = std::fs::read(&sig).unwrap();
    std::fs::write(&sig, &bytes[..bytes.len() / 2]).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(
        &o,
        1,
        &["the signature file", "is not JSON (line 1, column"],
    );
}

#[test]
fn empty_signature_file_is_rejected() {
    let w = Work::new();
    let sig = w.outside("empty.sig");
    std::fs::write(&sig, b"").unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["empty.sig` is empty; expected a Sigstore bundle"]);
}

#[test]
fn binary_garbage_signature_file_is_rejected() {
    let w = Work::new();
    let sig = w.outside("garbage.sig");
    std::fs::write(&sig, [0u8, 159, 146, 150, 255, 0, 1, 2]).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["garbage.sig` is not JSON"]);
}

#[test]
fn missing_signature_file_cannot_be_decided() {
    let w = Work::new();
    let sig = w.outside("nowhere.sig");
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 2, &["cannot open signature", "nowhere.sig"]);
}

#[test]
fn payload_altered_and_reencoded_is_rejected() {
    // Point the weights' digest at the bytes of a tampered file, keep the signature.
    let w = Work::new();
    let sig = w.signed(&[]);
    let mut bundle = vouch_bundle::Bundle::from_json(&std::fs::read(&sig).unwrap()).unwrap();
    let text = String::from_utf8(bundle.envelope.payload.clone()).unwrap();
    let mut st: Value = serde_json::from_str(&text).unwrap();
    for r in st["predicate"]["resources"].as_array_mut().unwrap() {
        if r["name"] == "model.safetensors" {
            r["digest"] = json!("00".repeat(32));
        }
    }
    bundle.envelope.payload = serde_json::to_vec(&st).unwrap();
    std::fs::write(&sig, bundle.to_json()).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["signature does not match"]);
}

#[test]
fn payload_with_one_changed_byte_is_rejected() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let mut bundle = vouch_bundle::Bundle::from_json(&std::fs::read(&sig).unwrap()).unwrap();
    let n = bundle.envelope.payload.len();
    bundle.envelope.payload[n - 3] ^= 0x20;
    std::fs::write(&sig, bundle.to_json()).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["signature does not match"]);
}

#[test]
fn signature_bytes_altered_are_rejected() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let mut bundle = vouch_bundle::Bundle::from_json(&std::fs::read(&sig).unwrap()).unwrap();
    let n = bundle.envelope.signature.sig.len();
    bundle.envelope.signature.sig[n - 1] ^= 0x01;
    std::fs::write(&sig, bundle.to_json()).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["signature does not match"]);
}

#[test]
fn payload_that_is_not_base64_is_rejected() {
    let w = Work::new();
    let sig = w.signed(&[]);
    edit_json(&sig, |v| {
        v["dsseEnvelope"]["payload"] = json!("not*base64!")
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["the signature file is unusable", "base64"]);
}

#[test]
fn envelope_with_two_signatures_is_rejected() {
    let w = Work::new();
    let sig = w.signed(&[]);
    edit_json(&sig, |v| {
        let s = v["dsseEnvelope"]["signatures"][0].clone();
        v["dsseEnvelope"]["signatures"]
            .as_array_mut()
            .unwrap()
            .push(s);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["exactly one signature"]);
}

#[test]
fn envelope_without_signatures_is_rejected() {
    let w = Work::new();
    let sig = w.signed(&[]);
    edit_json(&sig, |v| v["dsseEnvelope"]["signatures"] = json!([]));
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["exactly one signature"]);
}

#[test]
fn unknown_bundle_media_type_is_rejected() {
    let w = Work::new();
    let sig = w.signed(&[]);
    edit_json(&sig, |v| {
        v["mediaType"] = json!("application/vnd.example.bundle+json");
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(
        &o,
        1,
        &["media type", "application/vnd.example.bundle+json"],
    );
}

#[test]
fn changed_payload_type_is_rejected() {
    let w = Work::new();
    let sig = w.signed(&[]);
    edit_json(&sig, |v| {
        v["dsseEnvelope"]["payloadType"] = json!("text/plain");
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["text/plain"]);
}

#[test]
fn signature_file_without_verification_material_is_rejected() {
    let w = Work::new();
    let sig = w.signed(&[]);
    edit_json(&sig, |v| {
        v["verificationMaterial"] = json!({"tlogEntries": []})
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    assert!(
        stderr(&o).contains("neither a public key nor a certificate"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn oversized_signature_file_is_refused() {
    let w = Work::new();
    let sig = w.outside("huge.sig");
    let f = std::fs::File::create(&sig).unwrap();
    f.set_len((256 << 20) + 1).unwrap(); // sparse: no disk space used
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["huge.sig", "larger than"]);
}

// ---------------------------------------------------------------------------------------
// Keys

#[test]
fn wrong_key_is_rejected() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let o = w.verify(&sig, "other.pub", &[]);
    assert_exit(&o, 1, &["another key", "hint:"]);
}

#[test]
fn wrong_key_is_rejected_when_the_bundle_carries_no_key_hint() {
    let w = Work::new();
    let sig = w.signed(&[]);
    edit_json(&sig, |v| v["verificationMaterial"]["publicKey"] = json!({}));
    assert_verified(&w.verify(&sig, "release.pub", &[]));
    let o = w.verify(&sig, "other.pub", &[]);
    assert_exit(&o, 1, &["signature does not match"]);
}

#[test]
fn p384_signature_verifies_and_other_curve_key_is_rejected() {
    let w = Work::new();
    let sig = w.outside("p384.sig");
    assert_exit(&w.sign("p384.key", &sig, &[]), 0, &[]);
    assert_verified(&w.verify(&sig, "p384.pub", &[]));
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["another key"]);
}

#[test]
fn private_key_given_as_public_key_cannot_be_decided() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let o = w.verify(&sig, "release.key", &[]);
    assert_exit(&o, 2, &["release.key` is a private key", "`.pub` file"]);
}

#[test]
fn key_signature_checked_against_certificate_authorities_is_rejected() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let ca = w.outside("ca.pem");
    std::fs::copy(repo().join("testdata/oms/ca.pem"), &ca).unwrap();
    let o = vouch([
        "model".as_ref(),
        "verify".as_ref(),
        w.model().as_os_str(),
        "--signature".as_ref(),
        sig.as_os_str(),
        "--certificate-chain".as_ref(),
        ca.as_os_str(),
    ]);
    assert_exit(&o, 1, &["public key", "--key"]);
}

// ---------------------------------------------------------------------------------------
// Links and special files inside the model

#[test]
fn symlink_pointing_outside_the_model_is_refused_with_its_path() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let secret = w.outside("secret.bin");
    std::fs::write(&secret, "outside the model\n").unwrap();
    std::os::unix::fs::symlink(&secret, w.model().join("evil.bin")).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`evil.bin`", "symbolic link"]);
    // Signing refuses it too, and writes nothing.
    let sig2 = w.outside("with-link.sig");
    let o = w.sign("release.key", &sig2, &[]);
    assert_exit(&o, 1, &["`evil.bin`", "symbolic link", "hint:"]);
    assert!(!sig2.exists());
}

#[test]
fn symlink_replacing_a_signed_file_is_refused() {
    // The link target has exactly the signed bytes; following it would verify.
    let w = Work::new();
    let sig = w.signed(&[]);
    let real = w.outside("config.json");
    std::fs::rename(w.model().join("config.json"), &real).unwrap();
    std::os::unix::fs::symlink(&real, w.model().join("config.json")).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`config.json`", "symbolic link"]);
}

#[test]
fn symlink_to_a_file_inside_the_model_is_refused() {
    let w = Work::new();
    let sig = w.signed(&[]);
    std::os::unix::fs::symlink("config.json", w.model().join("alias.json")).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`alias.json`", "symbolic link"]);
    let o = w.sign("release.key", &w.outside("alias.sig"), &[]);
    assert_exit(&o, 1, &["`alias.json`", "symbolic link"]);
}

#[test]
fn symlinked_directory_inside_the_model_is_refused() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let elsewhere = w.outside("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("payload.bin"), "x").unwrap();
    std::os::unix::fs::symlink(&elsewhere, w.model().join("shards")).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`shards`", "symbolic link"]);
}

#[test]
fn dangling_symlink_is_refused() {
    let w = Work::new();
    let sig = w.signed(&[]);
    std::os::unix::fs::symlink("does-not-exist", w.model().join("dangling")).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`dangling`", "symbolic link"]);
}

#[test]
fn symlink_can_be_left_out_with_ignore_paths() {
    let w = Work::new();
    let sig = w.signed(&[]);
    std::os::unix::fs::symlink("/etc/hostname", w.model().join("evil.bin")).unwrap();
    assert_verified(&w.verify(&sig, "release.pub", &["--ignore-paths", "evil.bin"]));
}

#[test]
fn fifo_inside_the_model_is_refused_without_blocking() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let fifo = w.model().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`pipe`", "FIFO"]);
    let o = w.sign("release.key", &w.outside("fifo.sig"), &[]);
    assert_exit(&o, 1, &["`pipe`", "FIFO"]);
}

// ---------------------------------------------------------------------------------------
// Crafted manifests: validly signed by the trusted key, hostile content. A stolen key or a
// buggy signer must still not make vouch read outside the model or accept nonsense.

/// The statement vouch writes for the example model (`--key release.key`), as JSON.
fn base_statement(w: &Work) -> Value {
    let sig = w.outside("base.sig");
    assert_exit(&w.sign("release.key", &sig, &[]), 0, &[]);
    let st = statement_of(&sig);
    std::fs::remove_file(&sig).unwrap();
    st
}

/// Recompute the OMS subject digest (SHA-256 over the raw resource digests, in order).
fn fix_subject_digest(st: &mut Value) {
    let mut raw = Vec::new();
    for r in st["predicate"]["resources"].as_array().unwrap() {
        let hex = r["digest"].as_str().unwrap();
        let d = vouch_model::Digest::from_hex(vouch_model::HashAlgorithm::Sha256, hex).unwrap();
        raw.extend_from_slice(&d.bytes);
    }
    st["subject"][0]["digest"]["sha256"] = json!(vouch_model::Digest::sha256(&raw).hex());
}

/// Sign arbitrary payload bytes with `release.key` into `outside(name)`.
fn sign_payload(w: &Work, name: &str, payload: Vec<u8>) -> PathBuf {
    let k = vouch_sign::SigningKey::from_pem(&std::fs::read(key("release.key")).unwrap()).unwrap();
    let bundle = k
        .sign_dsse(vouch_bundle::IN_TOTO_PAYLOAD_TYPE, payload)
        .unwrap();
    let path = w.outside(name);
    std::fs::write(&path, bundle.to_json()).unwrap();
    path
}

fn crafted(w: &Work, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut st = base_statement(w);
    edit(&mut st);
    sign_payload(w, "crafted.sig", serde_json::to_vec(&st).unwrap())
}

fn push_resource(st: &mut Value, name: &str, digest_of: &[u8]) {
    st["predicate"]["resources"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "name": name,
            "algorithm": "sha256",
            "digest": vouch_model::Digest::sha256(digest_of).hex(),
        }));
}

#[test]
fn crafted_baseline_verifies() {
    // The crafting itself is sound: an unmodified statement signed this way verifies.
    let w = Work::new();
    let sig = crafted(&w, |_| {});
    assert_verified(&w.verify(&sig, "release.pub", &[]));
}

#[test]
fn crafted_manifest_naming_a_parent_path_is_refused() {
    let w = Work::new();
    std::fs::write(w.outside("outside.bin"), "secret").unwrap();
    let sig = crafted(&w, |st| {
        push_resource(st, "../outside.bin", b"secret");
        fix_subject_digest(st);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`../outside.bin`", "`..`"]);
}

#[test]
fn crafted_manifest_naming_an_absolute_path_is_refused() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        push_resource(st, "/etc/hostname", b"x");
        fix_subject_digest(st);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`/etc/hostname`", "absolute"]);
}

#[test]
fn crafted_manifest_with_a_dot_component_is_refused() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        st["predicate"]["resources"][0]["name"] = json!("./config.json");
        fix_subject_digest(st);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`./config.json`"]);
}

#[test]
fn crafted_manifest_listing_a_file_twice_is_refused() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        let first = st["predicate"]["resources"][0].clone();
        st["predicate"]["resources"]
            .as_array_mut()
            .unwrap()
            .push(first);
        fix_subject_digest(st);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`config.json`", "listed twice"]);
}

#[test]
fn crafted_manifest_with_an_inconsistent_subject_digest_is_refused() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        st["subject"][0]["digest"]["sha256"] = json!("ab".repeat(32));
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["inconsistent", &"ab".repeat(32)]);
}

#[test]
fn crafted_manifest_with_a_fractional_shard_size_is_refused() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        let ser = &mut st["predicate"]["serialization"];
        ser["method"] = json!("shards");
        ser["shard_size"] = json!(1024.5);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["shard_size", "whole number"]);
}

#[test]
fn crafted_manifest_with_a_zero_shard_size_is_refused() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        let ser = &mut st["predicate"]["serialization"];
        ser["method"] = json!("shards");
        ser["shard_size"] = json!(0);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["shard_size"]);
}

#[test]
fn crafted_manifest_ignoring_a_parent_path_is_refused() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        st["predicate"]["serialization"]["ignore_paths"] = json!([".."]);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`..`"]);
}

#[test]
fn crafted_manifest_ignoring_everything_with_dot_is_refused() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        st["predicate"]["serialization"]["ignore_paths"] = json!(["."]);
        st["predicate"]["resources"] = json!([]);
        fix_subject_digest(st);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`.`"]);
}

#[test]
fn crafted_empty_manifest_does_not_cover_the_files_on_disk() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        st["predicate"]["resources"] = json!([]);
        fix_subject_digest(st);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    // OMS v1.0: a statement must list at least one file; refused before the model is read.
    assert_exit(&o, 1, &["lists no file"]);
}

#[test]
fn crafted_manifest_with_an_unknown_predicate_type_is_refused() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        st["predicateType"] = json!("https://example.com/not-oms");
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["https://example.com/not-oms"]);
}

#[test]
fn crafted_manifest_with_a_malformed_digest_is_refused() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        st["predicate"]["resources"][0]["digest"] = json!("XYZ");
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`XYZ`"]);
}

#[test]
fn crafted_manifest_naming_dot_next_to_files_is_refused() {
    let w = Work::new();
    let sig = crafted(&w, |st| {
        push_resource(st, ".", b"anything");
        fix_subject_digest(st);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`.`", "other files"]);
}

#[test]
fn crafted_single_file_manifest_does_not_verify_the_directory() {
    // `.` stands for the model file itself; it must never stand for a directory.
    let w = Work::new();
    let config = std::fs::read(w.model().join("config.json")).unwrap();
    let sig = crafted(&w, |st| {
        st["predicate"]["resources"] = json!([]);
        push_resource(st, ".", &config);
        fix_subject_digest(st);
    });
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`.`", "is a directory"]);
}

#[test]
fn signed_payload_that_is_not_json_is_refused() {
    let w = Work::new();
    let sig = sign_payload(&w, "not-json.sig", b"hello, I am not a statement".to_vec());
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["not valid JSON"]);
}

// ---------------------------------------------------------------------------------------
// Arguments

#[test]
fn missing_model_directory_cannot_be_decided() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let missing = w.outside("no-such-model");
    let o = vouch([
        "model".as_ref(),
        "verify".as_ref(),
        missing.as_os_str(),
        "--signature".as_ref(),
        sig.as_os_str(),
        "--key".as_ref(),
        key("release.pub").as_os_str(),
    ]);
    assert_exit(&o, 2, &["cannot open model", "no-such-model"]);
}

#[test]
fn directory_signature_does_not_verify_a_single_file() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let file = w.model().join("config.json");
    let o = vouch([
        "model".as_ref(),
        "verify".as_ref(),
        file.as_os_str(),
        "--signature".as_ref(),
        sig.as_os_str(),
        "--key".as_ref(),
        key("release.pub").as_os_str(),
    ]);
    assert_exit(&o, 1, &["config.json", "single file", "model directory"]);
}

#[test]
fn model_path_that_is_a_fifo_cannot_be_decided() {
    let w = Work::new();
    let fifo = w.outside("pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let o = vouch(["model".as_ref(), "hash".as_ref(), fifo.as_os_str()]);
    assert_exit(
        &o,
        2,
        &["pipe", "neither a model directory nor a regular file"],
    );
}

#[test]
fn ignore_path_with_parent_component_is_refused_when_verifying() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let o = w.verify(&sig, "release.pub", &["--ignore-paths", "../x"]);
    assert_exit(&o, 2, &["`--ignore-paths ../x`", "inside the model"]);
}

#[test]
fn ignore_path_with_parent_component_is_refused_when_signing() {
    let w = Work::new();
    let sig = w.outside("model.sig");
    let o = w.sign("release.key", &sig, &["--ignore-paths", "../x"]);
    assert_exit(&o, 2, &["`--ignore-paths ../x`"]);
    assert!(!sig.exists());
}

#[test]
fn absolute_ignore_path_outside_the_model_is_refused() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let out = w.outside("elsewhere.txt");
    let o = w.verify(
        &sig,
        "release.pub",
        &["--ignore-paths", out.to_str().unwrap()],
    );
    assert_exit(&o, 2, &["elsewhere.txt", "outside the model directory"]);
}

#[test]
fn absolute_ignore_path_inside_the_model_is_accepted() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let extra = w.model().join("notes.txt");
    std::fs::write(&extra, "not part of the model\n").unwrap();
    assert_verified(&w.verify(
        &sig,
        "release.pub",
        &["--ignore-paths", extra.to_str().unwrap()],
    ));
}

#[test]
fn ignore_paths_recorded_when_signing_are_honoured_when_verifying() {
    let w = Work::new();
    std::fs::write(w.model().join("notes.txt"), "v1\n").unwrap();
    std::fs::create_dir(w.model().join("logs")).unwrap();
    std::fs::write(w.model().join("logs/run.log"), "v1\n").unwrap();
    let sig = w.signed(&["--ignore-paths", "notes.txt", "--ignore-paths", "logs"]);
    let ignored = statement_of(&sig)["predicate"]["serialization"]["ignore_paths"].clone();
    assert!(
        ignored.as_array().unwrap().contains(&json!("notes.txt")),
        "{ignored}"
    );
    assert!(
        ignored.as_array().unwrap().contains(&json!("logs")),
        "{ignored}"
    );
    std::fs::write(w.model().join("notes.txt"), "v2, changed\n").unwrap();
    std::fs::write(w.model().join("logs/other.log"), "new\n").unwrap();
    assert_verified(&w.verify(&sig, "release.pub", &[]));
}

#[test]
fn ignore_paths_given_when_verifying_leave_out_extra_files_only() {
    let w = Work::new();
    let sig = w.signed(&[]);
    std::fs::write(w.model().join("extra.txt"), "x").unwrap();
    assert_exit(&w.verify(&sig, "release.pub", &[]), 1, &["`extra.txt`"]);
    assert_verified(&w.verify(&sig, "release.pub", &["--ignore-paths", "extra.txt"]));
}

#[test]
fn ignoring_a_signed_file_when_verifying_reports_it_missing() {
    // Verification-time ignores cannot hide a tampered signed file: the file is reported
    // as signed but missing.
    let w = Work::new();
    let sig = w.signed(&[]);
    flip_byte(&w.model().join("model.safetensors"), 10);
    let o = w.verify(
        &sig,
        "release.pub",
        &["--ignore-paths", "model.safetensors"],
    );
    assert_exit(&o, 1, &["`model.safetensors`"]);
}

#[test]
fn zero_shard_size_is_a_usage_error() {
    let w = Work::new();
    let sig = w.outside("model.sig");
    let o = w.sign("release.key", &sig, &["--shard-size", "0"]);
    assert_exit(&o, 2, &["--shard-size"]);
    assert!(!sig.exists());
}

// ---------------------------------------------------------------------------------------
// Round trips

#[test]
fn blake3_round_trip_and_tamper() {
    let w = Work::new();
    let sig = w.signed(&["--hash", "blake3"]);
    let st = statement_of(&sig);
    assert_eq!(st["predicate"]["serialization"]["hash_type"], "blake3");
    assert_verified(&w.verify(&sig, "release.pub", &[]));
    flip_byte(&w.model().join("model.safetensors"), 8000);
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`model.safetensors`: content differs"]);
}

#[test]
fn sharded_round_trip_and_tamper_names_the_shard() {
    let w = Work::new();
    let sig = w.signed(&["--shard-size", "1024"]);
    let st = statement_of(&sig);
    assert_eq!(st["predicate"]["serialization"]["method"], "shards");
    assert_eq!(st["predicate"]["serialization"]["shard_size"], 1024);
    assert!(
        st["predicate"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "model.safetensors:1024:2048"),
        "{st}"
    );
    assert_verified(&w.verify(&sig, "release.pub", &[]));
    flip_byte(&w.model().join("model.safetensors"), 5000);
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(
        &o,
        1,
        &["`model.safetensors` bytes 4096..5120: content differs"],
    );
}

#[test]
fn blake3_shards_round_trip() {
    let w = Work::new();
    let sig = w.signed(&["--hash", "blake3", "--shard-size", "1000"]);
    assert_verified(&w.verify(&sig, "release.pub", &[]));
    let f = w.model().join("model.safetensors");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&f, bytes).unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`model.safetensors`"]);
}

#[test]
fn empty_files_and_nested_directories_round_trip() {
    let w = Work::new();
    std::fs::create_dir_all(w.model().join("a/b")).unwrap();
    std::fs::write(w.model().join("a/b/empty.bin"), b"").unwrap();
    std::fs::write(w.model().join("a b.txt"), b"space").unwrap();
    let sig = w.signed(&[]);
    assert_verified(&w.verify(&sig, "release.pub", &[]));
    std::fs::write(w.model().join("a/b/empty.bin"), b"!").unwrap();
    let o = w.verify(&sig, "release.pub", &[]);
    assert_exit(&o, 1, &["`a/b/empty.bin`"]);
}

// ---------------------------------------------------------------------------------------
// The signature file inside the model

#[test]
fn default_signature_inside_the_model_is_ignored() {
    let w = Work::new();
    let o = vouch([
        "model".as_ref(),
        "sign".as_ref(),
        w.model().as_os_str(),
        "--key".as_ref(),
        key("release.key").as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert_exit(&o, 0, &[]);
    let sig = w.model().join("model.sig");
    assert!(sig.exists());
    let st = statement_of(&sig);
    let names: Vec<&str> = st["predicate"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"model.sig"), "{names:?}");
    assert_verified(&w.verify(&sig, "release.pub", &[]));
    // Signing again over an existing model.sig gives the same file list.
    let o = vouch([
        "model".as_ref(),
        "sign".as_ref(),
        w.model().as_os_str(),
        "--key".as_ref(),
        key("release.key").as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert_exit(&o, 0, &[]);
    assert_eq!(
        statement_of(&sig)["predicate"]["resources"],
        st["predicate"]["resources"]
    );
    assert_verified(&w.verify(&sig, "release.pub", &[]));
}

#[test]
fn signature_copied_into_the_model_after_signing_is_ignored() {
    let w = Work::new();
    let outside = w.signed(&[]);
    let inside = w.model().join("release.sig");
    std::fs::copy(&outside, &inside).unwrap();
    assert_verified(&w.verify(&inside, "release.pub", &[]));
    // ... but only the one being verified: another stray file is still an extra file.
    assert_exit(
        &w.verify(&outside, "release.pub", &[]),
        1,
        &["`release.sig`"],
    );
}

#[test]
fn signature_in_a_subdirectory_of_the_model_is_ignored() {
    let w = Work::new();
    std::fs::create_dir(w.model().join("signatures")).unwrap();
    let sig = w.model().join("signatures/model.sig");
    assert_exit(&w.sign("release.key", &sig, &[]), 0, &[]);
    assert_verified(&w.verify(&sig, "release.pub", &[]));
}

// ---------------------------------------------------------------------------------------
// No partial output when signing fails

#[test]
fn missing_key_leaves_no_signature_file() {
    let w = Work::new();
    let before = (w.listing(), w.outside_listing());
    let o = vouch([
        "model".as_ref(),
        "sign".as_ref(),
        w.model().as_os_str(),
        "--key".as_ref(),
        w.outside("no-such.key").as_os_str(),
    ]);
    assert_exit(&o, 2, &["no-such.key"]);
    assert_eq!((w.listing(), w.outside_listing()), before);
}

#[test]
fn unusable_key_leaves_no_signature_file() {
    let w = Work::new();
    let bad = w.outside("bad.key");
    std::fs::write(
        &bad,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let sig = w.outside("model.sig");
    let before = (w.listing(), w.outside_listing());
    let o = vouch([
        "model".as_ref(),
        "sign".as_ref(),
        w.model().as_os_str(),
        "--key".as_ref(),
        bad.as_os_str(),
        "--signature".as_ref(),
        sig.as_os_str(),
    ]);
    assert_exit(&o, 2, &["bad.key"]);
    assert_eq!((w.listing(), w.outside_listing()), before);
}

#[test]
fn public_key_given_for_signing_leaves_no_signature_file() {
    let w = Work::new();
    let sig = w.outside("model.sig");
    let before = (w.listing(), w.outside_listing());
    let o = w.sign("release.pub", &sig, &[]);
    assert_exit(&o, 2, &["release.pub"]);
    assert_eq!((w.listing(), w.outside_listing()), before);
}

#[test]
fn refused_model_leaves_no_signature_file_and_keeps_an_old_one() {
    let w = Work::new();
    let sig = w.signed(&[]);
    let old = std::fs::read(&sig).unwrap();
    std::os::unix::fs::symlink("config.json", w.model().join("alias.json")).unwrap();
    let before = (w.listing(), w.outside_listing());
    let o = w.sign("release.key", &sig, &[]);
    assert_exit(&o, 1, &["`alias.json`"]);
    assert_eq!((w.listing(), w.outside_listing()), before);
    assert_eq!(
        std::fs::read(&sig).unwrap(),
        old,
        "the old signature is untouched"
    );
}

#[test]
fn signature_into_a_missing_directory_fails_cleanly() {
    let w = Work::new();
    let sig = w.outside("no-such-dir/model.sig");
    let before = (w.listing(), w.outside_listing());
    let o = w.sign("release.key", &sig, &[]);
    assert_exit(&o, 2, &["no-such-dir"]);
    assert_eq!((w.listing(), w.outside_listing()), before);
}

// ---------------------------------------------------------------------------------------
// Single-file models: model-signing signs a file path too, naming its one resource `.`

/// `vouch model ARGS...` for a single file.
fn model_cmd(sub: &str, file: &Path, extra: &[&OsStr]) -> Output {
    let mut args: Vec<&OsStr> = vec!["model".as_ref(), sub.as_ref(), file.as_os_str()];
    args.extend_from_slice(extra);
    vouch(args)
}

fn sign_file(file: &Path, sig: Option<&Path>, extra: &[&str]) -> Output {
    let k = key("release.key");
    let mut args: Vec<&OsStr> = vec!["--key".as_ref(), k.as_os_str(), "--quiet".as_ref()];
    if let Some(sig) = sig {
        args.extend(["--signature".as_ref(), sig.as_os_str()]);
    }
    args.extend(extra.iter().map(OsStr::new));
    model_cmd("sign", file, &args)
}

fn verify_file(file: &Path, sig: &Path, extra: &[&str]) -> Output {
    let k = key("release.pub");
    let mut args: Vec<&OsStr> = vec![
        "--signature".as_ref(),
        sig.as_os_str(),
        "--key".as_ref(),
        k.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    model_cmd("verify", file, &args)
}

#[test]
fn single_file_round_trip_names_the_resource_dot() {
    let w = Work::new();
    let file = w.model().join("model.safetensors");
    // Default signature: next to the file, FILE.sig.
    assert_exit(&sign_file(&file, None, &[]), 0, &[]);
    let sig = w.model().join("model.safetensors.sig");
    assert!(sig.exists());
    let st = statement_of(&sig);
    assert_eq!(st["subject"][0]["name"], "model.safetensors");
    let resources = st["predicate"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0]["name"], ".");
    let bytes = std::fs::read(&file).unwrap();
    let digest = vouch_model::Digest::sha256(&bytes);
    assert_eq!(resources[0]["digest"], digest.hex());
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        vouch_model::Digest::sha256(&digest.bytes).hex()
    );
    let o = verify_file(&file, &sig, &[]);
    assert_exit(&o, 0, &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("verified: `model.safetensors`"), "{out}");
    // A copy of the file elsewhere, under another name, verifies too (names are not signed
    // for a single file, as in model-signing).
    let copy = w.outside("renamed.bin");
    std::fs::copy(&file, &copy).unwrap();
    assert_exit(&verify_file(&copy, &sig, &[]), 0, &[]);
}

#[test]
fn single_file_tampered_is_rejected() {
    let w = Work::new();
    let file = w.model().join("model.safetensors");
    let sig = w.outside("file.sig");
    assert_exit(&sign_file(&file, Some(&sig), &[]), 0, &[]);
    flip_byte(&file, 1000);
    assert_exit(
        &verify_file(&file, &sig, &[]),
        1,
        &["`.`", "content differs"],
    );
}

#[test]
fn single_file_sharded_round_trip_and_tamper_names_the_shard() {
    let w = Work::new();
    let file = w.model().join("model.safetensors");
    let sig = w.outside("file.sig");
    assert_exit(
        &sign_file(&file, Some(&sig), &["--shard-size", "1024"]),
        0,
        &[],
    );
    let st = statement_of(&sig);
    let names: Vec<&str> = st["predicate"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], ".:0:1024");
    assert!(names.iter().all(|n| n.starts_with(".:")), "{names:?}");
    assert_exit(&verify_file(&file, &sig, &[]), 0, &[]);
    flip_byte(&file, 5000);
    assert_exit(&verify_file(&file, &sig, &[]), 1, &["`.` bytes 4096..5120"]);
}

#[test]
fn single_file_signature_does_not_verify_the_directory() {
    let w = Work::new();
    let file = w.model().join("model.safetensors");
    let sig = w.outside("file.sig");
    assert_exit(&sign_file(&file, Some(&sig), &[]), 0, &[]);
    assert_exit(
        &w.verify(&sig, "release.pub", &[]),
        1,
        &["`.`", "is a directory"],
    );
}

#[test]
fn single_file_signature_does_not_verify_another_file() {
    let w = Work::new();
    let sig = w.outside("file.sig");
    assert_exit(
        &sign_file(&w.model().join("model.safetensors"), Some(&sig), &[]),
        0,
        &[],
    );
    let o = verify_file(&w.model().join("config.json"), &sig, &[]);
    assert_exit(&o, 1, &["content differs"]);
}

#[test]
fn symlink_as_single_file_model_is_refused() {
    let w = Work::new();
    let file = w.model().join("model.safetensors");
    let sig = w.outside("file.sig");
    assert_exit(&sign_file(&file, Some(&sig), &[]), 0, &[]);
    let link = w.outside("link.safetensors");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    assert_exit(
        &verify_file(&link, &sig, &[]),
        1,
        &["link.safetensors", "symbolic link"],
    );
    let link_sig = w.outside("link.sig");
    assert_exit(
        &sign_file(&link, Some(&link_sig), &[]),
        1,
        &["link.safetensors", "symbolic link"],
    );
    assert!(!link_sig.exists());
    let o = model_cmd("hash", &link, &[]);
    assert_exit(&o, 1, &["symbolic link"]);
}

#[test]
fn single_file_in_a_linked_directory_is_accepted() {
    // Like a model directory, the file may be reached through a linked directory above it.
    let w = Work::new();
    let linked = w.outside("linked-dir");
    std::os::unix::fs::symlink(w.model(), &linked).unwrap();
    let sig = w.outside("file.sig");
    let file = linked.join("config.json");
    assert_exit(&sign_file(&file, Some(&sig), &[]), 0, &[]);
    assert_exit(&verify_file(&file, &sig, &[]), 0, &[]);
}

#[test]
fn ignore_paths_are_refused_for_a_single_file() {
    let w = Work::new();
    let file = w.model().join("model.safetensors");
    let sig = w.outside("file.sig");
    let o = sign_file(&file, Some(&sig), &["--ignore-paths", "x"]);
    assert_exit(&o, 2, &["`--ignore-paths x`", "single-file model"]);
    assert!(!sig.exists());
    assert_exit(&sign_file(&file, Some(&sig), &[]), 0, &[]);
    let o = verify_file(&file, &sig, &["--ignore-paths", "x"]);
    assert_exit(&o, 2, &["`--ignore-paths x`"]);
}

#[test]
fn signature_path_that_is_the_model_file_is_refused() {
    let w = Work::new();
    let file = w.model().join("config.json");
    let before = std::fs::read(&file).unwrap();
    let o = sign_file(&file, Some(&file), &[]);
    assert_exit(&o, 2, &["overwrite"]);
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn single_file_hash_lists_one_resource_named_dot() {
    let w = Work::new();
    let file = w.model().join("config.json");
    let o = model_cmd("hash", &file, &["--json".as_ref()]);
    assert_exit(&o, 0, &[]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"], 1);
    assert_eq!(v["resources"][0]["name"], ".");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(
        v["resources"][0]["digest"],
        vouch_model::Digest::sha256(&bytes).to_string()
    );
}
