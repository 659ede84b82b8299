//! Base64 fields of a bundle decode as the reference clients decode them: line breaks
//! (`\n`, `\r\n`) skipped, URL-safe alphabet and missing padding accepted (protobuf JSON
//! mapping), anything else refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use serde_json::Value;
use vouch_sigstore::{Artifact, Error, Signer, TrustedRoot, verify};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check(bundle: &[u8]) -> Result<(), Error> {
    let root = TrustedRoot::from_json(&fixture("production.trusted_root.json")).unwrap();
    let signer = Signer::Identity {
        identity: IDENTITY.into(),
        issuer: ISSUER.into(),
    };
    verify(bundle, &root, &signer, Artifact::Bytes(&fixture("a.txt"))).map(|_| ())
}

fn wrap(s: &str, eol: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = chars
        .chunks(64)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(eol);
    out.push_str(eol);
    out
}

/// Every base64 string of the bundle passed through `f` (the keys named here are all of
/// the base64 fields these fixtures have).
fn rewrite(v: &mut Value, f: &dyn Fn(&str) -> String) {
    const FIELDS: &[&str] = &[
        "rawBytes",
        "payload",
        "sig",
        "signature",
        "digest",
        "canonicalizedBody",
        "keyId",
        "signedEntryTimestamp",
        "rootHash",
        "hashes",
        "signedTimestamp",
    ];
    match v {
        Value::Object(map) => {
            for (k, value) in map.iter_mut() {
                match value {
                    Value::String(s) if FIELDS.contains(&k.as_str()) => *s = f(s),
                    Value::Array(items) if FIELDS.contains(&k.as_str()) => {
                        for item in items {
                            if let Value::String(s) = item {
                                *s = f(s);
                            }
                        }
                    }
                    other => rewrite(other, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite(i, f)),
        _ => {}
    }
}

fn rewritten(name: &str, f: &dyn Fn(&str) -> String) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
    rewrite(&mut v, f);
    let out = serde_json::to_vec(&v).unwrap();
    assert_ne!(
        out,
        serde_json::to_vec(&serde_json::from_slice::<Value>(&fixture(name)).unwrap()).unwrap()
    );
    out
}

const BUNDLES: [&str; 3] = [
    "happy-path-v0.1.sigstore.json",
    "happy-path-v0.3.sigstore.json",
    "happy-path-intoto-in-dsse-v3.sigstore.json",
];

#[test]
fn base64_wrapped_with_line_feeds_or_crlf_verifies() {
    for name in BUNDLES {
        check(&rewritten(name, &|s| wrap(s, "\n"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        check(&rewritten(name, &|s| wrap(s, "\r\n"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn base64_url_safe_without_padding_verifies() {
    let url_safe = |s: &str| {
        s.replace('+', "-")
            .replace('/', "_")
            .trim_end_matches('=')
            .to_owned()
    };
    for name in BUNDLES {
        check(&rewritten(name, &url_safe)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn base64_with_spaces_is_still_refused() {
    let spaced = |s: &str| wrap(s, " ");
    for name in BUNDLES {
        let err = check(&rewritten(name, &spaced)).unwrap_err();
        assert!(matches!(err, Error::Bundle(_)), "{name}: {err:?}");
    }
}

#[test]
fn wrapped_bundle_with_a_changed_signature_is_still_refused() {
    let mut v: Value =
        serde_json::from_slice(&fixture("happy-path-intoto-in-dsse-v3.sigstore.json")).unwrap();
    rewrite(&mut v, &|s| wrap(s, "\n"));
    let sig = v["dsseEnvelope"]["signatures"][0]["sig"]
        .as_str()
        .unwrap()
        .to_owned();
    // Change one character of the first line (keeping it valid base64).
    let mut chars: Vec<char> = sig.chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    v["dsseEnvelope"]["signatures"][0]["sig"] = Value::String(chars.into_iter().collect());
    let err = check(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(err.is_rejection(), "{err:?}");
}
