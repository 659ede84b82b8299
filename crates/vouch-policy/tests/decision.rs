//! The decision over recorded AdmissionReviews (`testdata/admission/`), with real
//! attestations signed in the setup and served from memory (the recorded source).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod fixtures;

use std::time::SystemTime;

use serde_json::Value;
use vouch_policy::{Attestations, Decision, Lookup, Operation, Policy, Subject};

fn policy(name: &str) -> Policy {
    Policy::load(&fixtures::testdata(&format!("policy/{name}.yaml"))).unwrap()
}

fn review(name: &str) -> Value {
    let text =
        std::fs::read_to_string(fixtures::testdata(&format!("admission/{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// What the webhook does, minus the transport: look up, verify, decide.
fn run(policy: &Policy, review: &Value) -> Decision {
    let req = &review["request"];
    let operation = match req["operation"].as_str().unwrap() {
        "CREATE" => Operation::Create,
        "UPDATE" => Operation::Update,
        "DELETE" => Operation::Delete,
        _ => Operation::Connect,
    };
    let object = req.get("object").filter(|o| !o.is_null());
    let subject = Subject {
        kind: req["kind"]["kind"].as_str().unwrap(),
        namespace: req["namespace"].as_str().unwrap_or(""),
        operation,
        object,
    };
    let stored = fixtures::bundles();
    let mut results = Attestations::new();
    for image in vouch_policy::lookups(policy, &subject) {
        let hex = image.digest.unwrap().hex();
        let blobs = stored.get(&hex).cloned().unwrap_or_default();
        let checked = vouch_policy::verify_image(policy, &image, &blobs, SystemTime::now());
        results.insert(image.pinned().unwrap(), Lookup::Checked(checked));
    }
    vouch_policy::decide(policy, &subject, &results)
}

#[test]
fn the_fixture_model_digest_is_current() {
    assert_eq!(fixtures::model_digest(), fixtures::MODEL_DIGEST);
}

#[test]
fn recorded_reviews_get_the_expected_answer() {
    let p = policy("enforce");
    let mut failures = Vec::new();
    for (name, allowed, words) in fixtures::CASES {
        let d = run(&p, &review(name));
        let msg = d.message();
        if d.allowed != *allowed {
            failures.push(format!(
                "{name}: allowed={} but expected {allowed}:\n{msg}",
                d.allowed
            ));
        }
        for w in *words {
            if !msg.contains(w) {
                failures.push(format!("{name}: message lacks `{w}`:\n{msg}"));
            }
        }
        if !d.allowed {
            assert!(d.findings.iter().all(|f| !f.problem.is_empty()), "{name}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_denied_pod_gets_one_finding_per_problem() {
    let p = policy("enforce");
    let d = run(&p, &review("pod-tag-not-digest"));
    // The tag is the one problem: the init container and the model mount are fine.
    assert_eq!(d.findings.len(), 1, "{}", d.message());
}

#[test]
fn warn_mode_allows_with_warnings() {
    let p = policy("warn");
    let d = run(&p, &review("pod-no-attestation"));
    assert!(d.allowed);
    assert_eq!(d.warnings.len(), 1);
    assert!(
        d.warnings[0].contains("no combined attestation found"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn registry_unavailable_is_could_not_verify() {
    let p = policy("enforce");
    let r = review("pod-allowed");
    let req = &r["request"];
    let subject = Subject {
        kind: "Pod",
        namespace: "models",
        operation: Operation::Create,
        object: req.get("object"),
    };
    let mut results = Attestations::new();
    for image in vouch_policy::lookups(&p, &subject) {
        results.insert(
            image.pinned().unwrap(),
            Lookup::Unavailable("registry.example.com did not answer within 8s".into()),
        );
    }
    let d = vouch_policy::decide(&p, &subject, &results);
    assert!(!d.allowed);
    assert!(d.is_undecided());
    assert!(d.message().contains("could not verify"), "{}", d.message());
    // Nothing looked up at all: still a denial, never an allow.
    let d = vouch_policy::decide(&p, &subject, &Attestations::new());
    assert!(!d.allowed);
}

#[test]
fn the_unreachable_hint_speaks_of_whoever_ran_the_decision() {
    let p = policy("enforce");
    let r = review("pod-allowed");
    let subject = Subject {
        kind: "Pod",
        namespace: "models",
        operation: Operation::Create,
        object: r["request"].get("object"),
    };
    let mut results = Attestations::new();
    for image in vouch_policy::lookups(&p, &subject) {
        results.insert(
            image.pinned().unwrap(),
            Lookup::Unavailable("registry.example.com did not answer within 8s".into()),
        );
    }
    let webhook = vouch_policy::Prepared::new(&p, &subject).decide(&p, &results);
    let check = vouch_policy::Prepared::new(&p, &subject).decide_as(
        &p,
        &results,
        vouch_policy::Caller::PolicyCheck,
    );
    // The same decision, worded for its reader.
    assert_eq!(webhook.allowed, check.allowed);
    assert_eq!(webhook.findings.len(), check.findings.len());
    assert!(
        webhook
            .message()
            .contains("the webhook can reach the registry")
    );
    let m = check.message();
    assert!(!m.contains("webhook"), "{m}");
    assert!(m.contains("this machine can reach the registry"), "{m}");
    assert!(m.contains("--attestation FILE"), "{m}");
}

#[test]
fn pod_annotations_cannot_loosen_the_policy() {
    let p = policy("enforce");
    let mut r = review("pod-no-attestation");
    let ann = &mut r["request"]["object"]["metadata"]["annotations"];
    ann["vouch.dev/exempt"] = "true".into();
    ann["vouch.dev/mode"] = "warn".into();
    r["request"]["object"]["metadata"]["labels"]["vouch.dev/skip"] = "true".into();
    assert!(!run(&p, &r).allowed);
}

#[test]
fn lookups_are_deduplicated() {
    let p = policy("enforce");
    let mut r = review("pod-allowed");
    let c = r["request"]["object"]["spec"]["containers"][0].clone();
    let mut c2 = c.clone();
    c2["name"] = "server-2".into();
    r["request"]["object"]["spec"]["containers"] = Value::Array(vec![c, c2]);
    let subject = Subject {
        kind: "Pod",
        namespace: "models",
        operation: Operation::Create,
        object: r["request"].get("object"),
    };
    assert_eq!(vouch_policy::lookups(&p, &subject).len(), 1);
    assert!(run(&p, &r).allowed);
}

#[test]
fn invalid_policies_are_refused_with_the_field() {
    for (file, words) in [
        ("unknown-field", &["requireDigests", "7"][..]),
        (
            "unknown-authority",
            &["images[0].authorities[0]", "relase-ci"],
        ),
        ("init-image-by-tag", &["initVerifierImage", "digest"]),
        ("wrong-api-version", &["apiVersion", "vouch.dev/v1alpha1"]),
        ("keyless-bad-regexp", &["subjectRegExp"]),
        ("key-and-keydata", &["authorities[0]", "exactly one"]),
    ] {
        let e = Policy::load(&fixtures::testdata(&format!("policy/invalid/{file}.yaml")))
            .unwrap_err()
            .to_string();
        for w in words {
            assert!(e.contains(w), "{file}: `{w}` not in: {e}");
        }
    }
}

#[test]
fn the_example_policy_in_deploy_is_valid() {
    Policy::load(&fixtures::repo().join("deploy/policy.example.yaml")).unwrap();
}

/// `VOUCH_WRITE_ATTESTATION_DIR=DIR cargo test -p vouch-policy --test decision write_attestation_dir`
/// writes the signed fixtures for manual `vouch policy check --attestation-dir DIR` runs.
#[test]
fn write_attestation_dir() {
    if let Some(dir) = std::env::var_os("VOUCH_WRITE_ATTESTATION_DIR") {
        fixtures::write_attestation_dir(std::path::Path::new(&dir));
    }
}
