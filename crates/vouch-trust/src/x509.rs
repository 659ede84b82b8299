//! X.509 certificate chains (model-signing's "certificate" mode), validated by webpki.

use std::time::SystemTime;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::Digest as _;
use webpki::{EndEntityCert, KeyUsage};

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

    /// Validate `chain` (signing certificate first, then intermediates) at `now` and return
    /// the signing key.
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
            KeyUsage::required_if_present(CODE_SIGNING),
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
        let key = PublicKey::from_spki_der(ee.subject_public_key_info().as_ref())?;
        let identities = ee.valid_uri_names().map(str::to_owned).collect();
        let not_after = not_after_of(leaf).map_or_else(|| "unknown".into(), rfc3339);
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

/// notAfter of a DER certificate, read by probing webpki at the edge of validity is not
/// possible, so parse the validity field directly: TBSCertificate's fifth element.
fn not_after_of(der: &[u8]) -> Option<u64> {
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&len0, rest) = rest.split_first()?;
        let (len, rest) = if len0 < 0x80 {
            (usize::from(len0), rest)
        } else {
            let n = usize::from(len0 & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (lb, rest) = rest.split_at(n);
            (
                lb.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)),
                rest,
            )
        };
        if rest.len() < len {
            return None;
        }
        let (body, after) = rest.split_at(len);
        Some((tag, body, after))
    }
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut cur = tbs;
    let (tag, _, rest) = tlv(cur)?;
    if tag == 0xa0 {
        cur = rest; // explicit version
    }
    for _ in 0..3 {
        cur = tlv(cur)?.2; // serial, signature algorithm, issuer
    }
    let (_, validity, _) = tlv(cur)?;
    let (_, _, rest) = tlv(validity)?;
    let (tag, t, _) = tlv(rest)?;
    parse_time(tag, std::str::from_utf8(t).ok()?)
}

fn parse_time(tag: u8, s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = s.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let n = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (mo, d, h, mi, se) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    // days_from_civil
    let y = if mo <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_utc_and_generalized_time() {
        assert_eq!(super::parse_time(0x17, "000229000000Z"), Some(951_782_400));
        assert_eq!(
            super::parse_time(0x18, "20000229000000Z"),
            Some(951_782_400)
        );
        assert_eq!(super::parse_time(0x17, "991231235959Z"), Some(946_684_799));
    }
}
