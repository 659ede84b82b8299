//! `vouch sign-bundle`: sign any file keylessly into a Sigstore bundle v0.3, with the
//! command line of the sigstore-conformance protocol (`cli_protocol.md`, "Sign / Bundle
//! flow"), plus explicit service URLs:
//!
//! ```text
//! vouch sign-bundle [--staging] [--in-toto] --identity-token TOKEN --bundle FILE
//!                   [--trusted-root FILE] [--signing-config FILE] FILE
//! ```
//!
//! Without `--in-toto`, FILE is signed as a message (Rekor `hashedrekord`); with it, FILE is
//! an in-toto statement signed, byte for byte, as a DSSE envelope (Rekor `dsse`). With
//! `--trusted-root`, the new bundle is verified against it before it is written.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use vouch_sigstore::Artifact;

use super::keyless::{self, KeylessArgs};
use crate::args::OutputArgs;
use crate::failure::{Failure, Result};
use crate::files;

#[derive(Debug, Args)]
pub struct SignBundleArgs {
    /// Use the public-good staging instance (when no `--signing-config` or URLs).
    #[arg(long)]
    pub staging: bool,
    /// FILE is an in-toto statement: sign it as a DSSE envelope.
    #[arg(long)]
    pub in_toto: bool,
    /// Write the bundle here.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// Verify the new bundle against this trusted root (`trusted_root.json`) before writing it.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    #[command(flatten)]
    pub keyless: KeylessArgs,
    /// The file to sign (with `--in-toto`: the statement).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(a: SignBundleArgs) -> Result {
    let (signer, _) = a.keyless.signer(a.staging)?;
    let open = || {
        std::fs::File::open(&a.file)
            .map_err(|e| Failure::undecided(format!("cannot open `{}`: {e}", a.file.display())))
    };
    let signed = if a.in_toto {
        let statement = files::read(&a.file, "in-toto statement")?;
        let signed = signer.sign_in_toto(&statement).map_err(keyless::failure)?;
        if let Some(root) = &a.trusted_root {
            let digest = keyless::first_subject_sha256(&statement).ok_or_else(|| {
                Failure::undecided(
                    "the statement's first subject has no sha256 digest to verify the bundle with",
                )
            })?;
            keyless::check_signed(&signed, root, Artifact::Sha256(digest))?;
        }
        signed
    } else {
        let signed = signer.sign_artifact(open()?).map_err(keyless::failure)?;
        if let Some(root) = &a.trusted_root {
            keyless::check_signed(&signed, root, Artifact::Reader(&mut open()?))?;
        }
        signed
    };
    files::write_atomic(&a.bundle, signed.bundle_json.as_bytes(), 0o644)?;

    if a.output.json {
        return super::model::print_json(&json!({
            "signed": a.file,
            "bundle": a.bundle,
            "identity": signed.identity,
            "issuer": signed.issuer,
            "logIndex": signed.log_index,
        }));
    }
    if !a.output.quiet {
        let index = signed
            .log_index
            .map(|i| format!(", Rekor log index {i}"))
            .unwrap_or_default();
        println!(
            "signed `{}` as {} (issuer {}){index}: {}",
            a.file.display(),
            signed.identity,
            signed.issuer,
            a.bundle.display()
        );
    }
    Ok(())
}
