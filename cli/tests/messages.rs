//! What a user sees when something is wrong: `--json` failures (one document on stdout,
//! every command, rejected and undecided), the messages for files that are not what a flag
//! takes, placeholders left in image references, `--help`, and the documented example
//! command of `deploy/policy.example.yaml`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_example_model, key, repo, run, vouch};
use serde_json::Value;

const MODEL_DIGEST: &str =
    "sha256:0c2896e1f6f3de15409c9f3c4fbb230059405f27aa99867fc835b37ac286a735";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Run with `--json`, expect a failure with `code`, and return the one JSON document on
/// stdout after checking the shape every command shares.
#[track_caller]
fn json_failure(args: &[&str], code: i32) -> Value {
    let (stdout, stderr) = run(args, code);
    let doc: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"));
    assert_eq!(doc["verified"], false, "{doc}");
    let outcome = if code == 1 { "rejected" } else { "undecided" };
    assert_eq!(doc["outcome"], outcome, "{doc}");
    assert_eq!(doc["exitCode"], code, "{doc}");
    assert!(doc["kind"].is_string(), "{doc}");
    let message = doc["message"].as_str().unwrap();
    assert!(!message.is_empty());
    // The text is still on stderr for people.
    assert!(
        stderr.contains(message),
        "stderr lacks {message:?}:\n{stderr}"
    );
    let errors = doc["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{doc}");
    for e in errors {
        for field in [
            "kind", "file", "role", "expected", "found", "message", "hint",
        ] {
            assert!(e.get(field).is_some(), "error lacks `{field}`: {e}");
        }
        assert!(e["kind"].is_string() && e["message"].is_string(), "{e}");
    }
    doc
}

/// A temporary directory with a copy of the example model.
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
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    /// The model with a symbolic link in it (refused: exit 1).
    fn linked_model(&self) -> PathBuf {
        let m = self.path("linked");
        std::fs::create_dir(&m).unwrap();
        std::fs::write(m.join("a.bin"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", m.join("link")).unwrap();
        m
    }
    /// `vouch model sign` of the model, to `model.sig` outside it.
    fn signature(&self) -> PathBuf {
        let sig = self.path("model.sig");
        run(
            &[
                "model",
                "sign",
                s(&self.model()),
                "--key",
                s(&key("release.key")),
                "--signature",
                s(&sig),
                "--quiet",
            ],
            0,
        );
        sig
    }
    /// `vouch attest` of the example image layout and the model.
    fn attestation(&self) -> PathBuf {
        let out = self.path("attestation.json");
        run(
            &[
                "attest",
                "--image-layout",
                "testdata/image:v1",
                "--image-name",
                "registry.example.com/models/tiny-llm",
                "--model",
                s(&self.model()),
                "--key",
                s(&key("release.key")),
                "--output",
                s(&out),
                "--quiet",
            ],
            0,
        );
        out
    }
    fn tamper_config(&self) {
        let p = self.model().join("config.json");
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push(' ');
        std::fs::write(p, text).unwrap();
    }
}

// --- `--json`: one document on stdout, rejected (1) and undecided (2), every command.

#[test]
fn model_hash_json_failures() {
    let w = Work::new();
    let doc = json_failure(&["model", "hash", s(&w.linked_model()), "--json"], 1);
    assert_eq!(doc["kind"], "model-file");
    json_failure(&["model", "hash", s(&w.path("absent")), "--json"], 2);
}

#[test]
fn model_sign_json_failures() {
    let w = Work::new();
    let k = key("release.key");
    let sig = w.path("x.sig");
    json_failure(
        &[
            "model",
            "sign",
            s(&w.linked_model()),
            "--key",
            s(&k),
            "--signature",
            s(&sig),
            "--json",
        ],
        1,
    );
    let doc = json_failure(
        &[
            "model",
            "sign",
            s(&w.model()),
            "--key",
            s(&w.path("absent.key")),
            "--json",
        ],
        2,
    );
    assert!(doc["message"].as_str().unwrap().contains("absent.key"));
}

#[test]
fn model_verify_json_failures_carry_the_differences_as_data() {
    let w = Work::new();
    let sig = w.signature();
    w.tamper_config();
    let doc = json_failure(
        &[
            "model",
            "verify",
            s(&w.model()),
            "--signature",
            s(&sig),
            "--key",
            s(&key("release.pub")),
            "--json",
        ],
        1,
    );
    assert_eq!(doc["kind"], "model-mismatch");
    let e = &doc["errors"][0];
    // OMS signatures record no sizes: the digests differ.
    assert_eq!(e["kind"], "content-differs", "{doc}");
    assert_eq!(e["file"], "config.json");
    assert!(
        e["expected"].as_str().unwrap().starts_with("sha256:"),
        "{e}"
    );
    assert!(e["found"].as_str().unwrap().starts_with("sha256:"), "{e}");
    assert_ne!(e["expected"], e["found"]);
    assert!(e["hint"].as_str().unwrap().contains("sign the model again"));
    json_failure(
        &[
            "model",
            "verify",
            s(&w.model()),
            "--signature",
            s(&w.path("absent.sig")),
            "--key",
            s(&key("release.pub")),
            "--json",
        ],
        2,
    );
}

#[test]
fn attest_json_failures() {
    let w = Work::new();
    let args = |model: &Path| -> Vec<String> {
        [
            "attest",
            "--image-layout",
            "testdata/image:v1",
            "--model",
            s(model),
            "--key",
            s(&key("release.key")),
            "--output",
            s(&w.path("a.json")),
            "--json",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let linked = w.linked_model();
    let a = args(&linked);
    json_failure(&a.iter().map(String::as_str).collect::<Vec<_>>(), 1);
    let a = args(&w.path("absent"));
    json_failure(&a.iter().map(String::as_str).collect::<Vec<_>>(), 2);
    // A usage error clap reports is a JSON document too.
    let doc = json_failure(&["attest", "--json", "--bogus"], 2);
    assert_eq!(doc["kind"], "usage");
}

#[test]
fn verify_json_failures_name_file_role_expected_and_found() {
    let w = Work::new();
    let att = w.attestation();
    // Same size, other content: a content difference with both digests.
    let p = w.model().join("config.json");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replacen('{', "[", 1)).unwrap();
    let doc = json_failure(
        &[
            "verify",
            "--attestation",
            s(&att),
            "--key",
            s(&key("release.pub")),
            "--model",
            s(&w.model()),
            "--json",
        ],
        1,
    );
    let e = &doc["errors"][0];
    assert_eq!(e["kind"], "content-differs", "{doc}");
    assert_eq!(e["file"], "config.json");
    assert_eq!(e["role"], "config");
    assert!(
        e["expected"].as_str().unwrap().starts_with("sha256:"),
        "{e}"
    );
    assert!(e["found"].as_str().unwrap().starts_with("sha256:"), "{e}");
    assert_ne!(e["expected"], e["found"]);
    assert!(
        e["hint"]
            .as_str()
            .unwrap()
            .contains("attest the model again")
    );
    // The pin: what was asked for and what the attestation says.
    let doc = json_failure(
        &[
            "verify",
            "--attestation",
            s(&att),
            "--key",
            s(&key("release.pub")),
            "--expect-model-digest",
            &format!("sha256:{}", "0".repeat(64)),
            "--json",
        ],
        1,
    );
    assert_eq!(doc["errors"][0]["kind"], "pin-mismatch", "{doc}");
    assert_eq!(doc["errors"][0]["found"], MODEL_DIGEST);
    json_failure(
        &[
            "verify",
            "--attestation",
            s(&w.path("absent.json")),
            "--key",
            s(&key("release.pub")),
            "--json",
        ],
        2,
    );
}

#[test]
fn inspect_json_failures() {
    let w = Work::new();
    let doc = json_failure(&["inspect", s(&w.write("o.json", "{}")), "--json"], 1);
    assert_eq!(doc["errors"][0]["file"], s(&w.path("o.json")));
    json_failure(&["inspect", s(&w.path("absent.json")), "--json"], 2);
}

#[test]
fn verify_bundle_json_failures() {
    let w = Work::new();
    let artifact = w.write("artifact.txt", "a");
    let who = [
        "--certificate-identity",
        "a@example.com",
        "--certificate-oidc-issuer",
        "https://issuer.example.com",
    ];
    let empty = w.write("empty.json", "{}");
    let mut args = vec!["verify-bundle", "--bundle", s(&empty)];
    args.extend(who);
    args.extend([s(&artifact), "--json"]);
    json_failure(&args, 1);
    let mut args = vec!["verify-bundle", "--bundle", s(&empty)];
    args.extend(who);
    let root = w.path("absent-root.json");
    args.extend(["--trusted-root", s(&root), s(&artifact), "--json"]);
    json_failure(&args, 2);
}

#[test]
fn sign_bundle_json_failure() {
    // Signing never says "rejected": a missing token is "could not decide".
    let w = Work::new();
    let artifact = w.write("artifact.txt", "a");
    let doc = json_failure(
        &[
            "sign-bundle",
            "--bundle",
            s(&w.path("b.json")),
            "--fulcio-url",
            "http://127.0.0.1:1",
            "--rekor-url",
            "http://127.0.0.1:1",
            s(&artifact),
            "--json",
        ],
        2,
    );
    assert_eq!(doc["kind"], "keyless");
    assert!(
        doc["message"]
            .as_str()
            .unwrap()
            .contains("no OIDC identity token")
    );
    assert!(
        doc["errors"][0]["hint"]
            .as_str()
            .unwrap()
            .contains("--identity-token")
    );
}

// --- `vouch policy check`.

/// The demo manifest with its server image moved to a registry on 127.0.0.1 that refuses
/// connections, and a policy covering it.
fn unreachable_demo(w: &Work) -> (PathBuf, PathBuf) {
    let pod = std::fs::read_to_string(repo().join("deploy/examples/demo/tiny-llm.yaml"))
        .unwrap()
        .replace(
            "registry.example.com/models/tiny-llm-server",
            "127.0.0.1:1/models/tiny-llm-server",
        );
    let policy = std::fs::read_to_string(repo().join("deploy/policy.example.yaml"))
        .unwrap()
        .replace(
            "glob: registry.example.com/models/*",
            "glob: 127.0.0.1:1/models/*",
        );
    (w.write("pod.yaml", &pod), w.write("policy.yaml", &policy))
}

#[test]
fn policy_check_json_denied_is_one_document_with_every_problem() {
    let doc = json_failure(
        &[
            "policy",
            "check",
            "--policy",
            "deploy/policy.example.yaml",
            "deploy/examples/pod-model-server.yaml",
            "--json",
        ],
        1,
    );
    assert_eq!(doc["kind"], "denied");
    assert_eq!(doc["objects"][0]["decision"], "deny", "{doc}");
    let errors = doc["errors"].as_array().unwrap();
    assert!(errors.len() >= 3, "{doc}");
    assert!(
        errors
            .iter()
            .all(|e| e["file"] == "deploy/examples/pod-model-server.yaml"),
        "{doc}"
    );
    // The placeholders are named as such, not as "spaces or control characters".
    let text = doc.to_string();
    assert!(
        text.contains("still holds the placeholder `<image digest>`"),
        "{text}"
    );
    assert!(!text.contains("control characters"), "{text}");
}

/// The image-volume template: denied until both digests are filled in, each placeholder
/// named; and no vouch-init is asked for (the model arrives as an image volume).
/// `scripts/cluster-e2e` fills it in and creates it through a real kube-apiserver.
#[test]
fn policy_check_names_the_placeholders_of_the_image_volume_example() {
    let doc = json_failure(
        &[
            "policy",
            "check",
            "--policy",
            "deploy/policy.example.yaml",
            "deploy/examples/pod-image-volume.yaml",
            "--json",
        ],
        1,
    );
    assert_eq!(doc["objects"][0]["decision"], "deny", "{doc}");
    let text = doc.to_string();
    for placeholder in ["`<artifact digest>`", "`<image digest>`"] {
        assert!(
            text.contains(&format!("still holds the placeholder {placeholder}")),
            "{text}"
        );
    }
    assert!(!text.contains("vouch-init"), "{text}");
    assert_eq!(doc["errors"].as_array().unwrap().len(), 2, "{doc}");
}

#[test]
fn policy_check_json_undecided_and_its_hint_speaks_of_this_command() {
    let w = Work::new();
    let (pod, policy) = unreachable_demo(&w);
    let doc = json_failure(
        &["policy", "check", "--policy", s(&policy), s(&pod), "--json"],
        2,
    );
    assert_eq!(doc["objects"][0]["decision"], "undecided", "{doc}");
    let e = &doc["errors"][0];
    assert_eq!(e["kind"], "could-not-verify", "{doc}");
    let hint = e["hint"].as_str().unwrap();
    assert!(
        hint.contains("this machine can reach the registry"),
        "{hint}"
    );
    assert!(hint.contains("--attestation FILE"), "{hint}");
    assert!(!doc.to_string().contains("webhook"), "{doc}");
    // And in the text.
    let (stdout, _) = run(&["policy", "check", "--policy", s(&policy), s(&pod)], 2);
    assert!(
        stdout.contains("this machine can reach the registry"),
        "{stdout}"
    );
    assert!(!stdout.contains("webhook"), "{stdout}");
}

#[test]
fn the_documented_policy_example_command_passes() {
    let text = std::fs::read_to_string(repo().join("deploy/policy.example.yaml")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("#   vouch policy check "))
        .expect("deploy/policy.example.yaml documents a `vouch policy check` command");
    let args: Vec<&str> = ["policy", "check"]
        .into_iter()
        .chain(line.split_whitespace())
        .collect();
    assert!(!args.iter().any(|a| a.contains('*')), "{args:?}");
    let (stdout, _) = run(&args, 0);
    assert!(stdout.starts_with("allow"), "{stdout}");
    assert!(stdout.contains(MODEL_DIGEST), "{stdout}");
    let mut json = args.clone();
    json.push("--json");
    let (stdout, _) = run(&json, 0);
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["verified"], true);
    assert_eq!(doc["outcome"], "allowed");
    assert_eq!(doc["objects"][0]["decision"], "allow");
}

// --- Files that are not what the flag takes.

#[test]
fn an_empty_signature_file_says_what_was_expected_and_how_to_make_one() {
    let w = Work::new();
    let (_, err) = run(
        &[
            "model",
            "verify",
            s(&w.model()),
            "--signature",
            s(&w.write("empty.sig", "")),
            "--key",
            s(&key("release.pub")),
        ],
        1,
    );
    assert!(
        err.contains("empty.sig` is empty; expected a Sigstore bundle"),
        "{err}"
    );
    assert!(
        err.contains("hint: sign the model: `vouch model sign"),
        "{err}"
    );
    assert!(!err.contains("EOF while parsing"), "{err}");
}

#[test]
fn a_json_object_that_is_not_a_bundle_says_so() {
    let w = Work::new();
    let (_, err) = run(
        &[
            "verify",
            "--attestation",
            s(&w.write("o.json", "{}")),
            "--key",
            s(&key("release.pub")),
        ],
        1,
    );
    assert!(
        err.contains("is JSON but not a Sigstore bundle (it is an empty object)"),
        "{err}"
    );
    assert!(
        err.contains("hint: `vouch attest ... --output FILE`"),
        "{err}"
    );
    assert!(!err.contains("missing field"), "{err}");
    let (_, err) = run(
        &[
            "inspect",
            s(&w.write("t.json", r#"{"payload": "x", "signatures": []}"#)),
        ],
        1,
    );
    assert!(
        err.contains("it has `payload`, `signatures` but no `mediaType`"),
        "{err}"
    );
    let (_, err) = run(&["inspect", s(&w.write("n.json", "not json"))], 1);
    assert!(err.contains("is not JSON (line 1, column 2)"), "{err}");
}

#[test]
fn a_certificate_given_to_key_points_at_certificate_chain() {
    let w = Work::new();
    let sig = w.signature();
    let cert = repo().join("testdata/oms/leaf.pem");
    let (_, err) = run(
        &[
            "model",
            "verify",
            s(&w.model()),
            "--signature",
            s(&sig),
            "--key",
            s(&cert),
        ],
        2,
    );
    assert!(err.contains("is a certificate, not a public key"), "{err}");
    assert!(err.contains("`--certificate-chain CA.pem`"), "{err}");
    assert!(!err.contains("no items found"), "{err}");
}

#[test]
fn a_private_key_given_to_key_points_at_the_pub_file() {
    let w = Work::new();
    let att = w.attestation();
    let (_, err) = run(
        &[
            "verify",
            "--attestation",
            s(&att),
            "--key",
            s(&key("release.key")),
        ],
        2,
    );
    assert!(
        err.contains("is a private key; verifying takes the public key"),
        "{err}"
    );
    assert!(err.contains("`.pub` file"), "{err}");
    assert!(!err.contains("no items found"), "{err}");
    // And the other way round when signing.
    let (_, err) = run(
        &[
            "model",
            "sign",
            s(&w.model()),
            "--key",
            s(&key("release.pub")),
            "--signature",
            s(&w.path("x.sig")),
        ],
        2,
    );
    assert!(
        err.contains("is a public key; signing takes the private key"),
        "{err}"
    );
    assert!(err.contains("`.key` file"), "{err}");
}

#[test]
fn a_placeholder_in_an_image_reference_is_named() {
    let (_, err) = run(
        &[
            "verify",
            "--image",
            "registry.example.com/models/llm@sha256:<image digest>",
            "--key",
            s(&key("release.pub")),
        ],
        2,
    );
    assert!(
        err.contains("still holds the placeholder `<image digest>`"),
        "{err}"
    );
    assert!(
        err.contains("hint: replace every `<...>` with a real value"),
        "{err}"
    );
    assert!(
        err.contains("docker://registry.example.com/models/llm`"),
        "{err}"
    );
    assert!(!err.contains("control characters"), "{err}");
}

// --- `--help`.

#[test]
fn help_shows_env_names_without_values() {
    let o = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["attest", "--help"])
        .env_clear()
        .env("VOUCH_REGISTRY_USERNAME", "someone-secret")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    // clap wraps long lines; join them to look for the env annotation.
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("[env: VOUCH_REGISTRY_USERNAME]"), "{help}");
    assert!(flat.contains("[env: VOUCH_REGISTRY_PASSWORD]"), "{help}");
    assert!(!help.contains("VOUCH_REGISTRY_USERNAME="), "{help}");
    assert!(!help.contains("=]"), "no flag shows an env value: {help}");
    assert!(!help.contains("someone-secret"), "{help}");
    let o = vouch(&["verify", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(!help.contains("USERNAME="), "{help}");
    assert!(help.contains("\"outcome\""), "--json is described: {help}");
}

#[test]
fn a_certificate_given_to_verify_bundle_key_points_at_the_identity_flags() {
    let w = Work::new();
    let (_, err) = run(
        &[
            "verify-bundle",
            "--bundle",
            s(&w.write("b.json", "{}")),
            "--key",
            s(&repo().join("testdata/oms/leaf.pem")),
            s(&w.write("artifact.txt", "a")),
        ],
        2,
    );
    assert!(err.contains("is a certificate, not a public key"), "{err}");
    assert!(
        err.contains("`--certificate-identity ID --certificate-oidc-issuer URL`"),
        "{err}"
    );
    assert!(!err.contains("--certificate-chain"), "{err}");
}

// --- The README's dependency sentence is what scripts/setup-deps installs.

#[test]
fn the_readme_lists_every_package_setup_deps_installs() {
    let deps = std::fs::read_to_string(repo().join("scripts/setup-deps")).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut packages: Vec<String> = Vec::new();
    for line in deps.lines() {
        let line = line.trim();
        // `for pair in COMMAND:PACKAGE ...` and `need_apt+=(PACKAGE ...)`.
        for word in line.split_whitespace() {
            if let Some((_, package)) = word.split_once(':')
                && line.contains(':')
                && !word.contains('"')
                && !word.contains('$')
                && !word.starts_with("http")
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-:;\\".contains(c))
            {
                packages.push(package.trim_end_matches([';', '\\']).to_owned());
            }
        }
        if let Some(rest) = line.strip_prefix("need_apt+=(") {
            packages.extend(
                rest.trim_end_matches(')')
                    .split_whitespace()
                    .map(str::to_owned),
            );
        }
    }
    packages.retain(|p| !p.is_empty() && p != "do");
    for must in [
        "docker-registry",
        "nodejs",
        "npm",
        "apache2-utils",
        "python3-yaml",
    ] {
        assert!(packages.iter().any(|p| p == must), "parsed {packages:?}");
    }
    for p in &packages {
        assert!(
            readme.contains(&format!("`{p}`")),
            "README.md does not list `{p}`, which scripts/setup-deps installs"
        );
    }
    for python in ["model-signing==1.1.1", "pyOpenSSL"] {
        assert!(deps.contains(python.split("==").next().unwrap()));
        assert!(
            readme.contains(&format!("`{python}`")),
            "README lacks `{python}`"
        );
    }
}
