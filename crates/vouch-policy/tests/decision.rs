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
        let checked = vouch_policy::verify_for_admission(policy, &image, &blobs, SystemTime::now());
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

fn subject_of(review: &Value) -> Subject<'_> {
    Subject {
        kind: review["request"]["kind"]["kind"].as_str().unwrap(),
        namespace: "models",
        operation: Operation::Create,
        object: review["request"].get("object"),
    }
}

fn pinned_lookups(p: &Policy, review: &Value) -> Vec<String> {
    vouch_policy::lookups(p, &subject_of(review))
        .iter()
        .map(|i| i.pinned().unwrap())
        .collect()
}

/// The attestation of an image-volume pair is stored next to the server image: that is
/// what is looked up, for every container that mounts the volume, and never the artifact.
#[test]
fn image_volumes_look_up_the_images_that_mount_them() {
    let p = policy("enforce");
    let server = format!("{}@sha256:{}", fixtures::SERVER_REPO, fixtures::PAIRED_HEX);
    assert_eq!(
        pinned_lookups(&p, &review("pod-image-volume-allowed")),
        std::slice::from_ref(&server)
    );
    // The second container's image is covered by no rule, but it mounts the model.
    assert_eq!(
        pinned_lookups(&p, &review("pod-image-volume-second-container-unattested")),
        [
            server.clone(),
            format!(
                "registry.example.com/tools/model-fetcher@sha256:{}",
                "d4".repeat(32)
            )
        ]
    );
    // A tag: nothing to look up for the artifact, and no finding but the tag.
    let r = review("pod-image-volume-artifact-by-tag");
    let d = run(&p, &r);
    assert_eq!(d.findings.len(), 1, "{}", d.message());
    assert!(d.findings[0].place.contains("image volume `model`"));
}

/// Which half of the pair was swapped is said by where the finding is: on the image volume
/// (another artifact), or on the container (another server image).
#[test]
fn a_swap_names_the_half_that_differs() {
    let p = policy("enforce");
    let d = run(&p, &review("pod-image-volume-other-artifact"));
    assert_eq!(d.findings.len(), 1, "{}", d.message());
    assert_eq!(d.findings[0].place, "image volume `model`");
    assert!(d.findings[0].problem.contains("the artifact differs"));
    let d = run(&p, &review("pod-image-volume-unattested-server"));
    assert_eq!(d.findings.len(), 1, "{}", d.message());
    assert_eq!(d.findings[0].place, "container `server`");
    assert!(d.findings[0].problem.contains("the server image differs"));
    // Two containers mount it; only the second one is not attested with it.
    let d = run(&p, &review("pod-image-volume-second-container-unattested"));
    assert_eq!(d.findings.len(), 1, "{}", d.message());
    assert_eq!(d.findings[0].place, "container `exporter`");
}

/// No vouch-init for a model that arrives as an image volume; a covered container whose
/// model is on a PVC in the same Pod still needs it, and that is the one problem.
#[test]
fn vouch_init_only_for_models_on_other_volumes() {
    let p = policy("enforce");
    let d = run(&p, &review("pod-image-volume-allowed"));
    assert!(d.allowed, "{}", d.message());
    let d = run(&p, &review("pod-pvc-model-without-vouch-init"));
    assert_eq!(d.findings.len(), 1, "{}", d.message());
    assert_eq!(d.findings[0].place, "initContainers");
}

#[test]
fn image_volume_with_the_registry_down_is_could_not_verify() {
    let p = policy("enforce");
    let r = review("pod-image-volume-allowed");
    let subject = subject_of(&r);
    let mut results = Attestations::new();
    for image in vouch_policy::lookups(&p, &subject) {
        results.insert(
            image.pinned().unwrap(),
            Lookup::Unavailable("registry.example.com did not answer within 8s".into()),
        );
    }
    let d = vouch_policy::decide(&p, &subject, &results);
    assert!(!d.allowed);
    assert!(d.is_undecided(), "{}", d.message());
    assert!(!vouch_policy::decide(&p, &subject, &Attestations::new()).allowed);
    // Unmounted: the Pod's images could not be looked up either.
    let r = review("pod-image-volume-unmounted-attested");
    let subject = subject_of(&r);
    let d = vouch_policy::decide(&p, &subject, &Attestations::new());
    assert!(!d.allowed);
    assert!(d.is_undecided(), "{}", d.message());
}

/// The artifact's rule decides who may sign the pair, also when the server image is
/// covered by no rule (its referrers are verified against every authority of the policy,
/// then counted per rule).
#[test]
fn a_policy_without_init_verifier_image_admits_image_volumes_only() {
    let text = std::fs::read_to_string(fixtures::testdata("policy/enforce.yaml")).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("initVerifierImage:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = Policy::parse(&text, Some(&fixtures::testdata("policy"))).unwrap();
    assert!(p.init_verifier_image.is_none());
    let d = run(&p, &review("pod-image-volume-allowed"));
    assert!(d.allowed, "{}", d.message());
    // The same Pod the full policy admits with its vouch-init (tested above) is denied.
    assert!(run(&policy("enforce"), &review("pod-allowed")).allowed);
    let d = run(&p, &review("pod-allowed"));
    assert!(!d.allowed);
    assert_eq!(d.findings.len(), 1, "{}", d.message());
    let f = &d.findings[0];
    assert!(
        f.problem.contains("names no `initVerifierImage`"),
        "{}",
        f.problem
    );
    let hint = f.hint.as_deref().unwrap();
    assert!(
        hint.contains("pod-image-volume.yaml") && hint.contains("set `initVerifierImage`"),
        "{hint}"
    );
}

#[test]
fn the_artifact_rule_names_who_may_sign_the_pair() {
    let text = "apiVersion: vouch.dev/v1alpha1\nkind: TrustPolicy\nauthorities:\n  - name: release-ci\n    key: keys/release.pub\n  - name: other-ci\n    key: keys/other.pub\nimages:\n  - glob: registry.example.com/models/tiny-llm-weights\n    authorities: [other-ci]\ninitVerifierImage: registry.example.com/vouch/vouch-init@sha256:c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3\n";
    let p = Policy::parse(text, Some(&fixtures::testdata(""))).unwrap();
    // e7e7 is attested with the artifact by other.key: allowed, with no vouch-init.
    let d = run(&p, &review("pod-image-volume-untrusted-key"));
    assert!(d.allowed, "{}", d.message());
    // a7a7 is attested with it by release.key, which this rule does not accept.
    let d = run(&p, &review("pod-image-volume-allowed"));
    assert!(!d.allowed);
    let m = d.message();
    assert!(
        m.contains("an attestation by `release-ci` is valid, but rule `registry.example.com/models/tiny-llm-weights` accepts only `other-ci`"),
        "{m}"
    );
    // `vouch verify --policy` and vouch-init still count only the image's own authorities.
    let image = vouch_policy::ImageRef::parse(&format!(
        "{}@sha256:{}",
        fixtures::SERVER_REPO,
        fixtures::UNTRUSTED_PAIRED_HEX
    ))
    .unwrap();
    let blobs = fixtures::bundles()[fixtures::UNTRUSTED_PAIRED_HEX].clone();
    assert!(
        vouch_policy::verify_image(&p, &image, &blobs, SystemTime::now())
            .verified()
            .is_empty()
    );
    assert_eq!(
        vouch_policy::verify_for_admission(&p, &image, &blobs, SystemTime::now())
            .verified()
            .len(),
        1
    );
}

#[test]
fn every_container_that_mounts_the_model_is_checked() {
    let p = policy("enforce");
    for (name, place) in [
        (
            "pod-image-volume-update-ephemeral-mounts-model",
            "ephemeral container `debugger`",
        ),
        (
            "pod-image-volume-init-container-mounts-model",
            "init container `convert`",
        ),
    ] {
        let d = run(&p, &review(name));
        assert!(!d.allowed, "{name}");
        assert_eq!(d.findings.len(), 1, "{name}: {}", d.message());
        assert_eq!(d.findings[0].place, place, "{name}");
    }
}

/// Without `requireDigest`, an image no rule covers may run by tag, but not when it mounts
/// a model artifact: the attestation pairing them can only name a digest.
#[test]
fn a_container_that_mounts_the_model_is_pinned_even_without_require_digest() {
    let text = "apiVersion: vouch.dev/v1alpha1\nkind: TrustPolicy\nauthorities:\n  - name: release-ci\n    key: keys/release.pub\nimages:\n  - glob: registry.example.com/models/*\n    authorities: [release-ci]\nrequireDigest: false\ninitVerifierImage: registry.example.com/vouch/vouch-init@sha256:c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3\n";
    let p = Policy::parse(text, Some(&fixtures::testdata(""))).unwrap();
    let mut r = review("pod-image-volume-second-container-unattested");
    r["request"]["object"]["spec"]["containers"][1]["image"] =
        "registry.example.com/tools/model-fetcher:1.0".into();
    let d = run(&p, &r);
    assert_eq!(d.findings.len(), 1, "{}", d.message());
    let f = &d.findings[0];
    assert_eq!(f.place, "container `exporter`");
    assert!(
        f.problem
            .contains("its image is not pinned by digest: the attestation that pairs them can only name a digest"),
        "{f}"
    );
    // Not mounting it, the same tag is allowed under this policy.
    r["request"]["object"]["spec"]["containers"][1]
        .as_object_mut()
        .unwrap()
        .remove("volumeMounts");
    assert!(run(&p, &r).allowed, "{}", run(&p, &r).message());
}
