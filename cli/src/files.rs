//! Reading inputs with size limits and writing outputs atomically.

use std::io::{Read as _, Write as _};
use std::path::Path;

use crate::failure::{Failure, Result};

/// Largest signature, key or certificate file vouch reads.
pub const MAX_INPUT: u64 = 256 << 20;

/// Read a whole (small) input file. A regular file larger than [`MAX_INPUT`] is refused
/// before anything is read; for other files (pipes) reading stops just past the limit.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::undecided(format!("cannot open {what} `{}`: {e}", path.display())))?;
    let meta = file
        .metadata()
        .map_err(|e| Failure::undecided(format!("cannot read {what} `{}`: {e}", path.display())))?;
    if meta.is_file() && meta.len() > MAX_INPUT {
        return Err(too_large(path, what));
    }
    let capacity = if meta.is_file() {
        usize::try_from(meta.len()).unwrap_or(0)
    } else {
        0
    };
    let mut out = Vec::with_capacity(capacity);
    file.take(MAX_INPUT + 1)
        .read_to_end(&mut out)
        .map_err(|e| Failure::undecided(format!("cannot read {what} `{}`: {e}", path.display())))?;
    if out.len() as u64 > MAX_INPUT {
        return Err(too_large(path, what));
    }
    Ok(out)
}

/// What a bundle file is for, and the command that writes a good one (for hints).
#[derive(Debug, Clone, Copy)]
pub enum BundleUse {
    /// An OMS model signature (`vouch model verify --signature`).
    Signature,
    /// A combined attestation (`vouch verify --attestation`, `vouch inspect`, ...).
    Attestation,
    /// Any Sigstore bundle (`vouch verify-bundle --bundle`).
    Bundle,
}

impl BundleUse {
    fn what(self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::Attestation => "attestation",
            Self::Bundle => "bundle",
        }
    }

    fn remedy(self) -> &'static str {
        match self {
            Self::Signature => {
                "sign the model: `vouch model sign MODEL_DIR --key KEY` writes `MODEL_DIR/model.sig`; pass that file with `--signature`"
            }
            Self::Attestation => {
                "`vouch attest ... --output FILE` writes one; or verify the one in the registry with `--image REF@sha256:HEX` instead of a file"
            }
            Self::Bundle => {
                "pass the `.sigstore.json` file the signer wrote (`vouch sign-bundle --bundle FILE`, `cosign sign-blob --bundle FILE`)"
            }
        }
    }
}

/// Read a Sigstore bundle file: an empty file, a file that is not JSON and JSON that is
/// not a bundle are refused here, saying what the file is and what was expected.
pub fn read_bundle(path: &Path, purpose: BundleUse) -> Result<Vec<u8>> {
    let what = purpose.what();
    let bytes = read(path, what)?;
    let shown = path.display();
    let expected = "a Sigstore bundle: a JSON object with `mediaType`, `verificationMaterial` and `dsseEnvelope`";
    let refuse = |m: String| {
        let reason = crate::failure::Reason::new("bundle", &m).file(path.display());
        Err(Failure::rejected(m)
            .code("bundle")
            .quiet_reason(reason)
            .hint(purpose.remedy()))
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return refuse(format!(
            "the {what} file `{shown}` is empty; expected {expected}"
        ));
    }
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return refuse(format!(
                "the {what} file `{shown}` is not JSON (line {}, column {}); expected {expected}",
                e.line(),
                e.column()
            ));
        }
    };
    let Some(object) = value.as_object() else {
        return refuse(format!(
            "the {what} file `{shown}` is JSON but not an object; expected {expected}"
        ));
    };
    if !object.contains_key("mediaType") {
        let fields: Vec<String> = object.keys().take(5).map(|k| format!("`{k}`")).collect();
        let has = if fields.is_empty() {
            "it is an empty object".to_owned()
        } else {
            format!("it has {} but no `mediaType`", fields.join(", "))
        };
        return refuse(format!(
            "the {what} file `{shown}` is JSON but not a Sigstore bundle ({has}); expected {expected}"
        ));
    }
    Ok(bytes)
}

/// What a PEM file holds, from its `-----BEGIN ...-----` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemHolds {
    PublicKey,
    PrivateKey,
    Certificate,
    /// No PEM block at all.
    NotPem,
    /// Some other label.
    Other,
}

pub fn pem_holds(bytes: &[u8]) -> PemHolds {
    let text = String::from_utf8_lossy(bytes);
    let Some(begin) = text.find("-----BEGIN ") else {
        return PemHolds::NotPem;
    };
    let label = text
        .get(begin + "-----BEGIN ".len()..)
        .and_then(|rest| rest.split("-----").next())
        .unwrap_or_default();
    if label == "PUBLIC KEY" {
        PemHolds::PublicKey
    } else if label.ends_with("PRIVATE KEY") {
        PemHolds::PrivateKey
    } else if label == "CERTIFICATE" {
        PemHolds::Certificate
    } else {
        PemHolds::Other
    }
}

/// Where certificate trust goes instead of `--key`, for the hint when `--key` is given one.
#[derive(Debug, Clone, Copy)]
pub enum CertificateFlag {
    /// `--certificate-chain CA.pem` (`vouch model verify`, `vouch verify`).
    Chain,
    /// `--certificate-identity` + `--certificate-oidc-issuer` (`vouch verify-bundle`).
    Identity,
}

/// Read the PEM public key `--key` names; a certificate, a private key or a file that is not
/// PEM is refused here with what it is and the flag that takes it.
pub fn read_public_key(path: &Path, certificates: CertificateFlag) -> Result<Vec<u8>> {
    let bytes = read(path, "public key")?;
    let shown = path.display();
    let f = |m: String| Failure::usage(m).code("trust-material");
    match pem_holds(&bytes) {
        PemHolds::PublicKey | PemHolds::Other => Ok(bytes),
        PemHolds::Certificate => Err(f(format!(
            "`--key {shown}` is a certificate, not a public key (`-----BEGIN PUBLIC KEY-----`)"
        ))
        .hint(match certificates {
            CertificateFlag::Chain => "to trust the authority that issued signing certificates, pass its certificate with `--certificate-chain CA.pem` instead of `--key`",
            CertificateFlag::Identity => "a certificate-signed (keyless) bundle is verified by its identity: `--certificate-identity ID --certificate-oidc-issuer URL` instead of `--key`",
        })
        .hint(format!("to trust this one key, extract it: `openssl x509 -in {shown} -pubkey -noout > signer.pub`"))),
        PemHolds::PrivateKey => Err(f(format!(
            "`--key {shown}` is a private key; verifying takes the public key (`-----BEGIN PUBLIC KEY-----`)"
        ))
        .hint("pass the `.pub` file `vouch key generate` wrote beside it (`P.pub` for `P.key`), or derive it: `openssl pkey -in KEY -pubout > signer.pub`; keep the private key out of verifiers")),
        PemHolds::NotPem => Err(f(format!(
            "`--key {shown}` is not a PEM file; expected a public key (`-----BEGIN PUBLIC KEY-----`)"
        ))
        .hint("`vouch key generate` writes one (`P.pub`); for a DER key: `openssl pkey -pubin -inform DER -in KEY -out signer.pub`")),
    }
}

/// Read the PEM private key a signing `--key` names; a public key or certificate is refused
/// with the file that is needed instead.
pub fn read_private_key(path: &Path) -> Result<Vec<u8>> {
    let bytes = read(path, "private key")?;
    let shown = path.display();
    let f = |m: String| Failure::usage(m).code("trust-material");
    match pem_holds(&bytes) {
        PemHolds::PrivateKey | PemHolds::Other => Ok(bytes),
        PemHolds::PublicKey => Err(f(format!(
            "`--key {shown}` is a public key; signing takes the private key (`-----BEGIN PRIVATE KEY-----`)"
        ))
        .hint("pass the `.key` file `vouch key generate` wrote (`P.key` beside `P.pub`), or sign without a key: `--keyless`")),
        PemHolds::Certificate => Err(f(format!(
            "`--key {shown}` is a certificate; signing takes the private key (`-----BEGIN PRIVATE KEY-----`)"
        ))
        .hint("pass the private key the certificate was issued for, or sign without a key: `--keyless`")),
        PemHolds::NotPem => Err(f(format!(
            "`--key {shown}` is not a PEM file; expected a private key (`-----BEGIN PRIVATE KEY-----`)"
        ))
        .hint("`vouch key generate --output-prefix P` writes one (`P.key`)")),
    }
}

fn too_large(path: &Path, what: &str) -> Failure {
    Failure::rejected(format!(
        "{what} `{}` is larger than {MAX_INPUT} bytes",
        path.display()
    ))
}

/// Write `data` to `path` atomically (a temporary file in the same directory, then rename),
/// with `mode` permissions.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail =
        |e: std::io::Error| Failure::undecided(format!("cannot write `{}`: {e}", path.display()));
    let mut tmp = tempfile::Builder::new()
        .prefix(".vouch-")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    tmp.write_all(data).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn oversized_regular_file_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.sig");
        // Sparse: refusing it from its size costs nothing; reading it would take 256 MiB.
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_INPUT + 1)
            .unwrap();
        let err = read(&big, "signature").unwrap_err();
        assert!(err.message.contains("larger than"), "{}", err.message);
        assert_eq!(err.kind, crate::failure::Kind::Rejected);
    }

    #[test]
    fn small_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.pem");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(read(&f, "key").unwrap(), b"abc");
        let err = read(&dir.path().join("nope"), "key").unwrap_err();
        assert!(err.message.contains("cannot open key"), "{}", err.message);
    }
}
