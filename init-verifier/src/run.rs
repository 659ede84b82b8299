//! The checks, in order, and the report.

use std::io::Read as _;
use std::time::SystemTime;

use serde_json::json;
use vouch_attest::{CheckOptions, ModelReport};
use vouch_trust::{PublicKey, Trust};

use crate::config::{Config, Failure};

const MAX_BUNDLE: u64 = 64 << 20;

fn read(path: &std::path::Path, what: &str) -> Result<Vec<u8>, Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::Undecided(format!("cannot open {what} `{}`: {e}", path.display())))?;
    let mut out = Vec::new();
    file.take(MAX_BUNDLE + 1)
        .read_to_end(&mut out)
        .map_err(|e| Failure::Undecided(format!("cannot read {what} `{}`: {e}", path.display())))?;
    if out.len() as u64 > MAX_BUNDLE {
        return Err(Failure::Rejected(format!(
            "{what} `{}` is larger than {MAX_BUNDLE} bytes",
            path.display()
        )));
    }
    Ok(out)
}

fn attest_failure(e: vouch_attest::Error) -> Failure {
    match e {
        vouch_attest::Error::Mismatch(diffs) => {
            let lines: Vec<String> = diffs.iter().map(|d| format!("  - {d}")).collect();
            Failure::Rejected(format!(
                "the model on disk does not match the signed attestation:\n{}\nhint: the model volume was changed after CI signed it; restore it from the release",
                lines.join("\n")
            ))
        }
        e if e.is_rejection() => Failure::Rejected(e.to_string()),
        e => Failure::Undecided(e.to_string()),
    }
}

/// Every check, fail-closed: signature, image, pin, then every byte of the model.
pub fn run(c: &Config) -> Result<ModelReport, Failure> {
    let key = PublicKey::from_pem(&read(&c.key, "public key")?)
        .map_err(|e| Failure::Undecided(format!("`{}`: {e}", c.key.display())))?;
    let bytes = read(&c.attestation, "attestation")?;
    let bundle = vouch_bundle::Bundle::from_json(&bytes)
        .map_err(|e| Failure::Rejected(format!("the attestation is unusable: {e}")))?;
    let verified = vouch_trust::verify_envelope(&bundle, &Trust::Key(key), SystemTime::now())
        .map_err(|e| {
            Failure::Rejected(format!("the attestation's signature is not trusted: {e}"))
        })?;
    let attestation = vouch_attest::from_verified(verified).map_err(attest_failure)?;
    if let Some(d) = &c.image_digest {
        vouch_attest::covered_image(&attestation, d).map_err(attest_failure)?;
    }
    if let Some(pin) = &c.pin {
        vouch_attest::check_pin(&attestation, pin).map_err(attest_failure)?;
    }
    let options = CheckOptions {
        reject_hard_links: true,
        threads: c.threads,
        ..Default::default()
    };
    let report = vouch_attest::check_model(&c.model_dir, &attestation, &options, None)
        .map_err(attest_failure)?;
    Ok(report.into_inner())
}

/// Exit code, the JSON line for stdout, and the human reason (on failure).
pub fn report(
    outcome: &Result<ModelReport, Failure>,
    seconds: f64,
) -> (u8, String, Option<String>) {
    match outcome {
        Ok(r) => {
            let line = json!({
                "verified": true,
                "modelDigest": r.digest.to_string(),
                "files": r.files,
                "bytes": r.bytes,
                "seconds": (seconds * 1000.0).round() / 1000.0,
            });
            (0, line.to_string(), None)
        }
        Err(f) => {
            let (code, decision, reason) = match f {
                Failure::Rejected(m) => (1, "rejected", format!("vouch-init: rejected: {m}")),
                Failure::Undecided(m) => {
                    (2, "undecided", format!("vouch-init: could not decide: {m}"))
                }
            };
            let line = json!({
                "verified": false,
                "decision": decision,
                "reason": reason,
                "seconds": (seconds * 1000.0).round() / 1000.0,
            });
            (code, line.to_string(), Some(reason))
        }
    }
}
