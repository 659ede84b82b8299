//! Build, sign, verify and check combined attestations end to end (in process).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::time::SystemTime;

use vouch_attest::{Attestation, CheckOptions, Error, Image, Model, Role};
use vouch_model::{Digest, HashAlgorithm, HashOptions, IgnoreSet, Method, ScanOptions};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn copy_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = repo().join("testdata/models/tiny-llm");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

fn image(byte: u8) -> Image {
    Image {
        name: "registry.example.com/models/tiny-llm".into(),
        digest: Digest {
            algorithm: HashAlgorithm::Sha256,
            bytes: [byte; 32],
        },
        media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
        reference: Some("v1".into()),
    }
}

fn attest(dir: &Path, method: Method, algorithm: HashAlgorithm) -> Attestation {
    let mut ignore = IgnoreSet::new();
    ignore.insert_git_paths();
    let scan = ScanOptions {
        ignore: ignore.clone(),
        reject_hard_links: false,
    };
    let manifest = vouch_model::hash_dir(
        dir,
        &scan,
        &HashOptions {
            algorithm,
            method,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    Attestation {
        images: vec![image(1)],
        model: Model::from_manifest("tiny-llm", &manifest, ignore).unwrap(),
        metadata: [("version".to_owned(), "1.0.0".to_owned())].into(),
    }
}

fn sign_and_verify(
    payload: Vec<u8>,
) -> Result<vouch_trust::Verified<(Attestation, vouch_trust::Signer)>, Error> {
    let key = vouch_sign::SigningKey::from_pem(
        &std::fs::read(repo().join("testdata/keys/release.key")).unwrap(),
    )
    .unwrap();
    let bundle = key
        .sign_dsse(vouch_bundle::IN_TOTO_PAYLOAD_TYPE, payload)
        .unwrap();
    let trust = vouch_trust::Trust::Key(key.public_key().clone());
    let verified = vouch_trust::verify_envelope(&bundle, &trust, SystemTime::now()).unwrap();
    vouch_attest::from_verified(verified)
}

#[test]
fn round_trips_and_checks_the_model_in_every_hashing_mode() {
    let dir = copy_model();
    for (method, algorithm) in [
        (Method::Files, HashAlgorithm::Sha256),
        (Method::Shards { size: 1000 }, HashAlgorithm::Sha256),
        (Method::Files, HashAlgorithm::Blake3),
    ] {
        let a = attest(dir.path(), method, algorithm);
        let verified = sign_and_verify(vouch_attest::build_statement(&a)).unwrap();
        assert_eq!(verified.get().0, a);
        let report =
            vouch_attest::check_model(dir.path(), &verified, &CheckOptions::default(), None)
                .unwrap();
        assert_eq!(report.get().digest, a.model.digest);
        assert_eq!(report.get().files, 6);
        vouch_attest::covered_image(&verified, &image(1).digest).unwrap();
        vouch_attest::check_pin(&verified, &a.model.digest.to_string()).unwrap();
    }
}

#[test]
fn roles_are_recorded() {
    let dir = copy_model();
    let a = attest(dir.path(), Method::Files, HashAlgorithm::Sha256);
    let roles: Vec<_> = a
        .model
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.role))
        .collect();
    assert!(roles.contains(&("tokenizer.json", Role::Tokenizer)));
    assert!(roles.contains(&("model.safetensors", Role::Weights)));
    assert!(roles.contains(&("config.json", Role::Config)));
}

#[test]
fn another_image_digest_is_not_covered() {
    let dir = copy_model();
    let verified = sign_and_verify(vouch_attest::build_statement(&attest(
        dir.path(),
        Method::Files,
        HashAlgorithm::Sha256,
    )))
    .unwrap();
    let err = vouch_attest::covered_image(&verified, &image(2).digest).unwrap_err();
    assert!(
        err.to_string()
            .contains("does not cover image digest sha256:0202"),
        "{err}"
    );
}

#[test]
fn wrong_pin_is_rejected() {
    let dir = copy_model();
    let verified = sign_and_verify(vouch_attest::build_statement(&attest(
        dir.path(),
        Method::Files,
        HashAlgorithm::Sha256,
    )))
    .unwrap();
    let err =
        vouch_attest::check_pin(&verified, &format!("sha256:{}", "0".repeat(64))).unwrap_err();
    assert!(matches!(err, Error::PinMismatch { .. }));
}

#[test]
fn swapped_tokenizer_is_named_with_its_role() {
    let dir = copy_model();
    let verified = sign_and_verify(vouch_attest::build_statement(&attest(
        dir.path(),
        Method::Files,
        HashAlgorithm::Sha256,
    )))
    .unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
    let Err(Error::Mismatch(d)) =
        vouch_attest::check_model(dir.path(), &verified, &CheckOptions::default(), None)
    else {
        panic!("expected a mismatch");
    };
    assert_eq!(d.len(), 1);
    assert!(
        d[0].to_string()
            .starts_with("[tokenizer] `tokenizer.json`: size differs"),
        "{}",
        d[0]
    );
}

#[test]
fn the_image_is_the_first_subject() {
    // Verifiers that read only `subject[0]` (cosign verify's report) see the image.
    let dir = copy_model();
    let a = attest(dir.path(), Method::Files, HashAlgorithm::Sha256);
    let v: serde_json::Value = serde_json::from_slice(&vouch_attest::build_statement(&a)).unwrap();
    assert_eq!(v["subject"][0]["name"], a.images[0].name.as_str());
    assert_eq!(
        format!(
            "sha256:{}",
            v["subject"][0]["digest"]["sha256"].as_str().unwrap()
        ),
        a.images[0].digest.to_string()
    );
    assert_eq!(v["subject"].as_array().unwrap().len(), 2);
}

#[test]
fn a_statement_as_cosign_attest_writes_it_is_accepted() {
    // `cosign attest --type https://vouch.dev/attestation/v1 --predicate P`: in-toto v0.1,
    // the image as the only subject, vouch's predicate as given.
    let dir = copy_model();
    let a = attest(dir.path(), Method::Files, HashAlgorithm::Sha256);
    let mut v: serde_json::Value =
        serde_json::from_slice(&vouch_attest::build_statement(&a)).unwrap();
    v["_type"] = "https://in-toto.io/Statement/v0.1".into();
    v["subject"].as_array_mut().unwrap().truncate(1);
    let verified = sign_and_verify(serde_json::to_vec(&v).unwrap()).unwrap();
    vouch_attest::covered_image(&verified, &image(1).digest).unwrap();
    vouch_attest::check_model(dir.path(), &verified, &CheckOptions::default(), None).unwrap();
}

#[test]
fn the_model_alone_or_an_unknown_statement_type_is_refused() {
    tampered(
        |v| {
            v["subject"].as_array_mut().unwrap().remove(0);
        },
        "subjects are not exactly",
    );
    tampered(
        |v| v["_type"] = "https://in-toto.io/Statement/v2".into(),
        "not an in-toto Statement",
    );
}

/// Edit the statement JSON, re-sign it, and expect a consistency error containing `want`.
fn tampered(edit: impl Fn(&mut serde_json::Value), want: &str) {
    let dir = copy_model();
    let a = attest(dir.path(), Method::Files, HashAlgorithm::Sha256);
    let mut v: serde_json::Value =
        serde_json::from_slice(&vouch_attest::build_statement(&a)).unwrap();
    edit(&mut v);
    let err = sign_and_verify(serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(err.to_string().contains(want), "want {want:?}, got: {err}");
}

#[test]
fn signed_but_inconsistent_statements_are_rejected() {
    tampered(
        |v| v["predicate"]["model"]["files"][0]["size"] = 1.into(),
        "does not match its file list",
    );
    tampered(
        |v| v["predicate"]["model"]["files"][0]["path"] = "../escape".into(),
        "`..` component",
    );
    tampered(
        |v| v["predicate"]["model"]["files"][0]["path"] = "/etc/passwd".into(),
        "absolute",
    );
    tampered(
        |v| {
            let first = v["predicate"]["model"]["files"][0].clone();
            v["predicate"]["model"]["files"]
                .as_array_mut()
                .unwrap()
                .push(first);
        },
        "listed twice",
    );
    tampered(
        |v| v["subject"][0]["digest"]["sha256"] = "ab".repeat(32).into(),
        "subjects are not exactly",
    );
    tampered(
        |v| v["predicate"]["images"] = serde_json::json!([]),
        "covers no image",
    );
    tampered(
        |v| v["predicateType"] = "https://slsa.dev/provenance/v1".into(),
        "not a vouch combined attestation",
    );
    tampered(
        |v| v["predicate"]["model"]["files"][0]["role"] = "secret".into(),
        "unknown role",
    );
    tampered(
        |v| v["predicate"]["surprise"] = true.into(),
        "unknown field",
    );
}

/// Layers as a manifest lists them: path, size, digest.
type Layers = Vec<(String, u64, String)>;
type VerifiedAttestation = vouch_trust::Verified<(Attestation, vouch_trust::Signer)>;

/// An attestation of the example model as an artifact (its files as a manifest lists them).
fn artifact_attestation() -> (Layers, VerifiedAttestation) {
    let dir = copy_model();
    let a = attest(dir.path(), Method::Files, HashAlgorithm::Sha256);
    let layers: Layers = a
        .model
        .files
        .iter()
        .map(|f| {
            (
                f.path.to_string(),
                f.size,
                f.resources[0].digest.to_string(),
            )
        })
        .collect();
    let files: Vec<vouch_attest::ArtifactFile<'_>> = layers
        .iter()
        .map(|(p, s, d)| vouch_attest::ArtifactFile {
            path: p,
            size: *s,
            digest: d,
        })
        .collect();
    let artifact = vouch_attest::ModelArtifact {
        name: "registry.example.com/models/tiny-llm-weights".into(),
        digest: Digest::sha256(b"manifest"),
        media_type: None,
    };
    let model = Model::from_artifact("tiny-llm", artifact, &files).unwrap();
    let attestation = Attestation { model, ..a.clone() };
    let v = sign_and_verify(vouch_attest::build_statement(&attestation)).unwrap();
    (layers, v)
}

fn check_layers(v: &VerifiedAttestation, layers: &[(String, u64, String)]) -> Result<Model, Error> {
    let files: Vec<vouch_attest::ArtifactFile<'_>> = layers
        .iter()
        .map(|(p, s, d)| vouch_attest::ArtifactFile {
            path: p,
            size: *s,
            digest: d,
        })
        .collect();
    vouch_attest::check_artifact_files(v, &files).map(vouch_trust::Verified::into_inner)
}

#[test]
fn an_artifacts_layers_must_be_exactly_the_attested_files() {
    let (layers, v) = artifact_attestation();
    // In another order: the same files.
    let mut reversed = layers.clone();
    reversed.reverse();
    let m = check_layers(&v, &reversed).unwrap();
    assert_eq!(m.digest, v.get().0.model.digest);
    assert_eq!(m.files.len(), layers.len());

    let mut fewer = layers.clone();
    fewer.pop();
    let e = check_layers(&v, &fewer).unwrap_err();
    assert!(matches!(&e, Error::Mismatch(d) if d.len() == 1), "{e}");

    let mut bigger = layers.clone();
    bigger[0].1 += 1;
    let e = check_layers(&v, &bigger).unwrap_err();
    assert!(e.to_string().contains("1 difference"), "{e}");

    let mut other = layers.clone();
    other[1].2 = Digest::sha256(b"other").to_string();
    let e = check_layers(&v, &other).unwrap_err();
    let Error::Mismatch(d) = e else { panic!() };
    assert_eq!(d[0].difference.kind(), "content-differs");

    let mut extra = layers.clone();
    extra.push(("extra.txt".into(), 1, Digest::sha256(b"x").to_string()));
    let e = check_layers(&v, &extra).unwrap_err();
    let Error::Mismatch(d) = e else { panic!() };
    assert_eq!(d[0].difference.kind(), "extra-file");
}

#[test]
fn an_artifacts_untrusted_paths_are_refused_before_they_are_compared() {
    let (layers, v) = artifact_attestation();
    for bad in ["../x", "/etc/passwd", "a/../b", ""] {
        let mut l = layers.clone();
        l[0].0 = bad.into();
        let e = check_layers(&v, &l).unwrap_err();
        assert!(!matches!(e, Error::Mismatch(_)), "{bad}: {e}");
    }
    let mut twice = layers.clone();
    twice[1].0 = twice[0].0.clone();
    let e = check_layers(&v, &twice).unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
}

#[test]
fn the_files_of_a_directory_attestation_are_no_artifact() {
    let dir = copy_model();
    let a = attest(dir.path(), Method::Files, HashAlgorithm::Sha256);
    let v = sign_and_verify(vouch_attest::build_statement(&a)).unwrap();
    let (layers, _) = artifact_attestation();
    let e = check_layers(&v, &layers).unwrap_err();
    assert!(matches!(e, Error::ArtifactMismatch { .. }), "{e}");
}
