//! The trust policy and the admission decision, with no I/O in the decision.
//!
//! Three binaries share one policy file (`vouch verify --policy`, `vouch-init --policy`,
//! `vouch-admission --policy`, and `vouch policy check` in CI), so the policy, the reading
//! of Pods and workload templates, and the decision live here, once:
//!
//! 1. [`Policy::load`] / [`Policy::parse`]: the versioned YAML file (`vouch.dev/v1alpha1`,
//!    `TrustPolicy`), strict (unknown fields are errors), validated into typed values.
//! 2. [`workload::extract`]: the pod template of a Pod, Deployment, StatefulSet, DaemonSet,
//!    ReplicaSet, ReplicationController, Job or CronJob (init, regular and ephemeral
//!    containers, image volumes).
//! 3. [`lookups`]: which images' attestations the decision needs (the caller fetches their
//!    bundles, stored next to each image: registry, files, a cache), then
//!    [`verify_for_admission`]: check those bundles against the policy's authorities
//!    ([`verify_image`]: only those of the image's own rules, for `vouch verify --policy`
//!    and `vouch-init`). Only these can build an [`ImageAttestations`], and it holds only
//!    [`vouch_trust::Verified`] attestations. A model mounted as an image volume is
//!    checked through the attestations of the images that mount it, which name its digest.
//! 4. [`decide`]: a pure function over (the object, namespace and operation, the policy,
//!    the verified results per image) that returns allow or deny with one finding per
//!    problem: the container, the image, what is wrong, and a hint with the command that
//!    fixes it. Nothing in the object (annotations, labels) can loosen the policy: the only
//!    thing read from the object's metadata is the model pin, which adds a requirement.
//!
//! The crate links verification code only (no signing), so the webhook stays small.

#![forbid(unsafe_code)]

mod decide;
mod glob;
mod image;
mod policy;
#[cfg(feature = "admission-review")]
pub mod review;
mod verify;
pub mod workload;

pub use decide::{Caller, Decision, Finding, Operation, Prepared, Subject, decide, lookups};
pub use glob::Glob;
pub use image::ImageRef;
pub use policy::{
    API_VERSION, Authority, AuthorityKind, DEFAULT_MODEL_PIN_ANNOTATION, ImageRule, KIND, Mode,
    Policy, PolicyError, SubjectMatch, Undecidable,
};
pub use verify::{
    Attestations, ImageAttestations, Lookup, TrustedAttestation, verify_for_admission, verify_image,
};
