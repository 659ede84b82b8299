//! AdmissionReview JSON -> pod template -> decision: the review read by
//! `vouch_policy::review::read_review`, as the webhook reads it, with fixed policies (`testdata/policy/enforce.yaml`, `warn.yaml`) and fixed
//! verification results. A decision never allows what a stricter input denies: fewer
//! verified attestations, an unreachable registry, or enforce instead of warn mode. The
//! fixed attestations cover an image with a model directory and another image with a model
//! artifact, so that Pods mounting it as an image volume reach the allowing path too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_policy::{Attestations, Lookup, Policy, Prepared, Subject};

fuzz_target!(|data: &[u8]| {
    let Ok(review) = vouch_policy::review::read_review(data) else {
        return;
    };
    let subject = review.subject();
    let fixed = vouch_fuzz::admission();
    let enforce = check(&fixed.enforce, &subject, fixed);
    let warn = check(&fixed.warn, &subject, fixed);
    assert!(
        !enforce || warn,
        "enforce mode allowed what warn mode denied"
    );
});

/// Decide `subject` with three sets of results; returns whether the best case was allowed.
fn check(policy: &Policy, subject: &Subject<'_>, fixed: &vouch_fuzz::Admission) -> bool {
    let prepared = Prepared::new(policy, subject);
    let lookups = prepared.lookups(policy);
    let mut attested = Attestations::new();
    let mut absent = Attestations::new();
    let mut unavailable = Attestations::new();
    for image in &lookups {
        let Some(pinned) = image.pinned() else {
            continue;
        };
        let found = vouch_policy::verify_for_admission(
            policy,
            image,
            &[&fixed.bundle, &fixed.artifact_bundle],
            fixed.now,
        );
        let none = vouch_policy::verify_for_admission(policy, image, &[] as &[&[u8]], fixed.now);
        attested.insert(pinned.clone(), Lookup::Checked(found));
        absent.insert(pinned.clone(), Lookup::Checked(none));
        unavailable.insert(pinned, Lookup::Unavailable("registry down".into()));
    }
    let best = prepared.decide(policy, &attested);
    let without = vouch_policy::decide(policy, subject, &absent);
    let down = vouch_policy::decide(policy, subject, &unavailable);
    assert!(
        !without.allowed || best.allowed,
        "allowed without attestations only"
    );
    assert!(
        !down.allowed || best.allowed,
        "allowed with the registry down only"
    );
    for d in [&best, &without, &down] {
        if !d.allowed {
            assert!(!d.message().is_empty(), "a denial without a message");
        }
    }
    best.allowed
}
