//! Signing with a local ECDSA key: generate a key pair, load a private key, sign a DSSE
//! payload into a Sigstore bundle.
//!
//! Kept apart from `vouch-trust` on purpose: the init container and the admission webhook
//! verify only, and must not link code that can sign. `cargo tree -p vouch-init` shows
//! this crate absent.

#![forbid(unsafe_code)]

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
};
use base64::Engine as _;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use vouch_bundle::{BUNDLE_V03_MEDIA_TYPE, Bundle, Envelope, Material, Signature};
use vouch_trust::PublicKey;

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The private key file is not usable.
    #[error("cannot read the private key: {0}")]
    Key(String),
    /// The crypto library refused to sign or generate.
    #[error("the cryptographic library failed to {0}")]
    Crypto(&'static str),
}

/// A newly generated key pair, PEM encoded.
#[derive(Debug)]
pub struct GeneratedKey {
    /// PKCS#8 PEM private key.
    pub private_pem: String,
    /// SubjectPublicKeyInfo PEM public key.
    pub public_pem: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Generate an ECDSA P-256 key pair.
pub fn generate_p256() -> Result<GeneratedKey, Error> {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
        .map_err(|_| Error::Crypto("generate a key"))?;
    let private = pair
        .to_pkcs8v1()
        .map_err(|_| Error::Crypto("encode the private key"))?;
    let public = pair
        .public_key()
        .as_der()
        .map_err(|_| Error::Crypto("encode the public key"))?;
    Ok(GeneratedKey {
        private_pem: pem("PRIVATE KEY", private.as_ref()),
        public_pem: pem("PUBLIC KEY", public.as_ref()),
    })
}

/// An ECDSA private key (P-256 or P-384) ready to sign.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Load a PEM private key: PKCS#8 (`PRIVATE KEY`) or SEC 1 (`EC PRIVATE KEY`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        if pem.windows(9).any(|w| w == b"ENCRYPTED") {
            return Err(Error::Key(
                "the key is encrypted; decrypt it first (`openssl pkcs8 -in KEY -out PLAIN.key`)"
                    .into(),
            ));
        }
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| Error::Key(e.to_string()))?;
        let bytes = der.secret_der();
        for alg in [
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &ECDSA_P384_SHA384_ASN1_SIGNING,
        ] {
            if let Ok(pair) = EcdsaKeyPair::from_private_key_der(alg, bytes) {
                let spki = pair
                    .public_key()
                    .as_der()
                    .map_err(|_| Error::Crypto("encode the public key"))?;
                let public = PublicKey::from_spki_der(spki.as_ref())
                    .map_err(|e| Error::Key(e.to_string()))?;
                return Ok(Self { pair, public });
            }
        }
        Err(Error::Key(
            "only ECDSA P-256 and P-384 private keys are supported".into(),
        ))
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Sign raw bytes; returns a DER ECDSA signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), message)
            .map_err(|_| Error::Crypto("sign"))?;
        Ok(sig.as_ref().to_vec())
    }

    /// Sign `payload` as a DSSE envelope and wrap it in a v0.3 bundle that names this key
    /// by its hint (the shape model-signing writes for key signatures).
    pub fn sign_dsse(&self, payload_type: &str, payload: Vec<u8>) -> Result<Bundle, Error> {
        let sig = self.sign(&vouch_bundle::pae(payload_type, &payload))?;
        Ok(Bundle {
            media_type: BUNDLE_V03_MEDIA_TYPE.to_owned(),
            material: Material::PublicKey {
                hint: Some(self.public.hint()),
            },
            envelope: Envelope {
                payload_type: payload_type.to_owned(),
                payload,
                signature: Signature { sig, keyid: None },
            },
            has_transparency: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_trust::{Trust, verify_envelope};

    #[test]
    fn generated_key_signs_and_the_public_half_verifies() {
        let k = generate_p256().unwrap();
        assert!(k.private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let signer = SigningKey::from_pem(k.private_pem.as_bytes()).unwrap();
        let public = PublicKey::from_pem(k.public_pem.as_bytes()).unwrap();
        assert_eq!(public.to_pem(), k.public_pem);
        let bundle = signer
            .sign_dsse(vouch_bundle::IN_TOTO_PAYLOAD_TYPE, b"{}".to_vec())
            .unwrap();
        let reparsed = Bundle::from_json(&bundle.to_json()).unwrap();
        let ok =
            verify_envelope(&reparsed, &Trust::Key(public), std::time::SystemTime::now()).unwrap();
        assert_eq!(ok.get().payload, b"{}");
        let other = PublicKey::from_pem(generate_p256().unwrap().public_pem.as_bytes()).unwrap();
        let err = verify_envelope(&reparsed, &Trust::Key(other), std::time::SystemTime::now())
            .unwrap_err();
        assert!(matches!(err, vouch_trust::Error::KeyHintMismatch { .. }));
    }

    #[test]
    fn refuses_encrypted_and_garbage_keys() {
        assert!(SigningKey::from_pem(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n").is_err());
        assert!(SigningKey::from_pem(b"hello").is_err());
    }
}
