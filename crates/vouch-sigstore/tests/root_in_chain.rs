//! A bundle's certificate chain must not hold the root (sigstore-conformance
//! `bundle-with-root-cert_fail`). The chain is not signed, so the cases are made from
//! `happy-path-v0.1` by appending the production Fulcio intermediate and root, taken from
//! the trusted root, to its one-certificate chain.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use serde_json::{Value, json};
use vouch_sigstore::{Artifact, Error, Signer, TrustedRoot, verify};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The current production Fulcio chain of the trusted root: [intermediate, root], base64.
fn fulcio_chain() -> (String, String) {
    let root: Value = serde_json::from_slice(&fixture("production.trusted_root.json")).unwrap();
    let cas = root["certificateAuthorities"].as_array().unwrap();
    let current = cas
        .iter()
        .find(|ca| ca["validFor"].get("end").is_none())
        .unwrap();
    let certs = current["certChain"]["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    (
        certs[0]["rawBytes"].as_str().unwrap().to_owned(),
        certs[1]["rawBytes"].as_str().unwrap().to_owned(),
    )
}

/// happy-path-v0.1 with its chain replaced by the leaf followed by `extra`.
fn with_chain(extra: &[&str]) -> Vec<u8> {
    let mut bundle: Value =
        serde_json::from_slice(&fixture("happy-path-v0.1.sigstore.json")).unwrap();
    let certs = bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]
        .as_array_mut()
        .unwrap();
    assert_eq!(certs.len(), 1);
    for c in extra {
        certs.push(json!({ "rawBytes": c }));
    }
    serde_json::to_vec(&bundle).unwrap()
}

fn check(bundle: &[u8]) -> Result<(), Error> {
    let root = TrustedRoot::from_json(&fixture("production.trusted_root.json")).unwrap();
    let signer = Signer::Identity {
        identity: IDENTITY.into(),
        issuer: ISSUER.into(),
    };
    verify(bundle, &root, &signer, Artifact::Bytes(&fixture("a.txt"))).map(|_| ())
}

#[test]
fn chain_with_the_leaf_and_the_intermediate_verifies() {
    let (intermediate, _) = fulcio_chain();
    check(&with_chain(&[])).unwrap();
    check(&with_chain(&[&intermediate])).unwrap();
}

#[test]
fn chain_with_the_root_after_the_intermediate_is_refused() {
    let (intermediate, root) = fulcio_chain();
    let err = check(&with_chain(&[&intermediate, &root])).unwrap_err();
    assert!(matches!(err, Error::Bundle(_)), "{err:?}");
    assert!(err.is_rejection());
    let msg = err.to_string();
    assert!(msg.contains("root certificate"), "{msg}");
    assert!(msg.contains("position 3"), "{msg}");
}

#[test]
fn chain_with_the_root_right_after_the_leaf_is_refused() {
    let (_, root) = fulcio_chain();
    let err = check(&with_chain(&[&root])).unwrap_err();
    assert!(err.to_string().contains("root certificate"), "{err}");
}
