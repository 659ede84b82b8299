//! The one place where vouch decides that bytes were signed by someone it trusts.
//!
//! Input: a parsed [`vouch_bundle::Bundle`] and a [`Trust`] (a public key, or certificate
//! authorities). Output: [`Verified<SignedPayload>`], the payload bytes over which a
//! signature was checked and a description of who signed them. `Verified` can only be
//! created in this crate, so every later step (OMS manifests, the combined attestation,
//! policy) can require one and be sure a check ran: the same idea as rustls'
//! `HandshakeSignatureValid`.
//!
//! Verification code only: there is no signing, key generation or network here, so the
//! init container and the admission webhook can link it without the signing stack.

#![forbid(unsafe_code)]

mod keys;
mod time;
mod x509;

use std::time::SystemTime;

pub use keys::{Curve, PublicKey};
pub use time::rfc3339;
use vouch_bundle::{Bundle, IN_TOTO_PAYLOAD_TYPE, Material};
/// Sigstore bundle verification (trusted roots, certificate identities), with the `sigstore`
/// feature.
#[cfg(feature = "sigstore")]
pub use vouch_sigstore as sigstore;
pub use x509::CertificateAuthorities;

/// Proof that a check ran: only this crate can build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrow the verified value.
    pub fn get(&self) -> &T {
        &self.0
    }

    /// Unwrap the verified value (it stops being a proof).
    pub fn into_inner(self) -> T {
        self.0
    }

    /// Derive a new verified value from this one (for example, parse the signed payload).
    /// The result is only as trustworthy as `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Verified<U> {
        Verified(f(self.0))
    }

    /// Like [`Verified::map`], for a fallible derivation.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Verified<U>, E> {
        f(self.0).map(Verified)
    }
}

/// Whom to trust.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Trust {
    /// Exactly this public key.
    Key(PublicKey),
    /// Any signing certificate that chains to one of these authorities and is valid now.
    Certificates(CertificateAuthorities),
}

/// Who signed a payload, as established by verification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signer {
    /// A public key, identified by its hint (hex SHA-256 of its PEM).
    Key {
        /// The key hint.
        hint: String,
    },
    /// A certificate that chained to a trusted authority.
    Certificate {
        /// The signing certificate's URI and e-mail subject alternative names.
        identities: Vec<String>,
        /// Hex SHA-256 of the signing certificate (DER).
        fingerprint: String,
        /// When the certificate expires (RFC 3339).
        not_after: String,
    },
    /// A short-lived Fulcio certificate (keyless signing), checked with its transparency-log
    /// entry and timestamps against a Sigstore trusted root: see [`verify_keyless`].
    Keyless {
        /// The certificate's identity (SAN), exactly the one asked for.
        identity: String,
        /// The certificate's OIDC issuer, exactly the one asked for.
        issuer: String,
        /// When it was signed (Rekor integrated time or RFC 3161 timestamp, RFC 3339).
        signed_at: Option<String>,
    },
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key { hint } => write!(f, "public key {hint}"),
            Self::Keyless {
                identity, issuer, ..
            } => write!(f, "{identity} (issuer {issuer})"),
            Self::Certificate {
                identities,
                fingerprint,
                ..
            } if identities.is_empty() => {
                write!(f, "certificate sha256:{fingerprint}")
            }
            Self::Certificate { identities, .. } => {
                write!(f, "certificate for {}", identities.join(", "))
            }
        }
    }
}

/// A DSSE payload whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPayload {
    /// The DSSE payload type.
    pub payload_type: String,
    /// The payload bytes the signature covers.
    pub payload: Vec<u8>,
    /// Who signed.
    pub signer: Signer,
}

/// Why a signature is not trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The public key file is not a PEM SubjectPublicKeyInfo.
    #[error("not a PEM public key (expected `-----BEGIN PUBLIC KEY-----`): {0}")]
    KeyPem(String),
    /// A key on a curve vouch does not accept.
    #[error("unsupported public key: only ECDSA P-256 and P-384 keys are accepted")]
    UnsupportedKey,
    /// Certificates that do not parse.
    #[error("not a PEM certificate file: {0}")]
    CertificatePem(String),
    /// The bundle names another key.
    #[error(
        "the signature was made with another key (its key hint is {bundle}, the given key's is {given})"
    )]
    KeyHintMismatch {
        /// Hint in the bundle.
        bundle: String,
        /// Hint of the given key.
        given: String,
    },
    /// The signature does not verify.
    #[error("the signature does not match the signed content and the given key")]
    BadSignature,
    /// A key-signed bundle checked against certificate authorities, or the reverse.
    #[error("the signature was made with {found}, but verification was asked to use {wanted}")]
    MaterialMismatch {
        /// What the bundle has.
        found: &'static str,
        /// What the caller trusts.
        wanted: &'static str,
    },
    /// The signing certificate is expired.
    #[error("the signing certificate expired at {not_after}; verification time is {time}")]
    CertificateExpired {
        /// Verification time (RFC 3339).
        time: String,
        /// Certificate notAfter (RFC 3339).
        not_after: String,
    },
    /// The signing certificate is not valid yet.
    #[error(
        "the signing certificate is not valid before {not_before}; verification time is {time}"
    )]
    CertificateNotYetValid {
        /// Verification time (RFC 3339).
        time: String,
        /// Certificate notBefore (RFC 3339).
        not_before: String,
    },
    /// The certificate chain does not lead to a trusted authority, or is otherwise invalid.
    #[error("the signing certificate is not trusted: {0}")]
    CertificateUntrusted(String),
    /// The signing certificate has a KeyUsage extension that does not allow
    /// digitalSignature.
    #[error(
        "the signing certificate `{subject}` cannot be used for signing: its key usage allows {key_usage}, not digitalSignature"
    )]
    CertificateKeyUsage {
        /// The certificate's subject (RFC 4514).
        subject: String,
        /// The key usages it does allow.
        key_usage: String,
    },
    /// The signing certificate has neither a KeyUsage nor an ExtendedKeyUsage extension
    /// that allows signing.
    #[error(
        "the signing certificate `{subject}` cannot be used for signing: it has neither a key usage extension (digitalSignature) nor an extended key usage extension (code signing)"
    )]
    CertificateNoUsage {
        /// The certificate's subject (RFC 4514).
        subject: String,
    },
    /// The signing certificate is a CA certificate (basicConstraints CA:TRUE) that does not
    /// say it signs code.
    #[error(
        "the signing certificate `{subject}` is a CA certificate (CA:TRUE); vouch accepts one as a signer only with a key usage of digitalSignature without keyCertSign (it has: {key_usage}) and an extended key usage that includes code signing (it has {}); sign with a certificate issued for signing (CA:FALSE)",
        if *code_signing { "one" } else { "none" }
    )]
    CertificateIsCa {
        /// The certificate's subject (RFC 4514).
        subject: String,
        /// The key usages it allows.
        key_usage: String,
        /// Whether its extended key usage includes code signing.
        code_signing: bool,
    },
    /// The envelope does not carry an in-toto statement.
    #[error("the envelope's payload type is `{0}`, expected `{IN_TOTO_PAYLOAD_TYPE}`")]
    PayloadType(String),
}

/// Check `bundle`'s DSSE signature against `trust` at time `now`.
///
/// Steps, in order: the payload type is in-toto; the verification material is of the kind
/// `trust` expects; for a key, the bundle's key hint (when present) names this key
/// (model-signing's hex form or sigstore-go's base64 one); for
/// certificates, the signing certificate chains to a trusted authority, is valid at `now`,
/// is not restricted to another extended key usage than code signing, has a key usage that
/// allows digitalSignature when it has one, and has at least one of the two; finally the
/// ECDSA signature verifies over the DSSE pre-authentication encoding of the payload bytes.
pub fn verify_envelope(
    bundle: &Bundle,
    trust: &Trust,
    now: SystemTime,
) -> Result<Verified<SignedPayload>, Error> {
    let env = &bundle.envelope;
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(Error::PayloadType(env.payload_type.clone()));
    }
    let (key, signer) = match (trust, &bundle.material) {
        (Trust::Key(key), Material::PublicKey { hint }) => {
            let given = key.hint();
            if let Some(hint) = hint
                && !key.is_named_by(hint)
            {
                return Err(Error::KeyHintMismatch {
                    bundle: hint.clone(),
                    given,
                });
            }
            (key.clone(), Signer::Key { hint: given })
        }
        (Trust::Certificates(cas), Material::Certificates(chain)) => {
            cas.verify_chain(chain, now)?
        }
        (Trust::Key(_), Material::Certificates(_)) => {
            return Err(Error::MaterialMismatch {
                found: "a certificate",
                wanted: "a public key",
            });
        }
        (Trust::Certificates(_), Material::PublicKey { .. }) => {
            return Err(Error::MaterialMismatch {
                found: "a public key",
                wanted: "certificate authorities",
            });
        }
        (_, _) => {
            return Err(Error::MaterialMismatch {
                found: "unknown material",
                wanted: "a key or certificates",
            });
        }
    };
    key.verify(&env.pae(), &env.signature.sig)?;
    Ok(Verified::new(SignedPayload {
        payload_type: env.payload_type.clone(),
        payload: env.payload.clone(),
        signer,
    }))
}

/// Check a keyless (Sigstore) DSSE bundle, its JSON bytes: the Fulcio certificate chains to
/// `root` and names exactly `identity` and `issuer`, the signature verifies over the DSSE
/// pre-authentication encoding, and the Rekor entry (inclusion proof, signed entry
/// timestamp) and any RFC 3161 timestamps verify against `root`; the certificate must have
/// been valid when the log or the timestamp authority saw the signature. All offline, by
/// `vouch-sigstore` (the sigstore org's `sigstore-verify`).
///
/// The one way to a [`Verified<SignedPayload>`] besides [`verify_envelope`]; the payload is
/// the in-toto statement exactly as signed.
#[cfg(feature = "sigstore")]
pub fn verify_keyless(
    bundle_json: &[u8],
    root: &vouch_sigstore::TrustedRoot,
    identity: &str,
    issuer: &str,
) -> Result<Verified<SignedPayload>, vouch_sigstore::Error> {
    let signer = vouch_sigstore::Signer::Identity {
        identity: identity.to_owned(),
        issuer: issuer.to_owned(),
    };
    verify_keyless_signer(bundle_json, root, &signer)
}

/// Like [`verify_keyless`], for any certificate signer (an exact identity or a pattern).
#[cfg(feature = "sigstore")]
pub fn verify_keyless_signer(
    bundle_json: &[u8],
    root: &vouch_sigstore::TrustedRoot,
    signer: &vouch_sigstore::Signer,
) -> Result<Verified<SignedPayload>, vouch_sigstore::Error> {
    let (identity, issuer) = match signer {
        vouch_sigstore::Signer::Identity { identity, issuer } => {
            (identity.as_str(), issuer.as_str())
        }
        vouch_sigstore::Signer::IdentityPattern { issuer, .. } => ("", issuer.as_str()),
        _ => {
            return Err(vouch_sigstore::Error::WrongMaterial {
                signed_with_key: false,
            });
        }
    };
    let verification = vouch_sigstore::verify_statement(bundle_json, root, signer)?;
    let payload = verification
        .statement()
        .ok_or_else(|| vouch_sigstore::Error::Bundle("no DSSE payload".into()))?
        .to_vec();
    let (identity, issuer) = match verification.signed_by() {
        vouch_sigstore::SignedBy::Certificate { identity, issuer } => {
            (identity.clone(), issuer.clone())
        }
        vouch_sigstore::SignedBy::Key => (identity.to_owned(), issuer.to_owned()),
    };
    Ok(Verified::new(SignedPayload {
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_owned(),
        payload,
        signer: Signer::Keyless {
            identity,
            issuer,
            signed_at: verification.signed_at().map(str::to_owned),
        },
    }))
}
