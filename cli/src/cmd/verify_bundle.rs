//! `vouch verify-bundle`: verify any Sigstore bundle, with the command line of the
//! sigstore-conformance protocol (`cli_protocol.md`, "Verify / Bundle flow"):
//!
//! ```text
//! vouch verify-bundle [--staging] --bundle FILE --certificate-identity IDENTITY
//!                     --certificate-oidc-issuer URL [--trusted-root FILE] FILE_OR_DIGEST
//! vouch verify-bundle [--staging] --bundle FILE --key PATH_TO_KEY [--trusted-root FILE]
//!                     FILE_OR_DIGEST
//! ```
//!
//! `FILE_OR_DIGEST` is a digest when it is `sha256:` and 64 hex digits and no such path
//! exists; otherwise a path. Without `--trusted-root`, the embedded snapshot of the
//! public-good production (or, with `--staging`, staging) trusted root is used: no network.

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};
use serde_json::json;
use vouch_sigstore::{Artifact, Error, Instance, PublicKey, SignedBy, Signer, TrustedRoot};

use crate::args::OutputArgs;
use crate::failure::{Failure, Result};
use crate::files;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("signer").required(true).args(["key", "certificate_identity"])))]
pub struct VerifyBundleArgs {
    /// Use the public-good staging instance's trusted root (when no `--trusted-root`).
    #[arg(long)]
    pub staging: bool,
    /// The Sigstore bundle to verify.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The exact identity (SAN: URI or email) of the signing certificate.
    #[arg(
        long,
        value_name = "IDENTITY",
        requires = "certificate_oidc_issuer",
        conflicts_with = "key"
    )]
    pub certificate_identity: Option<String>,
    /// The exact OIDC issuer of the signing certificate.
    #[arg(
        long,
        value_name = "URL",
        requires = "certificate_identity",
        conflicts_with = "key"
    )]
    pub certificate_oidc_issuer: Option<String>,
    /// PEM public key of a managed-key signer.
    #[arg(long, value_name = "PATH_TO_KEY")]
    pub key: Option<PathBuf>,
    /// The trusted root (`trusted_root.json`) [default: embedded public-good snapshot].
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// The artifact, or its digest `sha256:HEX` (for an in-toto bundle: a subject).
    #[arg(value_name = "FILE_OR_DIGEST")]
    pub artifact: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(a: VerifyBundleArgs) -> Result {
    let root = match &a.trusted_root {
        Some(path) => TrustedRoot::from_json(&files::read(path, "trusted root")?),
        None if a.staging => TrustedRoot::embedded(Instance::Staging),
        None => TrustedRoot::embedded(Instance::Production),
    }
    .map_err(failure)?;
    let signer = match (&a.key, a.certificate_identity, a.certificate_oidc_issuer) {
        (Some(key), _, _) => Signer::Key(
            PublicKey::from_pem(&files::read_public_key(
                key,
                files::CertificateFlag::Identity,
            )?)
            .map_err(failure)?,
        ),
        (None, Some(identity), Some(issuer)) => Signer::Identity { identity, issuer },
        _ => {
            return Err(Failure::undecided(
                "give `--key`, or `--certificate-identity` with `--certificate-oidc-issuer`",
            ));
        }
    };
    let bundle = files::read_bundle(&a.bundle, files::BundleUse::Bundle)?;

    let digest = vouch_sigstore::parse_sha256_digest(&a.artifact)
        .filter(|_| !Path::new(&a.artifact).exists());
    let verified = match digest {
        Some(d) => vouch_sigstore::verify(&bundle, &root, &signer, Artifact::Sha256(d)),
        None => {
            let path = Path::new(&a.artifact);
            let mut file = std::fs::File::open(path).map_err(|e| {
                Failure::undecided(format!("cannot open artifact `{}`: {e}", path.display()))
            })?;
            vouch_sigstore::verify(&bundle, &root, &signer, Artifact::Reader(&mut file))
        }
    }
    .map_err(failure)?;

    let signer = match verified.signed_by() {
        SignedBy::Key => "the given key".to_string(),
        SignedBy::Certificate { identity, issuer } => format!("{identity} (issuer {issuer})"),
    };
    if a.output.json {
        return super::model::print_json(&json!({
            "verified": true,
            "outcome": "verified",
            "artifact": a.artifact,
            "signer": signer,
            "mediaType": verified.media_type(),
            "signedAt": verified.signed_at(),
            "transparencyLog": verified.tlog_verified(),
        }));
    }
    if !a.output.quiet {
        let at = verified
            .signed_at()
            .map(|t| format!(" at {t}"))
            .unwrap_or_default();
        println!("verified: `{}` signed by {signer}{at}", a.artifact);
    }
    Ok(())
}

pub fn failure(e: Error) -> Failure {
    let f = if e.is_rejection() {
        Failure::rejected(format!("verification failed: {e}"))
    } else {
        Failure::undecided(&e)
    };
    match &e {
        Error::IdentityMismatch {
            actual: Some(actual),
            ..
        } => f.hint(format!(
            "the certificate was issued to `{actual}`; pass it as `--certificate-identity` only if you trust that signer"
        )),
        Error::IssuerMismatch {
            actual: Some(actual),
            ..
        } => f.hint(format!(
            "the certificate's identity was vouched for by `{actual}`; pass it as `--certificate-oidc-issuer` only if you trust that issuer"
        )),
        Error::WrongMaterial {
            signed_with_key: true,
        } => f.hint("verify with `--key PUBLIC.pem`"),
        Error::WrongMaterial {
            signed_with_key: false,
        } => f.hint("verify with `--certificate-identity ID --certificate-oidc-issuer URL`"),
        Error::ArtifactMismatch(_) => {
            f.hint("check that this is the artifact (or digest) the bundle was made for")
        }
        Error::TrustedRoot(_) => f.hint(
            "pass the Sigstore instance's current `trusted_root.json` with `--trusted-root`",
        ),
        _ => f,
    }
}
