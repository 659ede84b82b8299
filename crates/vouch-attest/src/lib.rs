//! The combined attestation: one signed statement that binds container images to a model.
//!
//! Signing the image and the model separately lets anyone pair a trusted image with an
//! untrusted model, or the reverse. The combined attestation is a single in-toto
//! Statement v1 (predicate type [`PREDICATE_TYPE`]) whose subjects are every image (by
//! manifest or index digest) **and** the model (by the vouch model digest, which binds file
//! names, sizes and digests). Its predicate lists each model file with its role (weights,
//! tokenizer, config, other), size and digest, the hashing method, and free metadata.
//!
//! This crate is pure: it builds statements, parses them, and checks a model directory
//! against a [`Verified`] attestation. Fetching (files, registries) and signing live
//! elsewhere. The exact statement layout is documented in `docs/attestation.md`.

#![forbid(unsafe_code)]

mod artifact;
mod format;
mod role;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub use artifact::{ArtifactFile, ModelArtifact, check_artifact_files};
pub use format::{build_statement, parse_statement};
pub use role::Role;
use vouch_model::{
    Difference, Digest, HashAlgorithm, HashOptions, IgnoreSet, Manifest, Method, ModelPath,
    Progress, Resource, ScanOptions,
};
use vouch_trust::{SignedPayload, Signer, Verified};

/// The predicate type of the combined attestation.
pub const PREDICATE_TYPE: &str = "https://vouch.dev/attestation/v1";

/// An image the attestation covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Repository without tag or digest, e.g. `registry.example.com/models/llm`.
    pub name: String,
    /// The manifest (or index) digest.
    pub digest: Digest,
    /// The manifest media type, when known.
    pub media_type: Option<String>,
    /// The reference the signer gave (e.g. a tag), informative only.
    pub reference: Option<String>,
}

/// One file of the attested model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    /// Path relative to the model root.
    pub path: ModelPath,
    /// Size in bytes.
    pub size: u64,
    /// What the file is for.
    pub role: Role,
    /// The file's resources: one whole-file digest, or its shards in order.
    pub resources: Vec<Resource>,
}

/// The attested model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The model's name.
    pub name: String,
    /// The vouch model digest (binds names, sizes and digests).
    pub digest: Digest,
    /// Hash function of every file digest.
    pub algorithm: HashAlgorithm,
    /// Files or shards.
    pub method: Method,
    /// Paths the signer left out of the model.
    pub ignore_paths: IgnoreSet,
    /// The files, in canonical order.
    pub files: Vec<ModelFile>,
    /// The OCI artifact the files were read from (`vouch attest --model-artifact`), if any.
    pub artifact: Option<ModelArtifact>,
}

impl Model {
    /// Build from a freshly hashed manifest (every size known).
    pub fn from_manifest(
        name: &str,
        manifest: &Manifest,
        ignore_paths: IgnoreSet,
    ) -> Result<Self, Error> {
        let digest = manifest.model_digest().ok_or_else(|| {
            Error::Malformed("a resource has no size; hash the model directory itself".into())
        })?;
        let mut files: Vec<ModelFile> = Vec::new();
        for r in manifest.resources() {
            let size = r.size.unwrap_or(0);
            match files.last_mut() {
                Some(f) if f.path == r.path => {
                    f.size += size;
                    f.resources.push(r.clone());
                }
                _ => files.push(ModelFile {
                    path: r.path.clone(),
                    size,
                    role: Role::classify(r.path.as_str()),
                    resources: vec![r.clone()],
                }),
            }
        }
        Ok(Self {
            name: name.to_owned(),
            digest,
            algorithm: manifest.algorithm,
            method: manifest.method,
            ignore_paths,
            files,
            artifact: None,
        })
    }

    /// The files as a manifest, for comparison with a directory.
    pub fn manifest(&self) -> Manifest {
        let resources = self
            .files
            .iter()
            .flat_map(|f| f.resources.iter().cloned())
            .collect();
        Manifest::new(self.algorithm, self.method, resources)
    }

    /// Total bytes.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The role of a path, as attested, or as classified when not attested.
    pub fn role_of(&self, path: &ModelPath) -> Role {
        self.files
            .iter()
            .find(|f| &f.path == path)
            .map_or_else(|| Role::classify(path.as_str()), |f| f.role)
    }
}

/// The combined attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The images.
    pub images: Vec<Image>,
    /// The model.
    pub model: Model,
    /// Free metadata (`--annotate key=value`): version, dataset, owner, purpose, license...
    pub metadata: BTreeMap<String, String>,
}

/// Why an attestation is unusable, or does not cover what is checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The payload is not JSON of the right shape.
    #[error("the attestation is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    /// Not an in-toto Statement v1.
    #[error("the signed payload is not an in-toto Statement v1 (`_type` is `{0}`)")]
    StatementType(String),
    /// Another predicate.
    #[error(
        "the statement's predicate type is `{0}`, not a vouch combined attestation ({PREDICATE_TYPE})"
    )]
    PredicateType(String),
    /// Structurally wrong content.
    #[error("the attestation is malformed: {0}")]
    Malformed(String),
    /// A path that could leave the model.
    #[error(transparent)]
    Path(#[from] vouch_model::InvalidPath),
    /// The image asked about is not among the attested images.
    #[error("the attestation does not cover image digest {wanted}; it covers {}", covered.join(", "))]
    ImageNotCovered {
        /// The digest checked.
        wanted: String,
        /// What the attestation covers (`name@digest`).
        covered: Vec<String>,
    },
    /// The model digest pin differs from the attested model.
    #[error("the pinned model digest {pinned} is not the attested model digest {attested}")]
    PinMismatch {
        /// The pin (from the Pod or the command line).
        pinned: String,
        /// The digest in the attestation.
        attested: String,
    },
    /// Reading or hashing the model failed.
    #[error(transparent)]
    Model(#[from] vouch_model::Error),
    /// A model artifact's manifest lists files that cannot be a model.
    #[error("the model artifact's manifest cannot be attested: {0}")]
    Artifact(String),
    /// The attestation was made for another model artifact, or for a model directory.
    #[error("the attestation covers model artifact {found}, not {expected}")]
    ArtifactMismatch {
        /// The artifact digest checked.
        expected: String,
        /// What the attestation names (`name@digest`, or that it names no artifact).
        found: String,
    },
    /// The model on disk differs from the attestation.
    #[error("the model on disk does not match the attestation ({} difference{})", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Mismatch(Vec<RoledDifference>),
}

impl Error {
    /// True when this is a verdict (the attestation or the model is wrong), false when the
    /// check could not be carried out (I/O).
    pub fn is_rejection(&self) -> bool {
        match self {
            Self::Model(e) => !matches!(
                e,
                vouch_model::Error::Root { .. } | vouch_model::Error::RootNotDirectory { .. }
            ),
            _ => true,
        }
    }
}

/// A difference between the model on disk and the attestation, with the file's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoledDifference {
    /// The role of the file concerned.
    pub role: Role,
    /// The difference.
    pub difference: Difference,
}

impl fmt::Display for RoledDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.role, self.difference)
    }
}

/// The first candidate `check` accepts, with what it returned; otherwise every candidate
/// with its failure, in order. Verifiers take the first attestation that passes every check
/// and report why each of the others did not.
pub fn first_accepted<C, T, F>(
    candidates: impl IntoIterator<Item = C>,
    mut check: impl FnMut(&C) -> Result<T, F>,
) -> Result<(C, T), Vec<(C, F)>> {
    let mut failures = Vec::new();
    for c in candidates {
        match check(&c) {
            Ok(t) => return Ok((c, t)),
            Err(f) => failures.push((c, f)),
        }
    }
    Err(failures)
}

/// Parse the attestation from a verified payload.
pub fn from_verified(
    payload: Verified<SignedPayload>,
) -> Result<Verified<(Attestation, Signer)>, Error> {
    payload.try_map(|p| Ok((parse_statement(&p.payload)?, p.signer)))
}

/// The attested image with this digest, or [`Error::ImageNotCovered`].
pub fn covered_image<'a>(
    attestation: &'a Verified<(Attestation, Signer)>,
    digest: &Digest,
) -> Result<&'a Image, Error> {
    let (a, _) = attestation.get();
    a.images
        .iter()
        .find(|i| &i.digest == digest)
        .ok_or_else(|| Error::ImageNotCovered {
            wanted: digest.to_string(),
            covered: a
                .images
                .iter()
                .map(|i| format!("{}@{}", i.name, i.digest))
                .collect(),
        })
}

/// Check a model digest pin (`sha256:<hex>`) against the attested model.
pub fn check_pin(attestation: &Verified<(Attestation, Signer)>, pin: &str) -> Result<(), Error> {
    let attested = attestation.get().0.model.digest;
    if pin.eq_ignore_ascii_case(&attested.to_string()) {
        Ok(())
    } else {
        Err(Error::PinMismatch {
            pinned: pin.to_owned(),
            attested: attested.to_string(),
        })
    }
}

/// Check that the attestation was made for the model artifact `digest` (`sha256:<hex>`, the
/// artifact's manifest digest).
pub fn check_artifact(
    attestation: &Verified<(Attestation, Signer)>,
    digest: &str,
) -> Result<(), Error> {
    match &attestation.get().0.model.artifact {
        Some(a) if digest.eq_ignore_ascii_case(&a.digest.to_string()) => Ok(()),
        Some(a) => Err(Error::ArtifactMismatch {
            expected: digest.to_owned(),
            found: format!("{}@{}", a.name, a.digest),
        }),
        None => Err(Error::ArtifactMismatch {
            expected: digest.to_owned(),
            found: "none (it attests a model directory)".to_owned(),
        }),
    }
}

/// Options for [`check_model`].
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Also leave out these paths (on top of the attested ignore paths).
    pub extra_ignore: IgnoreSet,
    /// Refuse files with more than one hard link.
    pub reject_hard_links: bool,
    /// Hashing threads (0: one per core).
    pub threads: usize,
}

/// What [`check_model`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelReport {
    /// Files checked.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// The model digest, recomputed from the disk and equal to the attested one.
    pub digest: Digest,
}

/// Hash the model below `root` as the attestation says it was hashed, and compare file by
/// file: exactly the attested files (no extra, none missing), each with the attested size
/// and digest.
pub fn check_model(
    root: &Path,
    attestation: &Verified<(Attestation, Signer)>,
    options: &CheckOptions,
    progress: Option<&Progress>,
) -> Result<Verified<ModelReport>, Error> {
    let model = &attestation.get().0.model;
    let mut scan = ScanOptions {
        ignore: model.ignore_paths.clone(),
        reject_hard_links: options.reject_hard_links,
    };
    for p in options.extra_ignore.paths() {
        scan.ignore.insert(p.clone());
    }
    let hash = HashOptions {
        algorithm: model.algorithm,
        method: model.method,
        threads: options.threads,
        ..Default::default()
    };
    let actual = vouch_model::hash_dir(root, &scan, &hash, progress)?;
    let expected = model.manifest();
    let differences: Vec<RoledDifference> =
        vouch_model::diff(expected.resources(), actual.resources())
            .into_iter()
            .map(|d| RoledDifference {
                role: model.role_of(d.path()),
                difference: d,
            })
            .collect();
    if !differences.is_empty() {
        return Err(Error::Mismatch(differences));
    }
    let digest = actual
        .model_digest()
        .ok_or_else(|| Error::Malformed("a hashed file has no size".into()))?;
    if digest != model.digest {
        // Unreachable when the diff is empty and the attestation is consistent; kept as a guard.
        return Err(Error::Malformed(format!(
            "recomputed model digest {digest} differs from {}",
            model.digest
        )));
    }
    Ok(attestation.clone().map(|_| ModelReport {
        files: actual.file_count(),
        bytes: actual.total_bytes(),
        digest,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn first_accepted_stops_at_the_first_and_otherwise_keeps_every_failure_in_order() {
        let mut seen = Vec::new();
        let r = super::first_accepted([1, 2, 3, 4], |n| {
            seen.push(*n);
            if *n % 3 == 0 {
                Ok(n * 10)
            } else {
                Err(format!("{n} no"))
            }
        });
        assert_eq!(r.unwrap(), (3, 30));
        assert_eq!(seen, [1, 2, 3], "nothing after the accepted one is checked");
        let r = super::first_accepted([1, 2], |n| Err::<(), _>(format!("{n} no")));
        assert_eq!(
            r.unwrap_err(),
            vec![(1, "1 no".to_owned()), (2, "2 no".to_owned())]
        );
        let none: [u8; 0] = [];
        assert!(
            super::first_accepted(none, |_| Ok::<(), ()>(()))
                .unwrap_err()
                .is_empty()
        );
    }
}
