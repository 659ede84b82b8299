//! Recorded sigstore-conformance cases (tests/fixtures/README.md says where each came from).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use vouch_sigstore::{
    Artifact, Error, Instance, PublicKey, SignedBy, Signer, TrustedRoot, parse_sha256_digest,
    verify,
};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
/// SHA-256 of fixtures/a.txt.
const A_TXT_SHA256: &str =
    "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn root() -> TrustedRoot {
    TrustedRoot::from_json(&fixture("production.trusted_root.json")).unwrap()
}

fn beacon() -> Signer {
    Signer::Identity {
        identity: IDENTITY.into(),
        issuer: ISSUER.into(),
    }
}

#[test]
fn digest_constant_is_the_fixture_digest() {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(fixture("a.txt"));
    assert_eq!(
        parse_sha256_digest(A_TXT_SHA256).unwrap().as_slice(),
        digest.as_slice()
    );
}

#[test]
fn identity_happy_path_bytes_reader_and_digest() {
    let bundle = fixture("happy-path-v0.3.sigstore.json");
    let a = fixture("a.txt");
    let v = verify(&bundle, &root(), &beacon(), Artifact::Bytes(&a)).unwrap();
    assert_eq!(
        v.signed_by(),
        &SignedBy::Certificate {
            identity: IDENTITY.into(),
            issuer: ISSUER.into()
        }
    );
    assert!(v.tlog_verified());
    assert!(v.signed_at().is_some());
    assert!(v.statement().is_none());

    let mut reader: &[u8] = &a;
    verify(&bundle, &root(), &beacon(), Artifact::Reader(&mut reader)).unwrap();

    let digest = parse_sha256_digest(A_TXT_SHA256).unwrap();
    verify(&bundle, &root(), &beacon(), Artifact::Sha256(digest)).unwrap();

    // The embedded production snapshot is the same root.
    let embedded = TrustedRoot::embedded(Instance::Production).unwrap();
    verify(&bundle, &embedded, &beacon(), Artifact::Bytes(&a)).unwrap();
}

#[test]
fn dsse_happy_path_hands_back_the_statement() {
    let bundle = fixture("happy-path-intoto-in-dsse-v3.sigstore.json");
    let a = fixture("a.txt");
    let v = verify(&bundle, &root(), &beacon(), Artifact::Bytes(&a)).unwrap();
    let statement = v.statement().expect("a DSSE bundle has a statement");
    let text = std::str::from_utf8(statement).unwrap();
    assert!(text.contains("in-toto.io/Statement"), "{text}");
    let digest = parse_sha256_digest(A_TXT_SHA256).unwrap();
    verify(&bundle, &root(), &beacon(), Artifact::Sha256(digest)).unwrap();
}

#[test]
fn managed_key_happy_path() {
    let key = PublicKey::from_pem(&fixture("managed-key-happy-path.pub")).unwrap();
    let a = fixture("a.txt");
    let v = verify(
        &fixture("managed-key-happy-path.sigstore.json"),
        &root(),
        &Signer::Key(key),
        Artifact::Bytes(&a),
    )
    .unwrap();
    assert_eq!(v.signed_by(), &SignedBy::Key);
}

#[test]
fn wrong_identity_is_rejected() {
    let signer = Signer::Identity {
        identity:
            "https://github.com/someone-else/repo/.github/workflows/release.yml@refs/heads/main"
                .into(),
        issuer: ISSUER.into(),
    };
    let err = verify(
        &fixture("happy-path-v0.3.sigstore.json"),
        &root(),
        &signer,
        Artifact::Bytes(&fixture("a.txt")),
    )
    .unwrap_err();
    assert!(err.is_rejection());
    match err {
        Error::IdentityMismatch { actual, .. } => assert_eq!(actual.as_deref(), Some(IDENTITY)),
        other => panic!("expected an identity mismatch, got {other}"),
    }
}

#[test]
fn wrong_issuer_is_rejected() {
    let signer = Signer::Identity {
        identity: IDENTITY.into(),
        issuer: "https://accounts.google.com".into(),
    };
    let err = verify(
        &fixture("happy-path-v0.3.sigstore.json"),
        &root(),
        &signer,
        Artifact::Bytes(&fixture("a.txt")),
    )
    .unwrap_err();
    assert!(matches!(err, Error::IssuerMismatch { .. }), "{err}");
}

#[test]
fn bad_signature_is_rejected() {
    let err = verify(
        &fixture("signature-mismatch_fail.sigstore.json"),
        &root(),
        &beacon(),
        Artifact::Bytes(&fixture("a.txt")),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert!(err.is_rejection());
}

#[test]
fn other_artifact_is_rejected() {
    let bundle = fixture("happy-path-v0.3.sigstore.json");
    let mut a = fixture("a.txt");
    a.push(b'\n');
    let err = verify(&bundle, &root(), &beacon(), Artifact::Bytes(&a)).unwrap_err();
    assert!(matches!(err, Error::ArtifactMismatch(_)), "{err}");
    let err = verify(&bundle, &root(), &beacon(), Artifact::Sha256([7; 32])).unwrap_err();
    assert!(matches!(err, Error::ArtifactMismatch(_)), "{err}");
    let dsse = fixture("happy-path-intoto-in-dsse-v3.sigstore.json");
    let err = verify(&dsse, &root(), &beacon(), Artifact::Bytes(&a)).unwrap_err();
    assert!(matches!(err, Error::ArtifactMismatch(_)), "{err}");
}

#[test]
fn tampered_bundle_is_rejected() {
    // Flip one character of the signature in the JSON: still valid base64, wrong signature.
    let bundle = String::from_utf8(fixture("happy-path-v0.3.sigstore.json")).unwrap();
    let key = "\"signature\": \"";
    let at = bundle.find(key).unwrap() + key.len() + 10;
    let mut bytes = bundle.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let err = verify(
        &bytes,
        &root(),
        &beacon(),
        Artifact::Bytes(&fixture("a.txt")),
    )
    .unwrap_err();
    assert!(err.is_rejection(), "{err}");
}

#[test]
fn material_kind_must_match() {
    let key = PublicKey::from_pem(&fixture("managed-key-happy-path.pub")).unwrap();
    let a = fixture("a.txt");
    let err = verify(
        &fixture("happy-path-v0.3.sigstore.json"),
        &root(),
        &Signer::Key(key),
        Artifact::Bytes(&a),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongMaterial {
                signed_with_key: false
            }
        ),
        "{err}"
    );
    let err = verify(
        &fixture("managed-key-happy-path.sigstore.json"),
        &root(),
        &beacon(),
        Artifact::Bytes(&a),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongMaterial {
                signed_with_key: true
            }
        ),
        "{err}"
    );
}

#[test]
fn staging_root_does_not_trust_production_bundles() {
    let staging = TrustedRoot::embedded(Instance::Staging).unwrap();
    let err = verify(
        &fixture("happy-path-v0.3.sigstore.json"),
        &staging,
        &beacon(),
        Artifact::Bytes(&fixture("a.txt")),
    )
    .unwrap_err();
    assert!(err.is_rejection(), "{err}");
}
