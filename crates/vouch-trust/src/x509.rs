//! X.509 certificate chains (model-signing's "certificate" mode), validated by webpki.

use std::time::SystemTime;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::Digest as _;
use webpki::EndEntityCert;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::oid::db::rfc5280::{
    ID_CE_BASIC_CONSTRAINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME,
    ID_KP_CODE_SIGNING,
};
use x509_cert::der::{Decode as _, Encode as _, EncodeValue as _};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::{Error, PublicKey, Signer, rfc3339};

/// DER contents of the id-kp-codeSigning OID (1.3.6.1.5.5.7.3.3).
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// At most this many intermediates between a CA:TRUE signing certificate and the trust
/// anchor (webpki allows six as well).
const MAX_INTERMEDIATES: usize = 6;

/// Extensions vouch understands when one is marked critical on the path of a CA:TRUE signing
/// certificate; any other critical extension (name or policy constraints, ...) refuses it.
const KNOWN_CRITICAL: &[ObjectIdentifier] = &[
    ID_CE_BASIC_CONSTRAINTS,
    ID_CE_KEY_USAGE,
    ID_CE_EXT_KEY_USAGE,
    ID_CE_SUBJECT_ALT_NAME,
];

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
    ///
    /// A signing certificate marked CA:TRUE is accepted only when it says it signs code
    /// ([`check_ca_leaf_usage`]); webpki refuses every such certificate, so its path is
    /// then checked by [`CertificateAuthorities::verify_ca_leaf_path`].
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
        let parsed = x509_cert::Certificate::from_der(leaf)
            .map_err(|e| untrusted(&format!("malformed certificate: {e}")))?;
        let checked = ee
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &intermediates,
                time,
                webpki::KeyUsage::required_if_present(CODE_SIGNING),
                None,
                None,
            )
            .map(|_| ());
        match checked {
            // webpki never accepts a CA certificate as the signer, but model-signing's own
            // certificate-mode test data signs with one that says it signs code.
            Err(webpki::Error::CaUsedAsEndEntity) => {
                check_ca_leaf_usage(&parsed)?;
                self.verify_ca_leaf_path(&parsed, rest, secs)?;
            }
            other => other.map_err(webpki_error)?,
        }
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

    /// The path of a CA:TRUE signing certificate `leaf` (whose usage
    /// [`check_ca_leaf_usage`] accepted) to a trust anchor, with the checks webpki makes on
    /// a path (RFC 5280 section 6.1) and no more leniency: every certificate valid at `secs`,
    /// each signed by the next (names chained, signature algorithm consistent), each issuer
    /// CA:TRUE within its pathLenConstraint and allowed keyCertSign when it has a KeyUsage,
    /// an ExtendedKeyUsage anywhere on the path includes code signing, no critical
    /// extension other than those in [`KNOWN_CRITICAL`] (so no name constraints), at most
    /// [`MAX_INTERMEDIATES`] intermediates. Intermediates come from `candidates` (the
    /// bundle's chain); the first one that fits is taken, without backtracking, so an
    /// ambiguous chain fails closed.
    fn verify_ca_leaf_path(
        &self,
        leaf: &x509_cert::Certificate,
        candidates: &[Vec<u8>],
        secs: u64,
    ) -> Result<(), Error> {
        let untrusted = |m: String| Error::CertificateUntrusted(m);
        let anchors = self
            .certs
            .iter()
            .map(|c| x509_cert::Certificate::from_der(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| untrusted(format!("malformed trust anchor: {e}")))?;
        let candidates = candidates
            .iter()
            .map(|c| x509_cert::Certificate::from_der(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| untrusted(format!("malformed certificate in the chain: {e}")))?;
        check_path_certificate(leaf, secs)?;
        let mut used: Vec<usize> = Vec::new();
        let mut current = leaf;
        loop {
            let issuer = &current.tbs_certificate.issuer;
            if anchors.iter().any(|a| {
                a.tbs_certificate.subject == *issuer
                    && signed_by(current, &a.tbs_certificate.subject_public_key_info)
            }) {
                return Ok(());
            }
            if used.len() >= MAX_INTERMEDIATES {
                return Err(untrusted(format!(
                    "more than {MAX_INTERMEDIATES} intermediate certificates"
                )));
            }
            let next = candidates.iter().enumerate().find(|(i, c)| {
                !used.contains(i)
                    && c.tbs_certificate.subject == *issuer
                    && signed_by(current, &c.tbs_certificate.subject_public_key_info)
            });
            let Some((i, next)) = next else {
                return Err(webpki_error(webpki::Error::UnknownIssuer));
            };
            check_path_certificate(next, secs)?;
            check_issuer(next, used.len())?;
            used.push(i);
            current = next;
        }
    }
}

/// What every certificate on a CA:TRUE signing certificate's path must satisfy: valid at
/// `secs`, no unknown critical extension, an ExtendedKeyUsage (if any) with code signing.
fn check_path_certificate(cert: &x509_cert::Certificate, secs: u64) -> Result<(), Error> {
    let untrusted = |m: String| Error::CertificateUntrusted(m);
    let validity = &cert.tbs_certificate.validity;
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    if secs < not_before {
        return Err(Error::CertificateNotYetValid {
            time: rfc3339(secs),
            not_before: rfc3339(not_before),
        });
    }
    if secs > not_after {
        return Err(Error::CertificateExpired {
            time: rfc3339(secs),
            not_after: rfc3339(not_after),
        });
    }
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.critical && !KNOWN_CRITICAL.contains(&ext.extn_id) {
            return Err(untrusted(format!(
                "`{}` has a critical extension vouch does not check ({})",
                subject_of(cert),
                ext.extn_id
            )));
        }
    }
    let eku = cert
        .tbs_certificate
        .get::<ExtendedKeyUsage>()
        .map_err(|e| untrusted(format!("malformed certificate extension: {e}")))?;
    if let Some((_, eku)) = eku
        && !eku.0.contains(&ID_KP_CODE_SIGNING)
    {
        return Err(untrusted(format!(
            "the extended key usage of `{}` does not include code signing",
            subject_of(cert)
        )));
    }
    Ok(())
}

/// An issuer on a CA:TRUE signing certificate's path, with `below` intermediates between
/// it and the signing certificate: CA:TRUE, pathLenConstraint >= `below`, keyCertSign
/// when it has a KeyUsage.
fn check_issuer(cert: &x509_cert::Certificate, below: usize) -> Result<(), Error> {
    let untrusted = |m: String| Error::CertificateUntrusted(m);
    let malformed = |e: x509_cert::der::Error| untrusted(format!("malformed extension: {e}"));
    let subject = subject_of(cert);
    let constraints = cert
        .tbs_certificate
        .get::<BasicConstraints>()
        .map_err(malformed)?
        .map(|(_, bc)| bc);
    match constraints {
        Some(bc) if bc.ca => {
            if let Some(len) = bc.path_len_constraint
                && usize::from(len) < below
            {
                return Err(untrusted(format!(
                    "`{subject}` allows {len} intermediates below it, the chain has {below}"
                )));
            }
        }
        _ => {
            return Err(untrusted(format!(
                "`{subject}` issued a certificate of the chain but is not a CA certificate"
            )));
        }
    }
    let key_usage = cert.tbs_certificate.get::<KeyUsage>().map_err(malformed)?;
    if let Some((_, ku)) = key_usage
        && !ku.key_cert_sign()
    {
        return Err(untrusted(format!(
            "`{subject}` issued a certificate of the chain but its key usage does not allow keyCertSign"
        )));
    }
    Ok(())
}

/// Whether `cert`'s signature verifies with `issuer_key`, by one of webpki's algorithms
/// (the same set the rest of the chain is checked with). The signed bytes are the
/// to-be-signed part as parsed (x509-cert decodes DER only, so it encodes back to the
/// signed bytes), and both signature algorithm fields must agree (RFC 5280 4.1.1.2).
fn signed_by(cert: &x509_cert::Certificate, issuer_key: &SubjectPublicKeyInfoOwned) -> bool {
    if cert.signature_algorithm != cert.tbs_certificate.signature {
        return false;
    }
    let mut signature_alg = Vec::new();
    let mut key_alg = Vec::new();
    if cert
        .signature_algorithm
        .encode_value(&mut signature_alg)
        .is_err()
        || issuer_key.algorithm.encode_value(&mut key_alg).is_err()
    {
        return false;
    }
    let (Ok(tbs), Some(key), Some(signature)) = (
        cert.tbs_certificate.to_der(),
        issuer_key.subject_public_key.as_bytes(),
        cert.signature.as_bytes(),
    ) else {
        return false;
    };
    webpki::ALL_VERIFICATION_ALGS.iter().any(|alg| {
        alg.signature_alg_id().as_ref() == signature_alg.as_slice()
            && alg.public_key_alg_id().as_ref() == key_alg.as_slice()
            && alg.verify_signature(key, &tbs, signature).is_ok()
    })
}

/// A signing certificate marked CA:TRUE is accepted only when it says it signs code and
/// nothing else a CA does: a KeyUsage with digitalSignature and without keyCertSign, and
/// an ExtendedKeyUsage with code signing.
fn check_ca_leaf_usage(cert: &x509_cert::Certificate) -> Result<(), Error> {
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
    let usage_ok = key_usage
        .as_ref()
        .is_some_and(|ku| ku.digital_signature() && !ku.key_cert_sign());
    if usage_ok && code_signing {
        return Ok(());
    }
    Err(Error::CertificateIsCa {
        subject: subject_of(cert),
        key_usage: key_usage.map_or_else(|| "no key usage".to_owned(), |ku| key_usage_names(&ku)),
        code_signing,
    })
}

/// The message for a chain webpki refused.
fn webpki_error(e: webpki::Error) -> Error {
    let untrusted = |m: &str| Error::CertificateUntrusted(m.to_owned());
    match e {
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

/// Signing certificates marked CA:TRUE (`testdata/oms/ca-leaf`, made by
/// `scripts/make-ca-leaf-fixtures`; model-signing's own test data signs with one).
#[cfg(test)]
mod ca_leaf_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::{Duration, SystemTime};

    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use x509_cert::der::Decode as _;

    use super::CertificateAuthorities;
    use crate::{Error, Signer};

    fn pem(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/oms/ca-leaf")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn der(name: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(&pem(name)).unwrap().to_vec()
    }

    /// An hour after `leaf`'s notBefore, when every fixture is valid.
    fn when(leaf: &[u8]) -> SystemTime {
        let cert = x509_cert::Certificate::from_der(leaf).unwrap();
        SystemTime::UNIX_EPOCH
            + cert.tbs_certificate.validity.not_before.to_unix_duration()
            + Duration::from_secs(3600)
    }

    fn check_chain(chain: &[Vec<u8>], anchors: &str) -> Result<Signer, Error> {
        let cas = CertificateAuthorities::from_pem(&pem(anchors)).unwrap();
        cas.verify_chain(chain, when(&chain[0]))
            .map(|(_, signer)| signer)
    }

    fn check(leaf: &str) -> Result<Signer, Error> {
        check_chain(&[der(leaf), der("intermediate.pem")], "ca.pem")
    }

    #[test]
    fn ca_leaf_that_says_it_signs_code_is_accepted() {
        let signer = check("leaf-ca-code-signing.pem").unwrap();
        assert!(
            matches!(signer, Signer::Certificate { ref identities, .. }
                if identities == &["https://ci.example.com/vouch/ca-leaf".to_owned()]),
            "{signer:?}"
        );
    }

    #[test]
    fn plain_ca_certificate_as_signer_is_refused() {
        let err = check("leaf-ca-cert-sign.pem").unwrap_err();
        assert!(
            matches!(&err, Error::CertificateIsCa { key_usage, code_signing: false, .. }
                if key_usage == "keyCertSign, cRLSign"),
            "{err:?}"
        );
        assert!(err.to_string().contains("CA:TRUE"), "{err}");
    }

    #[test]
    fn ca_leaf_without_extended_key_usage_is_refused() {
        let err = check("leaf-ca-no-eku.pem").unwrap_err();
        assert!(
            matches!(
                err,
                Error::CertificateIsCa {
                    code_signing: false,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn ca_leaf_without_key_usage_is_refused() {
        let err = check("leaf-ca-no-key-usage.pem").unwrap_err();
        assert!(
            matches!(&err, Error::CertificateIsCa { key_usage, code_signing: true, .. }
                if key_usage == "no key usage"),
            "{err:?}"
        );
    }

    #[test]
    fn ca_leaf_that_may_also_issue_certificates_is_refused() {
        let err = check("leaf-ca-code-and-cert-sign.pem").unwrap_err();
        assert!(
            matches!(&err, Error::CertificateIsCa { key_usage, code_signing: true, .. }
                if key_usage.contains("keyCertSign")),
            "{err:?}"
        );
    }

    #[test]
    fn ca_leaf_under_another_root_is_refused() {
        // The fixture root of testdata/oms is not the ca-leaf root.
        let cas = CertificateAuthorities::from_pem(
            &std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/oms/ca.pem"),
            )
            .unwrap(),
        )
        .unwrap();
        let chain = [der("leaf-ca-code-signing.pem"), der("intermediate.pem")];
        let err = cas.verify_chain(&chain, when(&chain[0])).unwrap_err();
        assert!(err.to_string().contains("does not chain"), "{err}");
    }

    #[test]
    fn ca_leaf_without_its_intermediate_is_refused() {
        let err = check_chain(&[der("leaf-ca-code-signing.pem")], "ca.pem").unwrap_err();
        assert!(err.to_string().contains("does not chain"), "{err}");
    }

    #[test]
    fn ca_leaf_is_refused_when_expired_or_not_yet_valid() {
        let leaf = der("leaf-ca-code-signing.pem");
        let cas = CertificateAuthorities::from_pem(&pem("ca.pem")).unwrap();
        let chain = [leaf.clone(), der("intermediate.pem")];
        let cert = x509_cert::Certificate::from_der(&leaf).unwrap();
        let validity = &cert.tbs_certificate.validity;
        let before = SystemTime::UNIX_EPOCH + validity.not_before.to_unix_duration()
            - Duration::from_secs(60);
        let after = SystemTime::UNIX_EPOCH
            + validity.not_after.to_unix_duration()
            + Duration::from_secs(60);
        let err = cas.verify_chain(&chain, before).unwrap_err();
        assert!(
            matches!(err, Error::CertificateNotYetValid { .. }),
            "{err:?}"
        );
        let err = cas.verify_chain(&chain, after).unwrap_err();
        assert!(matches!(err, Error::CertificateExpired { .. }), "{err:?}");
    }

    #[test]
    fn ca_leaf_signed_by_someone_else_is_refused() {
        // The same leaf bytes with one signature byte changed.
        let mut leaf = der("leaf-ca-code-signing.pem");
        let last = leaf.len() - 1;
        leaf[last] ^= 0x01;
        let err = check_chain(&[leaf, der("intermediate.pem")], "ca.pem").unwrap_err();
        assert!(err.to_string().contains("does not chain"), "{err}");
    }

    #[test]
    fn intermediate_used_as_signer_is_still_refused() {
        // A real CA (keyCertSign, no code signing) presented as the signing certificate.
        let err = check_chain(&[der("intermediate.pem")], "ca.pem").unwrap_err();
        assert!(matches!(err, Error::CertificateIsCa { .. }), "{err:?}");
    }
}
