//! The tamper matrix: `vouch-init` against a signed attestation of the example model, one
//! test per way the model volume can differ from what CI signed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vouch_attest::{Attestation, Image, Model};
use vouch_model::{Digest, HashAlgorithm, HashOptions, IgnoreSet, ScanOptions};

const IMAGE: [u8; 32] = [0x11; 32];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Fixture {
    dir: tempfile::TempDir,
    digest: String,
}

impl Fixture {
    fn model(&self) -> PathBuf {
        self.dir.path().join("model")
    }
    fn attestation(&self) -> PathBuf {
        self.dir.path().join("attestation.json")
    }
}

/// A copy of the example model and an attestation for it signed with `release.key`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for e in std::fs::read_dir(repo().join("testdata/models/tiny-llm")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), model.join(e.file_name())).unwrap();
    }
    let digest = sign_attestation(&model, &dir.path().join("attestation.json"), "release");
    Fixture { dir, digest }
}

fn sign_attestation(model: &Path, out: &Path, key: &str) -> String {
    let mut ignore = IgnoreSet::new();
    ignore.insert_git_paths();
    let scan = ScanOptions {
        ignore: ignore.clone(),
        reject_hard_links: false,
    };
    let manifest = vouch_model::hash_dir(model, &scan, &HashOptions::default(), None).unwrap();
    let model = Model::from_manifest("tiny-llm", &manifest, ignore).unwrap();
    write_signed(model, out, key)
}

/// Sign the attestation of `IMAGE` with `model` by `testdata/keys/{key}.key` into `out`;
/// returns the model digest.
fn write_signed(model: Model, out: &Path, key: &str) -> String {
    let a = Attestation {
        images: vec![Image {
            name: "registry.example.com/models/tiny-llm".into(),
            digest: Digest {
                algorithm: HashAlgorithm::Sha256,
                bytes: IMAGE,
            },
            media_type: None,
            reference: None,
        }],
        model,
        metadata: Default::default(),
    };
    let key = vouch_sign::SigningKey::from_pem(
        &std::fs::read(repo().join(format!("testdata/keys/{key}.key"))).unwrap(),
    )
    .unwrap();
    let bundle = key
        .sign_dsse(
            vouch_bundle::IN_TOTO_PAYLOAD_TYPE,
            vouch_attest::build_statement(&a),
        )
        .unwrap();
    std::fs::write(out, bundle.to_json()).unwrap();
    a.model.digest.to_string()
}

fn vouch_init(f: &Fixture, extra: &[&str]) -> Output {
    let log = f.dir.path().join("termination-log");
    Command::new(env!("CARGO_BIN_EXE_vouch-init"))
        .arg("--model-dir")
        .arg(f.model())
        .arg("--attestation")
        .arg(f.attestation())
        .arg("--key")
        .arg(repo().join("testdata/keys/release.pub"))
        .arg("--termination-log")
        .arg(&log)
        .args(["--expect-model-digest", &f.digest])
        .args(extra)
        .env_clear()
        .output()
        .unwrap()
}

/// Run and expect `code`, with `want` in stderr, in the termination log and in the JSON line.
fn expect(f: &Fixture, extra: &[&str], code: i32, want: &str) {
    let out = vouch_init(f, extra);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains(want), "stderr lacks {want:?}:\n{stderr}");
    let log = std::fs::read_to_string(f.dir.path().join("termination-log")).unwrap();
    assert!(log.contains(want), "termination log lacks {want:?}:\n{log}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["verified"], false);
}

fn rejected(f: &Fixture, want: &str) {
    expect(f, &[], 1, want);
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn accepts_the_untouched_model_and_reports_json() {
    let f = fixture();
    let out = vouch_init(
        &f,
        &[
            "--image",
            &format!(
                "registry.example.com/models/tiny-llm@sha256:{}",
                "11".repeat(32)
            ),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["verified"], true);
    assert_eq!(line["modelDigest"], f.digest.as_str());
    assert_eq!(line["files"], 6);
    assert!(line["bytes"].as_u64().unwrap() > 8000);
    assert!(line["seconds"].is_number());
}

#[test]
fn flipped_byte_in_weights() {
    let f = fixture();
    flip_byte(&f.model().join("model.safetensors"), 4000);
    rejected(
        &f,
        "[weights] `model.safetensors`: content differs (signed sha256:",
    );
}

#[test]
fn flipped_byte_in_tokenizer() {
    let f = fixture();
    flip_byte(&f.model().join("tokenizer.json"), 10);
    rejected(&f, "[tokenizer] `tokenizer.json`: content differs");
}

#[test]
fn flipped_byte_in_config() {
    let f = fixture();
    flip_byte(&f.model().join("config.json"), 5);
    rejected(&f, "[config] `config.json`: content differs");
}

#[test]
fn truncated_file() {
    let f = fixture();
    let p = f.model().join("model.safetensors");
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    rejected(
        &f,
        &format!(
            "`model.safetensors`: size differs (signed {len} bytes, found {} bytes)",
            len - 1
        ),
    );
}

#[test]
fn appended_byte() {
    let f = fixture();
    let p = f.model().join("generation_config.json");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.push(b'\n');
    std::fs::write(&p, bytes).unwrap();
    rejected(&f, "`generation_config.json`: size differs");
}

#[test]
fn file_added() {
    let f = fixture();
    std::fs::write(f.model().join("adapter.safetensors"), "lora").unwrap();
    rejected(
        &f,
        "[weights] `adapter.safetensors`: on disk, but not signed",
    );
}

#[test]
fn empty_file_added() {
    let f = fixture();
    std::fs::write(f.model().join("empty.txt"), "").unwrap();
    rejected(&f, "`empty.txt`: on disk, but not signed");
}

#[test]
fn file_removed() {
    let f = fixture();
    std::fs::remove_file(f.model().join("special_tokens_map.json")).unwrap();
    rejected(
        &f,
        "[tokenizer] `special_tokens_map.json`: signed, but missing on disk",
    );
}

#[test]
fn file_renamed() {
    let f = fixture();
    std::fs::rename(
        f.model().join("config.json"),
        f.model().join("config.json.bak"),
    )
    .unwrap();
    rejected(
        &f,
        "`config.json`: signed under this name, found as `config.json.bak` (renamed)",
    );
}

#[test]
fn file_replaced_by_symlink_inside() {
    let f = fixture();
    let p = f.model().join("tokenizer.json");
    std::fs::rename(&p, f.model().join("real-tokenizer")).unwrap();
    std::os::unix::fs::symlink("real-tokenizer", &p).unwrap();
    rejected(&f, "`tokenizer.json` is a symbolic link");
}

#[test]
fn file_replaced_by_symlink_outside() {
    let f = fixture();
    let outside = f.dir.path().join("outside.json");
    std::fs::copy(f.model().join("config.json"), &outside).unwrap();
    std::fs::remove_file(f.model().join("config.json")).unwrap();
    std::os::unix::fs::symlink(&outside, f.model().join("config.json")).unwrap();
    rejected(&f, "`config.json` is a symbolic link");
}

#[test]
fn directory_where_a_file_was() {
    let f = fixture();
    std::fs::remove_file(f.model().join("config.json")).unwrap();
    std::fs::create_dir(f.model().join("config.json")).unwrap();
    std::fs::write(f.model().join("config.json/x"), "{}").unwrap();
    rejected(&f, "`config.json`: signed, but missing on disk");
}

#[test]
fn fifo() {
    let f = fixture();
    assert!(
        Command::new("mkfifo")
            .arg(f.model().join("pipe"))
            .status()
            .unwrap()
            .success()
    );
    rejected(&f, "`pipe` is a FIFO, not a regular file");
}

#[test]
fn hard_link_out_of_the_model() {
    let f = fixture();
    std::fs::hard_link(
        f.model().join("model.safetensors"),
        f.dir.path().join("alias"),
    )
    .unwrap();
    rejected(&f, "`model.safetensors` has 2 hard links");
}

#[test]
fn unreadable_file() {
    let f = fixture();
    let p = f.model().join("tokenizer.json");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&p).is_err() {
        expect(&f, &[], 1, "cannot read `tokenizer.json`");
        return;
    }
    // Running as root, which reads through permission bits: run vouch-init as `nobody`
    // instead, with everything but the tokenizer readable to it.
    for dir in [f.dir.path(), &f.model()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let log = f.dir.path().join("termination-log");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_vouch-init"))
        .arg("--model-dir")
        .arg(f.model())
        .arg("--attestation")
        .arg(f.attestation())
        .arg("--key")
        .arg(repo().join("testdata/keys/release.pub"))
        .arg("--termination-log")
        .arg(&log)
        .args(["--expect-model-digest", &f.digest])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot read `tokenizer.json`"), "{stderr}");
}

#[test]
fn wrong_pin() {
    let f = fixture();
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-init"))
        .arg("--model-dir")
        .arg(f.model())
        .arg("--attestation")
        .arg(f.attestation())
        .arg("--key")
        .arg(repo().join("testdata/keys/release.pub"))
        .arg("--termination-log")
        .arg(f.dir.path().join("termination-log"))
        .args([
            "--expect-model-digest",
            &format!("sha256:{}", "ab".repeat(32)),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not the attested model digest"));
}

#[test]
fn attestation_for_another_model() {
    let f = fixture();
    // A validly signed attestation of a different model replaces the mounted one.
    let other = f.dir.path().join("other-model");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("model.safetensors"), "other").unwrap();
    sign_attestation(&other, &f.attestation(), "release");
    rejected(&f, "is not the attested model digest");
}

#[test]
fn attestation_for_another_image() {
    let f = fixture();
    expect(
        &f,
        &[
            "--image",
            &format!(
                "registry.example.com/models/tiny-llm@sha256:{}",
                "22".repeat(32)
            ),
        ],
        1,
        "does not cover image digest",
    );
}

#[test]
fn wrong_key() {
    let f = fixture();
    sign_attestation(&f.model(), &f.attestation(), "other");
    rejected(
        &f,
        "signature is not trusted: the signature was made with another key",
    );
}

#[test]
fn malformed_attestation() {
    let f = fixture();
    let good = std::fs::read_to_string(f.attestation()).unwrap();
    for (bad, want) in [
        (
            "".to_owned(),
            "attestation.json` is empty; expected a Sigstore bundle",
        ),
        (
            good[..good.len() / 2].to_owned(),
            "attestation.json` is not JSON (line",
        ),
        (
            "{}".to_owned(),
            "is JSON but not a Sigstore bundle (it is an empty object)",
        ),
        (
            good.replace("\"payload\":\"", "\"payload\":\"AAAA"),
            "signature is not trusted",
        ),
        ("[1,2,3]".to_owned(), "is JSON but not an object"),
    ] {
        std::fs::write(f.attestation(), bad).unwrap();
        rejected(&f, want);
    }
}

#[test]
fn could_not_decide_is_exit_2() {
    let f = fixture();
    std::fs::remove_file(f.attestation()).unwrap();
    expect(&f, &[], 2, "cannot open attestation");
    let f = fixture();
    std::fs::remove_dir_all(f.model()).unwrap();
    expect(&f, &[], 2, "cannot read model directory");
}

#[test]
fn no_pin_at_all_is_refused() {
    let f = fixture();
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-init"))
        .arg("--model-dir")
        .arg(f.model())
        .arg("--attestation")
        .arg(f.attestation())
        .arg("--key")
        .arg(repo().join("testdata/keys/release.pub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("without a pin any validly signed model would pass")
    );
}

#[test]
fn environment_only_configuration_works_like_flags() {
    let f = fixture();
    let run = |digest: &str| {
        Command::new(env!("CARGO_BIN_EXE_vouch-init"))
            .env_clear()
            .env("VOUCH_MODEL_DIR", f.model())
            .env("VOUCH_ATTESTATION", f.attestation())
            .env("VOUCH_KEY", repo().join("testdata/keys/release.pub"))
            .env("VOUCH_EXPECT_MODEL_DIGEST", digest)
            .env(
                "VOUCH_TERMINATION_LOG",
                f.dir.path().join("termination-log"),
            )
            .output()
            .unwrap()
    };
    assert_eq!(run(&f.digest).status.code(), Some(0));
    assert_eq!(
        run(&format!("sha256:{}", "ab".repeat(32))).status.code(),
        Some(1)
    );
    flip_byte(&f.model().join("tokenizer.json"), 3);
    let out = run(&f.digest);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`tokenizer.json`: content differs"));
}

// `--policy FILE` (VOUCH_POLICY) instead of `--key`: the authorities of the rules that
// match `--image` may sign.

fn pinned_image() -> String {
    format!(
        "registry.example.com/models/tiny-llm@sha256:{}",
        "11".repeat(32)
    )
}

/// A policy over `registry.example.com/models/*` with these authorities (YAML list items)
/// and these names in the rule.
fn write_policy(f: &Fixture, authorities: &str, rule: &str) -> PathBuf {
    let path = f.dir.path().join("policy.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: vouch.dev/v1alpha1\nkind: TrustPolicy\nauthorities:\n{authorities}images:\n  - glob: registry.example.com/models/*\n    authorities: [{rule}]\n  - glob: 127.0.0.1:1/models/*\n    authorities: [{rule}]\ninitVerifierImage: registry.example.com/vouch/vouch-init@sha256:{}\n",
            "c3".repeat(32)
        ),
    )
    .unwrap();
    path
}

fn vouch_init_policy(f: &Fixture, policy: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch-init"))
        .arg("--model-dir")
        .arg(f.model())
        .arg("--policy")
        .arg(policy)
        .arg("--termination-log")
        .arg(f.dir.path().join("termination-log"))
        .args(["--expect-model-digest", &f.digest])
        .args(extra)
        .env_clear()
        .output()
        .unwrap()
}

/// Expect `code` with `want` in stderr and the termination log.
fn expect_policy(f: &Fixture, policy: &Path, extra: &[&str], code: i32, want: &str) {
    let out = vouch_init_policy(f, policy, extra);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains(want), "stderr lacks {want:?}:\n{stderr}");
    let log = std::fs::read_to_string(f.dir.path().join("termination-log")).unwrap();
    assert!(log.contains(want), "termination log lacks {want:?}:\n{log}");
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["verified"], false);
}

#[test]
fn policy_accepts_and_names_the_authority() {
    let f = fixture();
    let attestation = f.attestation();
    let image = pinned_image();
    let out = vouch_init_policy(
        &f,
        &repo().join("testdata/policy/enforce.yaml"),
        &[
            "--attestation",
            attestation.to_str().unwrap(),
            "--image",
            &image,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["verified"], true);
    assert_eq!(line["authority"], "release-ci");
    assert_eq!(line["modelDigest"], f.digest.as_str());

    // The same from the environment alone.
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-init"))
        .env_clear()
        .env("VOUCH_MODEL_DIR", f.model())
        .env("VOUCH_ATTESTATION", &attestation)
        .env("VOUCH_IMAGE", &image)
        .env("VOUCH_POLICY", repo().join("testdata/policy/enforce.yaml"))
        .env(
            "VOUCH_TERMINATION_LOG",
            f.dir.path().join("termination-log"),
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn policy_still_checks_every_byte() {
    let f = fixture();
    flip_byte(&f.model().join("tokenizer.json"), 10);
    expect_policy(
        &f,
        &repo().join("testdata/policy/enforce.yaml"),
        &[
            "--attestation",
            f.attestation().to_str().unwrap(),
            "--image",
            &pinned_image(),
        ],
        1,
        "`tokenizer.json`: content differs",
    );
}

#[test]
fn policy_trusting_another_key_rejects() {
    let f = fixture();
    let policy = write_policy(
        &f,
        &format!(
            "  - name: other-ci\n    key: {}\n",
            repo().join("testdata/keys/other.pub").display()
        ),
        "other-ci",
    );
    expect_policy(
        &f,
        &policy,
        &[
            "--attestation",
            f.attestation().to_str().unwrap(),
            "--image",
            &pinned_image(),
        ],
        1,
        "trusts `other-ci` for `registry.example.com/models/tiny-llm`",
    );
    let log = std::fs::read_to_string(f.dir.path().join("termination-log")).unwrap();
    assert!(log.contains("not signed by `other-ci`"), "{log}");
}

#[test]
fn policy_with_an_attestation_for_another_image_rejects() {
    let f = fixture();
    expect_policy(
        &f,
        &repo().join("testdata/policy/enforce.yaml"),
        &[
            "--attestation",
            f.attestation().to_str().unwrap(),
            "--image",
            &format!(
                "registry.example.com/models/tiny-llm@sha256:{}",
                "22".repeat(32)
            ),
        ],
        1,
        "does not cover image digest",
    );
}

#[test]
fn policy_without_image_is_a_usage_error() {
    let f = fixture();
    expect_policy(
        &f,
        &repo().join("testdata/policy/enforce.yaml"),
        &["--attestation", f.attestation().to_str().unwrap()],
        2,
        "`--policy` needs the pinned image, `--image REF@sha256:HEX`",
    );
}

#[test]
fn policy_and_key_together_are_a_usage_error() {
    let f = fixture();
    let key = repo().join("testdata/keys/release.pub");
    expect_policy(
        &f,
        &repo().join("testdata/policy/enforce.yaml"),
        &[
            "--attestation",
            f.attestation().to_str().unwrap(),
            "--image",
            &pinned_image(),
            "--key",
            key.to_str().unwrap(),
        ],
        2,
        "not both",
    );
}

#[test]
fn policy_that_covers_no_rule_for_the_image_rejects() {
    let f = fixture();
    expect_policy(
        &f,
        &repo().join("testdata/policy/enforce.yaml"),
        &[
            "--attestation",
            f.attestation().to_str().unwrap(),
            "--image",
            &format!(
                "registry.example.com/tools/fetcher@sha256:{}",
                "11".repeat(32)
            ),
        ],
        1,
        "no rule of the policy",
    );
}

#[test]
fn policy_with_only_keyless_authorities_rejects_never_accepts() {
    let f = fixture();
    let policy = write_policy(
        &f,
        "  - name: github-release\n    keyless:\n      issuer: https://token.actions.githubusercontent.com\n      subject: https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1\n",
        "github-release",
    );
    expect_policy(
        &f,
        &policy,
        &[
            "--attestation",
            f.attestation().to_str().unwrap(),
            "--image",
            &pinned_image(),
        ],
        1,
        "not signed by `github-release`",
    );
}

#[test]
fn malformed_policy_is_exit_2() {
    let f = fixture();
    expect_policy(
        &f,
        &repo().join("testdata/policy/invalid/unknown-field.yaml"),
        &[
            "--attestation",
            f.attestation().to_str().unwrap(),
            "--image",
            &pinned_image(),
        ],
        2,
        "unknown field `requireDigests`",
    );
}

#[test]
fn policy_with_image_alone_fetches_from_the_registry() {
    // Nothing listens on port 1: the fetch fails, which is "could not decide", after the
    // policy was loaded and found to cover the image.
    let f = fixture();
    let policy = write_policy(
        &f,
        &format!(
            "  - name: release-ci\n    key: {}\n",
            repo().join("testdata/keys/release.pub").display()
        ),
        "release-ci",
    );
    expect_policy(
        &f,
        &policy,
        &[
            "--image",
            &format!("127.0.0.1:1/models/tiny-llm@sha256:{}", "11".repeat(32)),
        ],
        2,
        "cannot fetch the attestations of 127.0.0.1:1/models/tiny-llm",
    );
}

/// The JSON line of a failed run, checked for the shape `vouch --json` shares.
fn json_failure(out: &Output, code: i32) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(code), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["verified"], false);
    let outcome = if code == 1 { "rejected" } else { "undecided" };
    assert_eq!(line["outcome"], outcome, "{line}");
    assert_eq!(line["decision"], outcome, "{line}");
    assert_eq!(line["exitCode"], code, "{line}");
    let errors = line["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{line}");
    for e in errors {
        for field in [
            "kind", "file", "role", "expected", "found", "message", "hint",
        ] {
            assert!(e.get(field).is_some(), "error lacks `{field}`: {e}");
        }
    }
    // The same reason, as text, on stderr: twice on a terminal, by design.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(line["message"].as_str().unwrap()),
        "{stderr}"
    );
    line
}

#[test]
fn rejected_json_line_carries_each_difference_as_data() {
    let f = fixture();
    flip_byte(&f.model().join("tokenizer.json"), 10);
    let line = json_failure(&vouch_init(&f, &[]), 1);
    assert_eq!(line["kind"], "model-mismatch");
    let e = &line["errors"][0];
    assert_eq!(e["kind"], "content-differs", "{line}");
    assert_eq!(e["file"], "tokenizer.json");
    assert_eq!(e["role"], "tokenizer");
    assert!(e["expected"].as_str().unwrap().starts_with("sha256:"));
    assert_ne!(e["expected"], e["found"]);
    assert!(
        e["hint"]
            .as_str()
            .unwrap()
            .contains("restore it from the release")
    );
}

#[test]
fn undecided_json_line_has_the_same_shape() {
    let f = fixture();
    std::fs::remove_file(f.attestation()).unwrap();
    let line = json_failure(&vouch_init(&f, &[]), 2);
    assert!(
        line["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot open attestation"),
        "{line}"
    );
    // A usage error too.
    let f = fixture();
    let line = json_failure(&vouch_init(&f, &["--policy", "p.yaml"]), 2);
    assert_eq!(line["kind"], "usage", "{line}");
}

#[test]
fn a_certificate_or_private_key_as_key_says_what_to_mount() {
    let f = fixture();
    let run = |key: PathBuf| {
        Command::new(env!("CARGO_BIN_EXE_vouch-init"))
            .arg("--model-dir")
            .arg(f.model())
            .arg("--attestation")
            .arg(f.attestation())
            .arg("--key")
            .arg(key)
            .args(["--expect-model-digest", &f.digest])
            .arg("--termination-log")
            .arg(f.dir.path().join("termination-log"))
            .env_clear()
            .output()
            .unwrap()
    };
    let out = run(repo().join("testdata/oms/leaf.pem"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is a certificate, not a public key"),
        "{stderr}"
    );
    assert!(stderr.contains("openssl x509 -in"), "{stderr}");
    assert!(!stderr.contains("no items found"), "{stderr}");
    let out = run(repo().join("testdata/keys/release.key"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a private key"), "{stderr}");
    assert!(stderr.contains("`.pub` file"), "{stderr}");
}

#[test]
fn help_shows_env_names_without_values_and_says_where_the_reason_goes() {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-init"))
        .arg("--help")
        .env_clear()
        .env("VOUCH_KEY", "/secret/where.pub")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[env: VOUCH_MODEL_DIR]"), "{help}");
    assert!(help.contains("[env: VOUCH_KEY]"), "{help}");
    assert!(!help.contains("VOUCH_MODEL_DIR="), "{help}");
    assert!(!help.contains("=]"), "no flag shows an env value: {help}");
    assert!(!help.contains("/secret/where.pub"), "{help}");
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("the reason is written twice on purpose"),
        "{help}"
    );
    assert!(flat.contains("as text on stderr"), "{help}");
}

// --- `--model-artifact` without a registry: what is decided before the pull, and a volume
// that already holds the model. The pull itself runs against real registries in
// scripts/modelpack-e2e.

const ARTIFACT: &str = "127.0.0.1:1/models/tiny-llm-weights";

/// An attestation of the example model as the artifact `ARTIFACT@sha256:<22..>`, signed
/// with `release.key`, and an empty volume beside it.
fn artifact_fixture() -> (Fixture, String) {
    let f = fixture();
    let scan = ScanOptions::default();
    let manifest = vouch_model::hash_dir(&f.model(), &scan, &HashOptions::default(), None).unwrap();
    let digests: Vec<(String, u64, String)> = manifest
        .resources()
        .iter()
        .map(|r| (r.path.to_string(), r.size.unwrap(), r.digest.to_string()))
        .collect();
    let files: Vec<vouch_attest::ArtifactFile<'_>> = digests
        .iter()
        .map(|(p, s, d)| vouch_attest::ArtifactFile {
            path: p,
            size: *s,
            digest: d,
        })
        .collect();
    let artifact_digest = Digest {
        algorithm: HashAlgorithm::Sha256,
        bytes: [0x22; 32],
    };
    let model = Model::from_artifact(
        "tiny-llm",
        vouch_attest::ModelArtifact {
            name: ARTIFACT.into(),
            digest: artifact_digest,
            media_type: None,
        },
        &files,
    )
    .unwrap();
    write_signed(model, &f.attestation(), "release");
    std::fs::create_dir(f.dir.path().join("volume")).unwrap();
    (f, format!("{ARTIFACT}@{artifact_digest}"))
}

fn vouch_init_pull(f: &Fixture, dir: &Path, artifact: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch-init"))
        .arg("--model-dir")
        .arg(dir)
        .arg("--attestation")
        .arg(f.attestation())
        .arg("--key")
        .arg(repo().join("testdata/keys/release.pub"))
        .arg("--termination-log")
        .arg(f.dir.path().join("termination-log"))
        .args(["--model-artifact", artifact])
        .env_clear()
        .output()
        .unwrap()
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn model_artifact_another_digest_is_refused_before_anything_is_fetched_or_written() {
    let (f, _) = artifact_fixture();
    let volume = f.dir.path().join("volume");
    let other = format!("{ARTIFACT}@sha256:{}", "33".repeat(32));
    let out = vouch_init_pull(&f, &volume, &other);
    let line = json_failure(&out, 1);
    assert_eq!(line["kind"], "artifact-mismatch");
    let e = &line["errors"][0];
    assert_eq!(e["expected"], format!("sha256:{}", "33".repeat(32)));
    assert_eq!(e["found"], format!("{ARTIFACT}@sha256:{}", "22".repeat(32)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the attestation covers model artifact"),
        "{stderr}"
    );
    assert!(is_empty(&volume));
}

#[test]
fn model_artifact_with_a_directory_attestation_is_refused() {
    let f = fixture();
    let volume = f.dir.path().join("volume");
    std::fs::create_dir(&volume).unwrap();
    let out = vouch_init_pull(
        &f,
        &volume,
        &format!("{ARTIFACT}@sha256:{}", "22".repeat(32)),
    );
    let line = json_failure(&out, 1);
    assert_eq!(line["kind"], "artifact-mismatch");
    assert!(
        line["errors"][0]["found"]
            .as_str()
            .unwrap()
            .contains("it attests a model directory"),
        "{line}"
    );
    assert!(is_empty(&volume));
}

#[test]
fn model_artifact_by_tag_is_a_usage_error() {
    let (f, _) = artifact_fixture();
    let volume = f.dir.path().join("volume");
    let out = vouch_init_pull(&f, &volume, &format!("{ARTIFACT}:v1"));
    let line = json_failure(&out, 2);
    assert_eq!(line["kind"], "usage");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("--model-artifact")
    );
}

#[test]
fn model_artifact_registry_down_is_undecided_and_leaves_the_volume_empty() {
    let (f, artifact) = artifact_fixture();
    let volume = f.dir.path().join("volume");
    let out = vouch_init_pull(&f, &volume, &artifact);
    let line = json_failure(&out, 2);
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("cannot use the model artifact"),
        "{line}"
    );
    assert!(is_empty(&volume));
}

#[test]
fn model_artifact_volume_holding_the_model_is_checked_in_place_and_a_stale_pull_removed() {
    // A restarted Pod: the volume kept the verified model (and a killed run's directory).
    let (f, artifact) = artifact_fixture();
    let stale = f.model().join(".vouch-pull-1-1");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("model.safetensors"), b"partial").unwrap();
    let out = vouch_init_pull(&f, &f.model(), &artifact);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["pulled"], false);
    assert_eq!(line["modelArtifact"], artifact.as_str());
    assert_eq!(line["modelDigest"], f.digest.as_str());
    assert!(!stale.exists());
}

#[test]
fn model_artifact_volume_holding_other_files_is_refused() {
    let (f, artifact) = artifact_fixture();
    let volume = f.dir.path().join("volume");
    std::fs::write(volume.join("notes.txt"), b"not the model").unwrap();
    let out = vouch_init_pull(&f, &volume, &artifact);
    let line = json_failure(&out, 1);
    assert_eq!(line["kind"], "model-mismatch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert!(stderr.contains("hint: mount an empty volume"), "{stderr}");
    // Nothing was added or removed.
    let names: Vec<_> = std::fs::read_dir(&volume)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"]);
}
