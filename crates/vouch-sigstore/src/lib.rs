//! Verify Sigstore bundles as every Sigstore client does: Fulcio certificates with their
//! SCTs, Rekor v1 and v2 log entries (inclusion proof, checkpoint, signed entry timestamp),
//! RFC 3161 timestamps, and managed-key bundles.
//!
//! A thin, typed wrapper over the sigstore org's `sigstore-verify` (and the trust-root,
//! bundle and types crates it re-exports), built without TUF or an HTTP client: the
//! trusted root is given as JSON (or one of the snapshots embedded in `sigstore-trust-root`),
//! so verification is offline and a pure function of its inputs. The signer is either a
//! public key or a certificate identity (exact SAN) with its OIDC issuer; the artifact is
//! bytes, a reader, or a SHA-256 digest (for a DSSE bundle: a subject of its in-toto
//! statement).
//!
//! `vouch verify-bundle` (the sigstore-conformance protocol) is built on [`verify`];
//! `scripts/conformance` runs the conformance cases through it.

#![forbid(unsafe_code)]

use std::fmt;
use std::io::Read;

use sigstore_verify::crypto::{KeyAlgorithm, parse_certificate_info};
use sigstore_verify::trust_root::SigstoreInstance;
use sigstore_verify::types::bundle::VerificationMaterialContent;
use sigstore_verify::types::{Bundle, DerPublicKey, Sha256Hash, SignatureContent};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

/// Why a bundle could not be verified.
///
/// [`Error::is_rejection`] separates "checked, and the answer is no" (the bundle, its
/// signature, certificate, log entry or timestamps, the signer or the artifact) from "could
/// not decide" (an unusable trusted root or public key, an unreadable artifact).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The trusted root is not valid JSON, or holds unusable trust material.
    #[error("the trusted root is unusable: {0}")]
    TrustedRoot(String),
    /// The public key given to verify with is not a usable PEM SPKI key.
    #[error("the public key is unusable: {0}")]
    PublicKey(String),
    /// The artifact could not be read.
    #[error("cannot read the artifact: {0}")]
    ArtifactRead(#[source] std::io::Error),
    /// The bundle is malformed, of an unknown version, or internally inconsistent.
    #[error("the bundle is invalid: {0}")]
    Bundle(String),
    /// The bundle is signed with a certificate but a key was given, or the reverse.
    #[error(
        "the bundle is signed with {}, but {} was given to verify it",
        if *.signed_with_key { "a managed key" } else { "a certificate" },
        if *.signed_with_key { "a certificate identity" } else { "a key" }
    )]
    WrongMaterial {
        /// True when the bundle carries a public key hint, false for a certificate.
        signed_with_key: bool,
    },
    /// The certificate's identity (SAN) is not the expected one.
    #[error("the certificate identity is {}, expected {expected}", actual.as_deref().unwrap_or("absent"))]
    IdentityMismatch {
        /// The identity asked for.
        expected: String,
        /// The certificate's SAN, if it has one.
        actual: Option<String>,
    },
    /// The certificate's OIDC issuer is not the expected one.
    #[error("the certificate's OIDC issuer is {}, expected {expected}", actual.as_deref().unwrap_or("absent"))]
    IssuerMismatch {
        /// The issuer asked for.
        expected: String,
        /// The certificate's issuer, if it has one.
        actual: Option<String>,
    },
    /// The bundle does not sign this artifact (digest or in-toto subject differs).
    #[error("the bundle does not cover this artifact: {0}")]
    ArtifactMismatch(String),
    /// Signature, certificate, transparency log or timestamp evidence did not verify.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// True when the bundle was checked and rejected; false when no decision was reached
    /// (unusable trusted root or key, unreadable artifact).
    pub fn is_rejection(&self) -> bool {
        !matches!(
            self,
            Error::TrustedRoot(_) | Error::PublicKey(_) | Error::ArtifactRead(_)
        )
    }

    fn from_verify(e: sigstore_verify::Error) -> Self {
        use sigstore_verify::Error as E;
        match e {
            E::IdentityMismatch { expected, actual } => Error::IdentityMismatch {
                expected: expected.to_string(),
                actual: actual.map(|a| a.to_string()),
            },
            E::IssuerMismatch { expected, actual } => Error::IssuerMismatch { expected, actual },
            E::ArtifactMismatch(m) => Error::ArtifactMismatch(m),
            E::InvalidTrustRoot(m) => Error::TrustedRoot(m),
            e @ (E::TrustRoot(_) | E::TrustedCertificate(_)) => Error::TrustedRoot(e.to_string()),
            E::ArtifactRead(io) => Error::ArtifactRead(io),
            e @ (E::InvalidBundle(_)
            | E::UnsupportedBundle(_)
            | E::UnsupportedArtifact(_)
            | E::Types(_)
            | E::Bundle(_)) => Error::Bundle(e.to_string()),
            other => Error::Invalid(other.to_string()),
        }
    }
}

/// A trusted root (Fulcio CAs, Rekor and CT log keys, timestamp authorities), checked once.
pub struct TrustedRoot {
    verifier: Verifier,
}

impl fmt::Debug for TrustedRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedRoot").finish_non_exhaustive()
    }
}

/// A Sigstore instance whose trusted root `sigstore-trust-root` embeds (a snapshot: it
/// goes stale when the instance rotates keys; pass the current `trusted_root.json` when it
/// matters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instance {
    /// The public-good production instance.
    Production,
    /// The public-good staging instance.
    Staging,
}

impl TrustedRoot {
    /// Parse a `trusted_root.json` and check its trust material.
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        let text =
            std::str::from_utf8(json).map_err(|e| Error::TrustedRoot(format!("not UTF-8: {e}")))?;
        let root = sigstore_verify::trust_root::TrustedRoot::from_json(text)
            .map_err(|e| Error::TrustedRoot(e.to_string()))?;
        Self::new(&root)
    }

    /// The embedded snapshot of a public-good instance's trusted root.
    pub fn embedded(instance: Instance) -> Result<Self, Error> {
        let instance = match instance {
            Instance::Production => SigstoreInstance::PublicGood,
            Instance::Staging => SigstoreInstance::Staging,
        };
        let root = instance
            .embedded_trusted_root()
            .map_err(|e| Error::TrustedRoot(e.to_string()))?;
        Self::new(&root)
    }

    fn new(root: &sigstore_verify::trust_root::TrustedRoot) -> Result<Self, Error> {
        let verifier = Verifier::new(root).map_err(|e| match Error::from_verify(e) {
            e @ Error::TrustedRoot(_) => e,
            other => Error::TrustedRoot(other.to_string()),
        })?;
        Ok(Self { verifier })
    }
}

/// A public key (PEM SubjectPublicKeyInfo) to verify managed-key bundles with.
#[derive(Debug, Clone)]
pub struct PublicKey(DerPublicKey);

impl PublicKey {
    /// Parse a PEM `PUBLIC KEY` block and check that its algorithm is one Sigstore signs with.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let text =
            std::str::from_utf8(pem).map_err(|e| Error::PublicKey(format!("not UTF-8: {e}")))?;
        let key = DerPublicKey::from_pem(text).map_err(|e| Error::PublicKey(e.to_string()))?;
        KeyAlgorithm::from_spki(&key).map_err(|e| Error::PublicKey(e.to_string()))?;
        Ok(Self(key))
    }
}

/// Who must have signed the bundle.
#[derive(Debug, Clone)]
pub enum Signer {
    /// A managed key: the bundle carries a key hint, the signature verifies with this key.
    Key(PublicKey),
    /// A Fulcio certificate whose SAN is exactly `identity` and whose OIDC issuer extension is
    /// exactly `issuer`.
    Identity {
        /// The expected SAN (URI or email), compared exactly.
        identity: String,
        /// The expected OIDC issuer URL, compared exactly.
        issuer: String,
    },
    /// A Fulcio certificate whose SAN matches `pattern` (a regular expression, anchored as
    /// written) and whose OIDC issuer extension is exactly `issuer`. Trust policies use it
    /// for "any release workflow of this repository".
    IdentityPattern {
        /// The expression the SAN (URI or email) must match.
        pattern: regex_lite::Regex,
        /// The expected OIDC issuer URL, compared exactly.
        issuer: String,
    },
}

/// What was signed: the artifact itself or its SHA-256 digest. For a DSSE bundle, the
/// artifact (or digest) must be a subject of the in-toto statement.
pub enum Artifact<'a> {
    /// The artifact's bytes.
    Bytes(&'a [u8]),
    /// The artifact, read to its end (in constant memory unless the signing scheme needs the
    /// whole message, as Ed25519 does).
    Reader(&'a mut dyn Read),
    /// The artifact's SHA-256 digest.
    Sha256([u8; 32]),
}

impl fmt::Debug for Artifact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Artifact::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Artifact::Reader(_) => f.write_str("Reader"),
            Artifact::Sha256(d) => write!(f, "Sha256({})", hex::encode(d)),
        }
    }
}

/// Parse `sha256:<64 hex digits>` as the conformance protocol defines a digest argument.
/// `None` when it is not one (then the argument is a path).
pub fn parse_sha256_digest(arg: &str) -> Option<[u8; 32]> {
    let hex = arg.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

/// Who signed, as the verified bundle says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedBy {
    /// The managed key given to [`verify`].
    Key,
    /// A Fulcio certificate with this identity and issuer (both matched the [`Signer`]).
    Certificate {
        /// The certificate's SAN.
        identity: String,
        /// The certificate's OIDC issuer.
        issuer: String,
    },
}

/// A bundle that verified. Only [`verify`] makes one.
#[derive(Debug, Clone)]
pub struct Verification {
    signed_by: SignedBy,
    media_type: &'static str,
    signed_at: Option<String>,
    tlog_verified: bool,
    statement: Option<Vec<u8>>,
}

impl Verification {
    /// Who signed.
    pub fn signed_by(&self) -> &SignedBy {
        &self.signed_by
    }

    /// The bundle's media type (its format version).
    pub fn media_type(&self) -> &'static str {
        self.media_type
    }

    /// The earliest authenticated signing time (Rekor integrated time or an RFC 3161
    /// timestamp), RFC 3339, when there is one.
    pub fn signed_at(&self) -> Option<&str> {
        self.signed_at.as_deref()
    }

    /// Whether transparency-log inclusion (proof and checkpoint) was verified.
    pub fn tlog_verified(&self) -> bool {
        self.tlog_verified
    }

    /// For a DSSE bundle: the payload (the in-toto statement) exactly as signed.
    pub fn statement(&self) -> Option<&[u8]> {
        self.statement.as_deref()
    }
}

/// Verify a bundle (its JSON bytes) for `artifact`, signed by `signer`, against `root`.
pub fn verify(
    bundle_json: &[u8],
    root: &TrustedRoot,
    signer: &Signer,
    artifact: Artifact<'_>,
) -> Result<Verification, Error> {
    let bundle = parse_bundle(bundle_json)?;
    refuse_root_in_chain(&bundle)?;
    let signed_with_key = matches!(
        bundle.verification_material.content,
        VerificationMaterialContent::PublicKey(_)
    );
    if signed_with_key != matches!(signer, Signer::Key(_)) {
        return Err(Error::WrongMaterial { signed_with_key });
    }
    let result = match signer {
        Signer::Key(key) => {
            let policy = PublicKeyVerificationPolicy::new(key.0.clone());
            run(&root.verifier, &bundle, &policy, signer, artifact)
        }
        Signer::Identity { identity, issuer } => {
            let policy = VerificationPolicy::new(identity.as_str(), issuer.as_str());
            run(&root.verifier, &bundle, &policy, signer, artifact)
        }
        Signer::IdentityPattern { issuer, .. } => {
            // Everything but the SAN is checked by the verifier; the SAN right below.
            let policy = VerificationPolicy::any_identity().require_issuer(issuer.as_str());
            run(&root.verifier, &bundle, &policy, signer, artifact)
        }
    }
    .map_err(Error::from_verify)?;
    if let Signer::IdentityPattern { pattern, .. } = signer {
        let actual = result.identity().map(|i| i.to_string());
        if !actual.as_deref().is_some_and(|a| pattern.is_match(a)) {
            return Err(Error::IdentityMismatch {
                expected: format!("an identity matching `{}`", pattern.as_str()),
                actual,
            });
        }
    }

    let signed_by = match signer {
        Signer::Key(_) => SignedBy::Key,
        Signer::Identity { identity, issuer } => SignedBy::Certificate {
            identity: result
                .identity()
                .map_or_else(|| identity.clone(), |i| i.to_string()),
            issuer: result
                .issuer()
                .map_or_else(|| issuer.clone(), str::to_string),
        },
        Signer::IdentityPattern { issuer, .. } => SignedBy::Certificate {
            identity: result.identity().map(|i| i.to_string()).unwrap_or_default(),
            issuer: result
                .issuer()
                .map_or_else(|| issuer.clone(), str::to_string),
        },
    };
    let signed_at = result
        .verified_timestamps()
        .iter()
        .copied()
        .min()
        .or(result.integrated_time())
        .map(|t| t.to_string());
    let statement = match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => Some(envelope.payload.as_bytes().to_vec()),
        _ => None,
    };
    Ok(Verification {
        signed_by,
        media_type: bundle.media_type().as_str(),
        signed_at,
        tlog_verified: result.tlog_verified(),
        statement,
    })
}

/// The JSON names of the bundle's `bytes` fields (Sigstore protobuf specs: certificates and
/// keys, DSSE payload and signature, message digest and signature, log entry body, log id,
/// signed entry timestamp, inclusion proof hashes, RFC 3161 timestamps).
const BASE64_FIELDS: &[&str] = &[
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

/// Parse bundle JSON. Its base64 fields are decoded as the reference clients decode them
/// ([`vouch_bundle::decode_base64`]: line breaks skipped, URL-safe alphabet, padding
/// optional), which `sigstore-verify`'s parser does not do: a field written otherwise than in
/// padded standard base64 is first rewritten so (the same bytes; bundle JSON is not signed).
fn parse_bundle(bundle_json: &[u8]) -> Result<Bundle, Error> {
    let text =
        std::str::from_utf8(bundle_json).map_err(|e| Error::Bundle(format!("not UTF-8: {e}")))?;
    match Bundle::from_json(text) {
        Ok(bundle) => Ok(bundle),
        Err(first) => {
            let canonical = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|mut v| canonical_base64(&mut v).then_some(v))
                .map(|v| v.to_string());
            match canonical {
                Some(json) => Bundle::from_json(&json).map_err(|e| Error::Bundle(e.to_string())),
                None => Err(Error::Bundle(first.to_string())),
            }
        }
    }
}

/// Rewrite every base64 field in `v` that is not padded standard base64 but decodes as the
/// reference clients decode it; true when one was rewritten.
fn canonical_base64(v: &mut serde_json::Value) -> bool {
    use base64::Engine as _;
    use serde_json::Value;
    fn rewrite(s: &mut String) -> bool {
        let standard = base64::engine::general_purpose::STANDARD;
        if standard.decode(s.as_bytes()).is_ok() {
            return false;
        }
        match vouch_bundle::decode_base64(s) {
            Some(bytes) => {
                *s = standard.encode(bytes);
                true
            }
            None => false,
        }
    }
    let mut changed = false;
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(s) if BASE64_FIELDS.contains(&key.as_str()) => {
                        changed |= rewrite(s);
                    }
                    Value::Array(items) if BASE64_FIELDS.contains(&key.as_str()) => {
                        for item in items.iter_mut() {
                            if let Value::String(s) = item {
                                changed |= rewrite(s);
                            } else {
                                changed |= canonical_base64(item);
                            }
                        }
                    }
                    other => changed |= canonical_base64(other),
                }
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                changed |= canonical_base64(item);
            }
        }
        _ => {}
    }
    changed
}

/// A bundle's certificate chain (v0.1/v0.2 `x509CertificateChain`) may hold the signing
/// certificate and intermediates, but MUST NOT hold a root (Sigstore bundle spec;
/// sigstore-conformance `bundle-with-root-cert_fail`): the root comes from the trusted root
/// only. `sigstore-verify` ignores the rest of the chain and accepted such a bundle, so a
/// self-issued certificate (subject = issuer, which every root is) is refused here. An
/// unparsable certificate is left to the verifier to reject.
fn refuse_root_in_chain(bundle: &Bundle) -> Result<(), Error> {
    use x509_cert::der::Decode as _;
    let VerificationMaterialContent::X509CertificateChain { certificates } =
        &bundle.verification_material.content
    else {
        return Ok(());
    };
    for (i, cert) in certificates.iter().enumerate() {
        let Ok(parsed) = x509_cert::Certificate::from_der(cert.raw_bytes.as_bytes()) else {
            continue;
        };
        let tbs = &parsed.tbs_certificate;
        if tbs.subject == tbs.issuer {
            return Err(Error::Bundle(format!(
                "its certificate chain holds a root certificate (`{}`, position {}); a bundle may carry the signing certificate and intermediates only, the root comes from the trusted root",
                tbs.subject,
                i + 1
            )));
        }
    }
    Ok(())
}

/// Verify a DSSE bundle carrying an in-toto statement, whatever its subjects: the artifact
/// checked is the statement's own first SHA-256 subject (the caller checks the statement's
/// content against what it holds, e.g. a model directory). [`Verification::statement`] is
/// then the statement exactly as signed.
pub fn verify_statement(
    bundle_json: &[u8],
    root: &TrustedRoot,
    signer: &Signer,
) -> Result<Verification, Error> {
    let bundle = parse_bundle(bundle_json)?;
    let SignatureContent::DsseEnvelope(envelope) = &bundle.content else {
        return Err(Error::Bundle(
            "it holds a message signature, not a DSSE envelope with an in-toto statement".into(),
        ));
    };
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(Error::Bundle(format!(
            "its payload type is `{}`, expected `{IN_TOTO_PAYLOAD_TYPE}`",
            envelope.payload_type
        )));
    }
    let digest = first_sha256_subject(envelope.payload.as_bytes()).ok_or_else(|| {
        Error::Bundle("its in-toto statement has no subject with a sha256 digest".into())
    })?;
    verify(bundle_json, root, signer, Artifact::Sha256(digest))
}

const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

fn first_sha256_subject(statement: &[u8]) -> Option<[u8; 32]> {
    let v: serde_json::Value = serde_json::from_slice(statement).ok()?;
    v.get("subject")?
        .as_array()?
        .iter()
        .filter_map(|s| s.get("digest")?.get("sha256")?.as_str())
        .find_map(|hex| parse_sha256_digest(&format!("sha256:{hex}")))
}

fn run(
    verifier: &Verifier,
    bundle: &Bundle,
    policy: &(impl sigstore_verify::Policy + ?Sized),
    signer: &Signer,
    artifact: Artifact<'_>,
) -> sigstore_verify::Result<sigstore_verify::VerificationResult> {
    match artifact {
        Artifact::Bytes(bytes) => verifier.verify(bytes, bundle, policy),
        Artifact::Sha256(digest) => verifier.verify(Sha256Hash::new(digest), bundle, policy),
        Artifact::Reader(reader) => {
            if needs_whole_message(bundle, signer) {
                let mut bytes = Vec::new();
                reader
                    .read_to_end(&mut bytes)
                    .map_err(sigstore_verify::Error::ArtifactRead)?;
                verifier.verify(&bytes, bundle, policy)
            } else {
                verifier.verify_reader(reader, bundle, policy)
            }
        }
    }
}

/// Whether a message signature's scheme cannot verify a prehashed message (Ed25519), so the
/// artifact must be read whole. Anything unparsable is left to the verifier to reject.
fn needs_whole_message(bundle: &Bundle, signer: &Signer) -> bool {
    if !matches!(bundle.content, SignatureContent::MessageSignature(_)) {
        return false;
    }
    let algorithm = match signer {
        Signer::Key(key) => KeyAlgorithm::from_spki(&key.0).ok(),
        Signer::Identity { .. } | Signer::IdentityPattern { .. } => bundle
            .signing_certificate()
            .and_then(|cert| parse_certificate_info(cert).ok())
            .map(|info| info.key_algorithm),
    };
    algorithm.is_some_and(|a| !a.default_signing_scheme().supports_prehashed())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn digest_argument() {
        let hex = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
        assert!(parse_sha256_digest(&format!("sha256:{hex}")).is_some());
        assert!(parse_sha256_digest(hex).is_none());
        assert!(parse_sha256_digest(&format!("sha256:{}", &hex[1..])).is_none());
        assert!(parse_sha256_digest(&format!("sha256:{}g", &hex[1..])).is_none());
        assert!(parse_sha256_digest(&format!("sha512:{hex}")).is_none());
    }

    #[test]
    fn embedded_roots_load() {
        TrustedRoot::embedded(Instance::Production).unwrap();
        TrustedRoot::embedded(Instance::Staging).unwrap();
    }

    #[test]
    fn bad_inputs_are_typed() {
        assert!(matches!(
            TrustedRoot::from_json(b"{"),
            Err(Error::TrustedRoot(_))
        ));
        assert!(matches!(
            PublicKey::from_pem(b"not a key"),
            Err(Error::PublicKey(_))
        ));
        let root = TrustedRoot::embedded(Instance::Production).unwrap();
        let signer = Signer::Identity {
            identity: "a".into(),
            issuer: "b".into(),
        };
        let err = verify(b"{\"mediaType\": 1", &root, &signer, Artifact::Bytes(b"x")).unwrap_err();
        assert!(matches!(err, Error::Bundle(_)), "{err}");
        assert!(err.is_rejection());
    }
}
