//! What the fuzz targets share: fixed inputs built once from `testdata/` (policies, trust
//! anchors, a signed combined attestation), so that each target feeds only the untrusted
//! bytes it is about to the real parser.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use vouch_attest::{Attestation, Image, Model, ModelArtifact};
use vouch_model::{Digest, HashAlgorithm, HashOptions, IgnoreSet, ScanOptions};

/// `testdata/` of the repository.
pub fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(p)
}

/// The repository of the image the fixed attestation covers (as in `testdata/admission`).
pub const SERVER_REPO: &str = "registry.example.com/models/tiny-llm-server";
/// Its digest.
pub const SERVER_HEX: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";

/// The server image attested with the model artifact [`ARTIFACT_HEX`] (as in
/// `testdata/admission/pod-image-volume-*.json`).
pub const PAIRED_HEX: &str = "a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7";
/// The model artifact's repository.
pub const ARTIFACT_REPO: &str = "registry.example.com/models/tiny-llm-weights";
/// The model artifact's manifest digest.
pub const ARTIFACT_HEX: &str = "d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7";

/// The fixed inputs of the admission target.
#[derive(Debug)]
pub struct Admission {
    /// `testdata/policy/enforce.yaml`.
    pub enforce: vouch_policy::Policy,
    /// `testdata/policy/warn.yaml` (the same, in warn mode).
    pub warn: vouch_policy::Policy,
    /// A combined attestation of `SERVER_REPO@sha256:SERVER_HEX` with `tiny-llm`, signed by
    /// `keys/release.key` (which the policies trust).
    pub bundle: Vec<u8>,
    /// A combined attestation of `SERVER_REPO@sha256:PAIRED_HEX` with the model artifact
    /// `ARTIFACT_REPO@sha256:ARTIFACT_HEX` (`vouch attest --model-artifact`), by the same key.
    pub artifact_bundle: Vec<u8>,
    /// When the attestations are verified.
    pub now: SystemTime,
}

/// Built once per process.
pub fn admission() -> &'static Admission {
    static ONCE: OnceLock<Admission> = OnceLock::new();
    ONCE.get_or_init(|| {
        let enforce = vouch_policy::Policy::load(&testdata("policy/enforce.yaml")).unwrap();
        let warn = vouch_policy::Policy::load(&testdata("policy/warn.yaml")).unwrap();
        let mut ignore = IgnoreSet::new();
        ignore.insert_git_paths();
        let scan = ScanOptions {
            ignore: ignore.clone(),
            reject_hard_links: false,
        };
        let manifest = vouch_model::hash_dir(
            &testdata("models/tiny-llm"),
            &scan,
            &HashOptions::default(),
            None,
        )
        .unwrap();
        let attestation = Attestation {
            images: vec![Image {
                name: SERVER_REPO.into(),
                digest: Digest::from_hex(HashAlgorithm::Sha256, SERVER_HEX).unwrap(),
                media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
                reference: Some("1.0.0".into()),
            }],
            model: Model::from_manifest("tiny-llm", &manifest, ignore).unwrap(),
            metadata: Default::default(),
        };
        let key =
            vouch_sign::SigningKey::from_pem(&std::fs::read(testdata("keys/release.key")).unwrap())
                .unwrap();
        let sign = |a: &Attestation| {
            key.sign_dsse(
                vouch_bundle::IN_TOTO_PAYLOAD_TYPE,
                vouch_attest::build_statement(a),
            )
            .unwrap()
            .to_json()
        };
        let bundle = sign(&attestation);
        let mut paired = attestation.clone();
        paired.images[0].digest = Digest::from_hex(HashAlgorithm::Sha256, PAIRED_HEX).unwrap();
        paired.model.artifact = Some(ModelArtifact {
            name: ARTIFACT_REPO.into(),
            digest: Digest::from_hex(HashAlgorithm::Sha256, ARTIFACT_HEX).unwrap(),
            media_type: Some("application/vnd.cncf.model.manifest.v1+json".into()),
        });
        let artifact_bundle = sign(&paired);
        Admission {
            enforce,
            warn,
            bundle,
            artifact_bundle,
            now: SystemTime::now(),
        }
    })
}

/// Certificate authorities of the fixtures (`oms/ca.pem`, `oms/ca-leaf/ca.pem`,
/// `oms/model-transparency/ca-cert.pem`), in one set.
pub fn certificate_authorities() -> &'static vouch_trust::CertificateAuthorities {
    static ONCE: OnceLock<vouch_trust::CertificateAuthorities> = OnceLock::new();
    ONCE.get_or_init(|| {
        let mut pem = Vec::new();
        for f in [
            "oms/ca.pem",
            "oms/ca-leaf/ca.pem",
            "oms/model-transparency/ca-cert.pem",
        ] {
            pem.extend(std::fs::read(testdata(f)).unwrap());
            pem.push(b'\n');
        }
        vouch_trust::CertificateAuthorities::from_pem(&pem).unwrap()
    })
}

/// The Sigstore production trusted root of the conformance vectors.
pub fn trusted_root() -> &'static vouch_sigstore::TrustedRoot {
    static ONCE: OnceLock<vouch_sigstore::TrustedRoot> = OnceLock::new();
    ONCE.get_or_init(|| {
        vouch_sigstore::TrustedRoot::from_json(
            &std::fs::read(testdata(
                "sigstore-conformance/trust-roots/production.trusted_root.json",
            ))
            .unwrap(),
        )
        .unwrap()
    })
}

/// Split `data` into DER SEQUENCEs laid end to end (certificates); the rest, if any, is
/// dropped.
pub fn split_der(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(len) = der_len(data) {
        let (one, rest) = data.split_at(len);
        out.push(one.to_vec());
        data = rest;
    }
    out
}

/// The total length of the DER SEQUENCE at the start of `data`, if it fits in `data`.
fn der_len(data: &[u8]) -> Option<usize> {
    if data.first()? != &0x30 {
        return None;
    }
    let first = *data.get(1)?;
    let (header, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 {
            return None;
        }
        let mut len = 0usize;
        for b in data.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (2 + n, len)
    };
    let total = header.checked_add(len)?;
    (total <= data.len()).then_some(total)
}
