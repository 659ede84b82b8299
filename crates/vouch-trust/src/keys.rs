//! ECDSA public keys: parsing, the model-signing key hint, signature checks.

use aws_lc_rs::encoding::{AsDer as _, PublicKeyX509Der};
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
    /// The canonical SubjectPublicKeyInfo: named curve, uncompressed point.
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

    /// Parse a DER SubjectPublicKeyInfo. The EC point may be compressed or uncompressed;
    /// either way the key is kept (and hinted) in its canonical, uncompressed form.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        for (curve, alg) in [
            (Curve::P256, &ECDSA_P256_SHA256_ASN1),
            (Curve::P384, &ECDSA_P384_SHA384_ASN1),
        ] {
            if let Ok(parsed) = ParsedPublicKey::new(alg, der) {
                // AWS-LC re-encodes the parsed key as RFC 5480 SPKI with the point
                // uncompressed, as OpenSSL (and so Python `cryptography`) does.
                let canonical: PublicKeyX509Der<'static> =
                    parsed.as_der().map_err(|_| Error::UnsupportedKey)?;
                return Ok(Self {
                    curve,
                    spki: canonical.as_ref().to_vec(),
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

    /// The canonical DER SubjectPublicKeyInfo (named curve, uncompressed point), whatever
    /// encoding the key was read from.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key as PEM text, encoded the way OpenSSL and Python `cryptography` encode it
    /// (`public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)`): the canonical
    /// SPKI, base64 in 64-column lines, a trailing newline.
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

    /// model-signing's key hint: hex SHA-256 of the canonical PEM text. It does not depend
    /// on how the key file encodes the point.
    pub fn hint(&self) -> String {
        hex::encode(sha2::Sha256::digest(self.to_pem().as_bytes()))
    }

    /// The key hint sigstore-go (so cosign v3) writes in key-signed bundles: base64 of the
    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn sigstore_hint(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&self.spki))
    }

    /// Whether a bundle's key hint names this key, in either form ([`Self::hint`],
    /// [`Self::sigstore_hint`]). A hint only picks a key; the signature decides.
    pub fn is_named_by(&self, hint: &str) -> bool {
        hint.eq_ignore_ascii_case(&self.hint()) || hint == self.sigstore_hint()
    }

    /// Check a DER ECDSA signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        self.parsed
            .verify_sig(message, signature)
            .map_err(|_| Error::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use aws_lc_rs::encoding::{AsBigEndian as _, EcPublicKeyCompressedBin};
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
        EcdsaSigningAlgorithm, KeyPair as _,
    };

    use super::{Curve, PublicKey};

    fn testdata(path: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata")
                .join(path),
        )
        .unwrap()
    }

    /// DER TLV with a short-form length.
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, u8::try_from(body.len()).unwrap()];
        out.extend_from_slice(body);
        out
    }

    /// An RFC 5480 SubjectPublicKeyInfo around an encoded EC point.
    fn spki(curve_oid: &[u8], point: &[u8]) -> Vec<u8> {
        const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        let algorithm = [tlv(0x06, EC_PUBLIC_KEY), tlv(0x06, curve_oid)].concat();
        let bits = [&[0u8][..], point].concat();
        tlv(0x30, &[tlv(0x30, &algorithm), tlv(0x03, &bits)].concat())
    }

    #[test]
    fn compressed_fixture_key_has_the_uncompressed_keys_pem_and_hint() {
        let plain = PublicKey::from_pem(&testdata("keys/release.pub")).unwrap();
        let compressed = PublicKey::from_pem(&testdata("oms/release-compressed.pub")).unwrap();
        assert_eq!(compressed.curve(), Curve::P256);
        // release.pub was written by OpenSSL, so it is the canonical text itself.
        let release_pub = String::from_utf8(testdata("keys/release.pub")).unwrap();
        assert_eq!(plain.to_pem(), release_pub);
        assert_eq!(compressed.to_pem(), release_pub);
        assert_eq!(compressed.hint(), plain.hint());
        // `openssl pkey -pubin -in release.pub -outform DER | openssl dgst -sha256 -binary | base64`
        let sigstore = "HSrlUUsDcmUtgcYeNMzIb7UmJpzRqukIl6eEpeKHSEk=";
        assert_eq!(plain.sigstore_hint(), sigstore);
        assert!(compressed.is_named_by(sigstore) && plain.is_named_by(&plain.hint()));
        assert!(!plain.is_named_by(&sigstore.to_lowercase()));
        assert_eq!(compressed.spki_der(), plain.spki_der());
        assert_eq!(compressed.spki_der().len(), 91, "uncompressed P-256 SPKI");
    }

    fn round_trip(alg: &'static EcdsaSigningAlgorithm, curve_oid: &[u8], curve: Curve) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap();
        let uncompressed = pair.public_key().as_ref().to_vec();
        assert_eq!(uncompressed[0], 0x04);
        let compressed: EcPublicKeyCompressedBin = pair.public_key().as_be_bytes().unwrap();
        assert!(matches!(compressed.as_ref()[0], 0x02 | 0x03));

        let from_compressed =
            PublicKey::from_spki_der(&spki(curve_oid, compressed.as_ref())).unwrap();
        let from_uncompressed = PublicKey::from_spki_der(&spki(curve_oid, &uncompressed)).unwrap();
        assert_eq!(from_compressed.curve(), curve);
        assert_eq!(from_compressed.spki_der(), from_uncompressed.spki_der());
        assert_eq!(from_compressed.to_pem(), from_uncompressed.to_pem());
        assert_eq!(from_compressed.hint(), from_uncompressed.hint());
        // The canonical SPKI ends with the uncompressed point.
        assert!(from_compressed.spki_der().ends_with(&uncompressed));
        let pem = from_compressed.to_pem();
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\n")
                && pem.ends_with("-----END PUBLIC KEY-----\n")
        );
        assert!(pem.lines().all(|l| l.len() <= 64));

        // The compressed key verifies signatures, and only its own.
        let message = b"vouch: compressed keys verify";
        let sig = pair.sign(&rng, message).unwrap();
        from_compressed.verify(message, sig.as_ref()).unwrap();
        assert!(
            from_compressed
                .verify(b"another message", sig.as_ref())
                .is_err()
        );
    }

    #[test]
    fn p256_compressed_and_uncompressed_are_the_same_key() {
        round_trip(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            Curve::P256,
        );
    }

    #[test]
    fn p384_compressed_and_uncompressed_are_the_same_key() {
        round_trip(
            &ECDSA_P384_SHA384_ASN1_SIGNING,
            &[0x2b, 0x81, 0x04, 0x00, 0x22],
            Curve::P384,
        );
    }
}
