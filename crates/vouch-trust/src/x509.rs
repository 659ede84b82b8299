//! X.509 certificate chains (model-signing's "certificate" mode), validated by webpki.

use std::time::SystemTime;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::Digest as _;
use webpki::EndEntityCert;
use x509_cert::der::Decode as _;
use x509_cert::der::oid::db::rfc5280::ID_KP_CODE_SIGNING;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};

use crate::{Error, PublicKey, Signer, rfc3339};

/// DER contents of the id-kp-codeSigning OID (1.3.6.1.5.5.7.3.3).
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// Certificates whose keys are trusted to issue signing certificates.
#[derive(Debug, Clone)]
pub struct CertificateAuthorities {
    certs: Vec<CertificateDer<'static>>,
}

impl CertificateAuthorities {
    /// Read one or more PEM certificates (a root, or a root with intermediates).
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::CertificatePem(e.to_string()))?;
        if certs.is_empty() {
            return Err(Error::CertificatePem(
                "no `-----BEGIN CERTIFICATE-----` block found".into(),
            ));
        }
        for c in &certs {
            webpki::anchor_from_trusted_cert(c)
                .map_err(|e| Error::CertificatePem(format!("{e:?}")))?;
        }
        Ok(Self { certs })
    }

    /// Validate `chain` (signing certificate first, then intermediates) at `now`, check that
    /// the signing certificate may sign (see [`check_signing_usage`]) and return its key.
    pub(crate) fn verify_chain(
        &self,
        chain: &[Vec<u8>],
        now: SystemTime,
    ) -> Result<(PublicKey, Signer), Error> {
        let untrusted = |m: &str| Error::CertificateUntrusted(m.to_owned());
        let (leaf, rest) = chain
            .split_first()
            .ok_or_else(|| untrusted("the bundle has no certificate"))?;
        let leaf_der = CertificateDer::from(leaf.as_slice());
        let ee = EndEntityCert::try_from(&leaf_der)
            .map_err(|e| untrusted(&format!("malformed certificate: {e}")))?;
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let anchors = self
            .certs
            .iter()
            .map(webpki::anchor_from_trusted_cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| untrusted(&format!("{e}")))?;
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            time,
            webpki::KeyUsage::required_if_present(CODE_SIGNING),
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::CertExpired { time, not_after } => Error::CertificateExpired {
                time: rfc3339(time.as_secs()),
                not_after: rfc3339(not_after.as_secs()),
            },
            webpki::Error::CertNotValidYet { time, not_before } => Error::CertificateNotYetValid {
                time: rfc3339(time.as_secs()),
                not_before: rfc3339(not_before.as_secs()),
            },
            webpki::Error::UnknownIssuer => untrusted(
                "it does not chain to any certificate in the given `--certificate-chain` file",
            ),
            webpki::Error::RequiredEkuNotFoundContext(_) => {
                untrusted("its extended key usage does not include code signing")
            }
            other => untrusted(&format!("{other}")),
        })?;
        let parsed = x509_cert::Certificate::from_der(leaf)
            .map_err(|e| untrusted(&format!("malformed certificate: {e}")))?;
        check_signing_usage(&parsed)?;
        let key = PublicKey::from_spki_der(ee.subject_public_key_info().as_ref())?;
        let identities = ee.valid_uri_names().map(str::to_owned).collect();
        let not_after = rfc3339(
            parsed
                .tbs_certificate
                .validity
                .not_after
                .to_unix_duration()
                .as_secs(),
        );
        let fingerprint = hex::encode(sha2::Sha256::digest(leaf));
        Ok((
            key,
            Signer::Certificate {
                identities,
                fingerprint,
                not_after,
            },
        ))
    }
}

/// The signing certificate's subject, for messages.
fn subject_of(cert: &x509_cert::Certificate) -> String {
    let subject = &cert.tbs_certificate.subject;
    if subject.is_empty() {
        "(empty subject)".to_owned()
    } else {
        subject.to_string()
    }
}

/// RFC 5280 names of the bits set in a KeyUsage.
fn key_usage_names(usage: &KeyUsage) -> String {
    let names: Vec<&str> = usage
        .0
        .into_iter()
        .map(|bit| match bit {
            KeyUsages::DigitalSignature => "digitalSignature",
            KeyUsages::NonRepudiation => "nonRepudiation",
            KeyUsages::KeyEncipherment => "keyEncipherment",
            KeyUsages::DataEncipherment => "dataEncipherment",
            KeyUsages::KeyAgreement => "keyAgreement",
            KeyUsages::KeyCertSign => "keyCertSign",
            KeyUsages::CRLSign => "cRLSign",
            KeyUsages::EncipherOnly => "encipherOnly",
            KeyUsages::DecipherOnly => "decipherOnly",
        })
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The signing certificate must be meant for signatures: a KeyUsage, when present, must
/// allow digitalSignature, and at least one of KeyUsage (digitalSignature) or
/// ExtendedKeyUsage (code signing) must be present. (An ExtendedKeyUsage without code
/// signing is refused earlier, by webpki.) model-signing 1.1.1 accepts a certificate when
/// either allows signing; vouch also refuses a KeyUsage that excludes digitalSignature.
fn check_signing_usage(cert: &x509_cert::Certificate) -> Result<(), Error> {
    let malformed = |e: x509_cert::der::Error| {
        Error::CertificateUntrusted(format!("malformed certificate extension: {e}"))
    };
    let key_usage = cert
        .tbs_certificate
        .get::<KeyUsage>()
        .map_err(malformed)?
        .map(|(_, ku)| ku);
    let code_signing = cert
        .tbs_certificate
        .get::<ExtendedKeyUsage>()
        .map_err(malformed)?
        .is_some_and(|(_, eku)| eku.0.contains(&ID_KP_CODE_SIGNING));
    match key_usage {
        Some(ku) if !ku.digital_signature() => Err(Error::CertificateKeyUsage {
            subject: subject_of(cert),
            key_usage: key_usage_names(&ku),
        }),
        Some(_) => Ok(()),
        None if code_signing => Ok(()),
        None => Err(Error::CertificateNoUsage {
            subject: subject_of(cert),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::{Duration, SystemTime};

    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use super::CertificateAuthorities;
    use crate::{Error, Signer};

    fn testdata(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/oms")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The leaf `name`, with the fixture intermediate, checked against the fixture root at
    /// a time when the fixture certificates are valid.
    fn check(name: &str) -> Result<Signer, Error> {
        let leaf = CertificateDer::from_pem_slice(&testdata(name)).unwrap();
        let chain = CertificateDer::pem_slice_iter(&testdata("chain.pem"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        // chain.pem holds the intermediate, then the root.
        let intermediate = chain.first().unwrap().to_vec();
        let cas = CertificateAuthorities::from_pem(&testdata("ca.pem")).unwrap();
        let leaf_cert = x509_cert::Certificate::from_der(leaf.as_ref()).unwrap();
        let not_before = leaf_cert
            .tbs_certificate
            .validity
            .not_before
            .to_unix_duration();
        let when = SystemTime::UNIX_EPOCH + not_before + Duration::from_secs(3600);
        cas.verify_chain(&[leaf.to_vec(), intermediate], when)
            .map(|(_, signer)| signer)
    }

    use x509_cert::der::Decode as _;

    #[test]
    fn code_signing_leaf_with_digital_signature_is_accepted() {
        let signer = check("leaf.pem").unwrap();
        assert!(
            matches!(signer, Signer::Certificate { ref identities, .. } if !identities.is_empty()),
            "{signer:?}"
        );
    }

    #[test]
    fn key_usage_without_digital_signature_is_refused() {
        let err = check("leaf-key-encipherment.pem").unwrap_err();
        match &err {
            Error::CertificateKeyUsage { subject, key_usage } => {
                assert!(subject.contains("CN="), "{subject}");
                assert_eq!(key_usage, "keyEncipherment");
            }
            other => panic!("unexpected: {other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("cannot be used for signing"), "{msg}");
        assert!(msg.contains("digitalSignature"), "{msg}");
    }

    #[test]
    fn leaf_without_key_usage_or_extended_key_usage_is_refused() {
        let err = check("leaf-no-usage.pem").unwrap_err();
        assert!(
            matches!(err, Error::CertificateNoUsage { ref subject } if subject.contains("CN=")),
            "{err}"
        );
        assert!(err.to_string().contains("neither"), "{err}");
    }

    #[test]
    fn extended_key_usage_without_code_signing_is_refused() {
        let err = check("leaf-server-auth.pem").unwrap_err();
        assert!(err.to_string().contains("code signing"), "{err}");
    }
}
