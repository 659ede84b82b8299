//! ECDSA public keys: parsing, the model-signing key hint, signature checks.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ParsedPublicKey};
use base64::Engine as _;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;
use sha2::Digest as _;

use crate::Error;

/// The curves vouch accepts (each with the hash model-signing pairs it with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 with SHA-256.
    P256,
    /// NIST P-384 with SHA-384.
    P384,
}

/// An ECDSA public key.
#[derive(Clone)]
pub struct PublicKey {
    curve: Curve,
    spki: Vec<u8>,
    parsed: std::sync::Arc<ParsedPublicKey>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("curve", &self.curve)
            .field("hint", &self.hint())
            .finish()
    }
}

impl PublicKey {
    /// Parse a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem)
            .map_err(|e| Error::KeyPem(e.to_string()))?;
        Self::from_spki_der(der.as_ref())
    }

    /// Parse a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        for (curve, alg) in [
            (Curve::P256, &ECDSA_P256_SHA256_ASN1),
            (Curve::P384, &ECDSA_P384_SHA384_ASN1),
        ] {
            if let Ok(parsed) = ParsedPublicKey::new(alg, der) {
                return Ok(Self {
                    curve,
                    spki: der.to_vec(),
                    parsed: std::sync::Arc::new(parsed),
                });
            }
        }
        Err(Error::UnsupportedKey)
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key as PEM text, encoded the way OpenSSL and Python `cryptography` encode it.
    pub fn to_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.spki);
        let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END PUBLIC KEY-----\n");
        out
    }

    /// model-signing's key hint: hex SHA-256 of the canonical PEM text.
    pub fn hint(&self) -> String {
        hex::encode(sha2::Sha256::digest(self.to_pem().as_bytes()))
    }

    /// Check a DER ECDSA signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        self.parsed
            .verify_sig(message, signature)
            .map_err(|_| Error::BadSignature)
    }
}
