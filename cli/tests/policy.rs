//! The trust policy in the `vouch` binary: `vouch verify --policy` (the authorities of the
//! image's `images` rules decide who may sign) and `vouch policy check` over manifests.
//!
//! Attestations are made by `vouch attest` itself, over the example image layout
//! (`testdata/image:v1`) named `registry.example.com/models/tiny-llm`, so that
//! `testdata/policy/enforce.yaml`'s glob `registry.example.com/models/*` covers them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{repo, run};
use std::path::{Path, PathBuf};

const NAME: &str = "registry.example.com/models/tiny-llm";
/// The model digest of `testdata/models/tiny-llm` (also pinned in testdata/policy/manifests).
const MODEL_DIGEST: &str =
    "sha256:0c2896e1f6f3de15409c9f3c4fbb230059405f27aa99867fc835b37ac286a735";
/// The stand-in server image digest of testdata/policy/manifests.
const SERVER_HEX: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";

fn enforce() -> PathBuf {
    repo().join("testdata/policy/enforce.yaml")
}

/// The manifest digest (`sha256:HEX`) of `testdata/image:v1`.
fn layout_digest() -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("testdata/image/index.json")).unwrap())
            .unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    let v1 = manifests
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "v1")
        .unwrap();
    v1["digest"].as_str().unwrap().to_owned()
}

fn image() -> String {
    format!("{NAME}@{}", layout_digest())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// The attestation signed with `testdata/keys/<key>.key`.
    fn signed(&self, key: &str) -> PathBuf {
        self.dir.path().join(format!("{key}.json"))
    }
}

/// Attestations of the example image and model, signed with release.key and other.key by
/// `vouch attest`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    for key in ["release", "other"] {
        let out = dir.path().join(format!("{key}.json"));
        let key = repo().join(format!("testdata/keys/{key}.key"));
        let (_, stderr) = run(
            &[
                "attest",
                "--image-layout",
                "testdata/image:v1",
                "--image-name",
                NAME,
                "--model",
                "testdata/models/tiny-llm",
                "--key",
                s(&key),
                "--output",
                s(&out),
            ],
            0,
        );
        assert!(stderr.contains(MODEL_DIGEST), "{stderr}");
    }
    Fixture { dir }
}

/// `vouch verify --attestation FILE --image IMAGE --policy POLICY` plus `extra`.
fn verify(
    attestation: &Path,
    image: &str,
    policy: &Path,
    extra: &[&str],
    code: i32,
) -> (String, String) {
    let mut args = vec![
        "verify",
        "--attestation",
        s(attestation),
        "--image",
        image,
        "--policy",
        s(policy),
    ];
    args.extend_from_slice(extra);
    run(&args, code)
}

fn write_policy(dir: &Path, name: &str, authorities: &str, rule: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "apiVersion: vouch.dev/v1alpha1\nkind: TrustPolicy\nauthorities:\n{authorities}images:\n  - glob: registry.example.com/models/*\n    authorities: [{rule}]\ninitVerifierImage: registry.example.com/vouch/vouch-init@sha256:{}\n",
            "c3".repeat(32)
        ),
    )
    .unwrap();
    path
}

#[test]
fn accepted_with_the_policy_names_the_authority() {
    let f = fixture();
    let (stdout, _) = verify(&f.signed("release"), &image(), &enforce(), &[], 0);
    assert!(
        stdout.starts_with("verified: attestation signed by public key "),
        "{stdout}"
    );
    assert!(stdout.contains("(authority `release-ci`)"), "{stdout}");
    assert!(stdout.contains(MODEL_DIGEST), "{stdout}");
}

#[test]
fn accepted_with_model_check_pin_and_json() {
    let f = fixture();
    let (stdout, _) = verify(
        &f.signed("release"),
        &image(),
        &enforce(),
        &[
            "--model",
            "testdata/models/tiny-llm",
            "--expect-model-digest",
            MODEL_DIGEST,
            "--json",
        ],
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["authority"], "release-ci");
    assert_eq!(v["modelDigest"], MODEL_DIGEST);
    assert_eq!(v["modelChecked"]["files"], 6);
    assert_eq!(v["images"][0], image());
}

#[test]
fn the_policy_path_still_checks_the_pin_and_the_model() {
    let f = fixture();
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let (_, stderr) = verify(
        &f.signed("release"),
        &image(),
        &enforce(),
        &["--expect-model-digest", &wrong],
        1,
    );
    assert!(
        stderr.contains("is not the attested model digest"),
        "{stderr}"
    );

    let model = f.dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for e in std::fs::read_dir(repo().join("testdata/models/tiny-llm")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), model.join(e.file_name())).unwrap();
    }
    std::fs::write(model.join("config.json"), "{}").unwrap();
    let (_, stderr) = verify(
        &f.signed("release"),
        &image(),
        &enforce(),
        &["--model", s(&model)],
        1,
    );
    assert!(stderr.contains("`config.json`"), "{stderr}");
}

#[test]
fn another_signer_is_rejected_naming_the_authorities() {
    let f = fixture();
    let (stdout, stderr) = verify(&f.signed("other"), &image(), &enforce(), &[], 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("the policy trusts `release-ci`, `github-release` for `registry.example.com/models/tiny-llm`"),
        "{stderr}"
    );
    assert!(stderr.contains("not signed by `release-ci`"), "{stderr}");
    assert!(
        stderr.contains("not signed by `github-release`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
}

#[test]
fn a_policy_trusting_another_key_rejects_release_key() {
    let f = fixture();
    let other_pub = repo().join("testdata/keys/other.pub");
    let policy = write_policy(
        f.dir.path(),
        "other.yaml",
        &format!("  - name: other-ci\n    key: {}\n", other_pub.display()),
        "other-ci",
    );
    let (_, stderr) = verify(&f.signed("release"), &image(), &policy, &[], 1);
    assert!(stderr.contains("`other-ci`"), "{stderr}");
    let (stdout, _) = verify(&f.signed("other"), &image(), &policy, &[], 0);
    assert!(stdout.contains("(authority `other-ci`)"), "{stdout}");
}

#[test]
fn an_attestation_for_another_image_is_rejected() {
    let f = fixture();
    let other = format!("{NAME}@sha256:{}", "22".repeat(32));
    let (_, stderr) = verify(&f.signed("release"), &other, &enforce(), &[], 1);
    assert!(stderr.contains("signed by `release-ci`, but"), "{stderr}");
    assert!(stderr.contains("does not cover"), "{stderr}");
}

#[test]
fn an_image_no_rule_covers_is_rejected() {
    let f = fixture();
    let uncovered = format!("registry.example.com/tools/fetcher@{}", layout_digest());
    let (_, stderr) = verify(&f.signed("release"), &uncovered, &enforce(), &[], 1);
    assert!(
        stderr.contains("no rule of the policy")
            && stderr.contains("covers `registry.example.com/tools/fetcher`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: add an `images` rule"), "{stderr}");
}

#[test]
fn a_key_signed_attestation_does_not_pass_a_keyless_authority() {
    let f = fixture();
    let policy = write_policy(
        f.dir.path(),
        "keyless.yaml",
        "  - name: github-release\n    keyless:\n      issuer: https://token.actions.githubusercontent.com\n      subject: https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1\n",
        "github-release",
    );
    let (stdout, stderr) = verify(&f.signed("release"), &image(), &policy, &[], 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("not signed by `github-release`")
            && stderr.contains("signed with a managed key"),
        "{stderr}"
    );
}

#[test]
fn policy_without_image_is_a_usage_error() {
    let f = fixture();
    let (_, stderr) = run(
        &[
            "verify",
            "--attestation",
            s(&f.signed("release")),
            "--policy",
            s(&enforce()),
        ],
        2,
    );
    assert!(
        stderr.contains("`--policy` needs `--image REF@sha256:HEX`"),
        "{stderr}"
    );
    assert!(stderr.contains("a policy decides by image"), "{stderr}");
}

#[test]
fn policy_with_a_tag_is_a_usage_error() {
    let f = fixture();
    let (_, stderr) = verify(
        &f.signed("release"),
        &format!("{NAME}:v1"),
        &enforce(),
        &[],
        2,
    );
    assert!(stderr.contains("names the image by tag"), "{stderr}");
}

#[test]
fn key_and_policy_together_are_refused() {
    let f = fixture();
    let key = repo().join("testdata/keys/release.pub");
    let (_, stderr) = verify(
        &f.signed("release"),
        &image(),
        &enforce(),
        &["--key", s(&key)],
        2,
    );
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    // Neither is refused too.
    let (_, stderr) = run(
        &[
            "verify",
            "--attestation",
            s(&f.signed("release")),
            "--image",
            &image(),
        ],
        2,
    );
    assert!(stderr.contains("--policy <FILE>"), "{stderr}");
}

#[test]
fn key_still_works_without_policy() {
    let f = fixture();
    let key = repo().join("testdata/keys/release.pub");
    let (stdout, _) = run(
        &[
            "verify",
            "--attestation",
            s(&f.signed("release")),
            "--image",
            &image(),
            "--key",
            s(&key),
            "--json",
        ],
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert!(v["authority"].is_null());
}

#[test]
fn a_malformed_policy_is_exit_2_with_the_yaml_error() {
    let f = fixture();
    let (_, stderr) = verify(
        &f.signed("release"),
        &image(),
        &repo().join("testdata/policy/invalid/unknown-field.yaml"),
        &[],
        2,
    );
    assert!(
        stderr.contains("unknown field `requireDigests`"),
        "{stderr}"
    );
    assert!(stderr.contains("line 7"), "{stderr}");

    let broken = f.dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: vouch.dev/v1alpha1\nkind: TrustPolicy\nauthorities: [\n  - name: x\n",
    )
    .unwrap();
    let (_, stderr) = verify(&f.signed("release"), &image(), &broken, &[], 2);
    assert!(stderr.contains("not a valid TrustPolicy"), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");

    let missing = f.dir.path().join("missing.yaml");
    let (_, stderr) = verify(&f.signed("release"), &image(), &missing, &[], 2);
    assert!(stderr.contains("cannot read the policy file"), "{stderr}");
}

// `vouch policy check`: the manifests of testdata/policy/manifests, with the stand-in
// server digest replaced by the example image layout's, checked against bundles made by
// `vouch attest`.

fn manifest(f: &Fixture, name: &str) -> PathBuf {
    let text =
        std::fs::read_to_string(repo().join(format!("testdata/policy/manifests/{name}"))).unwrap();
    assert!(text.contains(SERVER_HEX));
    let hex = layout_digest().trim_start_matches("sha256:").to_owned();
    let path = f.dir.path().join(name);
    std::fs::write(&path, text.replace(SERVER_HEX, &hex)).unwrap();
    path
}

fn check(f: &Fixture, manifest: &Path, attestation: &str, code: i32) -> String {
    let (stdout, _) = run(
        &[
            "policy",
            "check",
            "--policy",
            s(&enforce()),
            "--attestation",
            s(&f.signed(attestation)),
            s(manifest),
        ],
        code,
    );
    stdout
}

#[test]
fn policy_check_allows_attested_manifests() {
    let f = fixture();
    let stdout = check(&f, &manifest(&f, "allowed.yaml"), "release", 0);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines.iter().all(|l| l.starts_with("allow")), "{stdout}");
}

#[test]
fn policy_check_denies_an_untrusted_signer() {
    let f = fixture();
    let stdout = check(&f, &manifest(&f, "allowed.yaml"), "other", 1);
    assert!(stdout.lines().any(|l| l.starts_with("deny")), "{stdout}");
    assert!(stdout.contains("release-ci"), "{stdout}");
}

#[test]
fn policy_check_denies_the_denied_manifests() {
    let f = fixture();
    let stdout = check(&f, &manifest(&f, "denied.yaml"), "release", 1);
    assert!(stdout.contains("not pinned by digest"), "{stdout}");
    assert!(stdout.contains("set `readOnly: true`"), "{stdout}");
    let denied = stdout.lines().filter(|l| l.starts_with("deny")).count();
    assert!(denied >= 2, "{stdout}");
}
