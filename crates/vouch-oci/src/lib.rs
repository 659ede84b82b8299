//! Combined attestations next to images: OCI registries and OCI image layouts.
//!
//! An attestation is stored as an OCI 1.1 artifact in the image's own repository: a manifest
//! whose `subject` is the image manifest, whose `artifactType` is the Sigstore bundle media
//! type, with one layer holding the bundle JSON: the layout cosign v3 writes and reads
//! (its `specs/BUNDLE_SPEC.md`), annotations included. It is found with the referrers API, or,
//! on registries without one (the Debian `docker-registry`, many mirrors), through the
//! referrers tag schema: an index tagged `sha256-<hex of the image digest>` that vouch
//! maintains on push when the registry does not (no `OCI-Subject` in its answer).
//!
//! Nothing here decides trust: what comes back is bytes to be verified by `vouch-trust` and
//! `vouch-attest`. This crate only guarantees that those bytes are the ones the registry's
//! content-addressed descriptors name (every manifest and blob is re-hashed).

#![forbid(unsafe_code)]

mod auth;
mod blocking;
mod error;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod layout;
pub mod modelpack;
mod reference;
mod referrers;
mod registry;

pub use auth::{Credentials, Helpers, docker_config_path};
pub use blocking::BlockingRegistry;
pub use error::{Error, Result};
pub use reference::ImageReference;
pub use referrers::{
    Descriptor, artifact_manifest, attestation_annotations, merge_into_index, select_attestations,
};
pub use registry::{
    FetchedAttestation, Options, PushedAttestation, Registry, RegistryCa, ResolvedImage,
};

/// The Sigstore bundle media type: the artifact type and layer type of stored attestations.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The OCI empty descriptor's media type (the config of artifacts without one).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The predicate type of vouch's combined attestation (the same string as
/// `vouch_attest::PREDICATE_TYPE`; this crate does not depend on that one).
pub const ATTESTATION_PREDICATE_TYPE: &str = "https://vouch.dev/attestation/v1";
/// Annotation of Sigstore bundle referrers (cosign's `specs/BUNDLE_SPEC.md`): what the bundle
/// holds, `dsse-envelope` or `message-signature`.
pub const BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// Annotation of Sigstore bundle referrers: the predicate type of the DSSE-wrapped statement.
pub const BUNDLE_PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// The OCI annotation for when the artifact was made (RFC 3339).
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";
/// Annotation on the stored artifact: the attested model digest (lets tools filter without
/// downloading bundles; never trusted for a decision).
pub const MODEL_DIGEST_ANNOTATION: &str = "dev.vouch.model.digest";
/// Largest bundle this crate downloads.
pub const MAX_BUNDLE_BYTES: u64 = 16 << 20;
/// Largest manifest or index this crate downloads.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// `sha256:<hex>` of some bytes.
#[must_use]
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Whether `digest` is `sha256:` followed by 64 lower-case hex digits.
#[must_use]
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}
