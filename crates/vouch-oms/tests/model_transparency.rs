//! model-signing's own certificate-mode test vectors (`testdata/oms/model-transparency`,
//! copied from the model-transparency repository's `scripts/tests`): their signing
//! certificate is marked CA:TRUE, with KeyUsage digitalSignature and ExtendedKeyUsage
//! codeSigning, and vouch verifies them as model-signing does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use vouch_model::{IgnoreSet, ModelPath};
use vouch_trust::{CertificateAuthorities, Signer, Trust};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/oms/model-transparency")
}

/// 2026-01-01: the vectors' certificates are valid from 2025-05-02 to 2035-04-30.
fn when() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn verify(model: &Path, ca: &Path, time: SystemTime) -> Result<vouch_oms::Report, String> {
    let bundle = vouch_bundle::Bundle::from_json(&std::fs::read(model.join("model.sig")).unwrap())
        .map_err(|e| format!("bundle: {e}"))?;
    let cas = CertificateAuthorities::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let payload = vouch_trust::verify_envelope(&bundle, &Trust::Certificates(cas), time)
        .map_err(|e| format!("trust: {e}"))?;
    match &payload.get().signer {
        Signer::Certificate { .. } => {}
        other => panic!("unexpected signer {other:?}"),
    }
    let statement = vouch_oms::statement_from(payload).map_err(|e| format!("statement: {e}"))?;
    // The signature lies in the model, as `--signature` says to the CLI.
    let mut ignore = IgnoreSet::new();
    ignore.insert(ModelPath::parse("model.sig").unwrap());
    vouch_oms::verify_model(model, &statement, &ignore, 1, None)
        .map(|r| r.into_inner())
        .map_err(|e| format!("model: {e}: {e:?}"))
}

#[test]
fn model_signing_v1_0_0_certificate_vector_verifies() {
    let report = verify(
        &vectors().join("v1.0.0-certificate"),
        &vectors().join("ca-cert.pem"),
        when(),
    )
    .unwrap();
    assert_eq!(report.files, 2);
}

#[test]
fn model_signing_v1_1_0_certificate_vector_verifies() {
    // Its statement records `ignore-me` and `model.sig` as ignored.
    let report = verify(
        &vectors().join("v1.1.0-certificate"),
        &vectors().join("ca-cert.pem"),
        when(),
    )
    .unwrap();
    assert_eq!(report.files, 2);
}

#[test]
fn model_signing_certificate_vector_is_refused_under_another_root() {
    let other = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/oms/ca.pem");
    let err = verify(&vectors().join("v1.1.0-certificate"), &other, when()).unwrap_err();
    assert!(err.contains("does not chain"), "{err}");
}

#[test]
fn model_signing_certificate_vector_is_refused_after_its_certificate_expired() {
    // 2036-01-01.
    let later = SystemTime::UNIX_EPOCH + Duration::from_secs(2_082_758_400);
    let err = verify(
        &vectors().join("v1.1.0-certificate"),
        &vectors().join("ca-cert.pem"),
        later,
    )
    .unwrap_err();
    assert!(err.contains("expired"), "{err}");
}

#[test]
fn model_signing_certificate_vector_rejects_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = vectors().join("v1.1.0-certificate");
    for name in ["model.sig", "signme-1", "signme-2", "ignore-me"] {
        std::fs::copy(src.join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("signme-2"), b"changed\n").unwrap();
    let err = verify(dir.path(), &vectors().join("ca-cert.pem"), when()).unwrap_err();
    assert!(err.contains("signme-2"), "{err}");
}
