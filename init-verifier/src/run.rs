//! The checks, in order, and the report.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::SystemTime;

use serde_json::json;
use vouch_attest::{CheckOptions, ModelReport};
use vouch_policy::{ImageRef, Policy};
use vouch_trust::{PublicKey, Trust};

use crate::config::{Config, Failure, Source, TrustSource};

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

pub const MISMATCH_HINT: &str =
    "the model volume was changed after CI signed it; restore it from the release";

/// One difference in the shape of `vouch --json`'s `errors` entries.
pub fn difference_json(d: &vouch_attest::RoledDifference, hint: &str) -> serde_json::Value {
    use vouch_model::Difference as D;
    let (expected, found) = match &d.difference {
        D::Missing { path } => (json!(path.as_str()), json!(null)),
        D::Extra { path } => (json!(null), json!(path.as_str())),
        D::Renamed { from, to } => (json!(from.as_str()), json!(to.as_str())),
        D::Size {
            expected, actual, ..
        } => (json!(expected), json!(actual)),
        D::Content {
            expected, actual, ..
        } => (json!(expected.to_string()), json!(actual.to_string())),
        _ => (json!(null), json!(null)),
    };
    json!({
        "kind": d.difference.kind(),
        "file": d.difference.path().as_str(),
        "role": d.role.name(),
        "expected": expected,
        "found": found,
        "message": d.to_string(),
        "hint": hint,
    })
}

/// A Sigstore bundle file, refused here when it is empty or JSON that is not a bundle, with
/// what was expected and where a good one comes from.
fn check_bundle_shape(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    let expected = "a Sigstore bundle: a JSON object with `mediaType`, `verificationMaterial` and `dsseEnvelope`";
    let hint = "hint: mount the file `vouch attest --output FILE` wrote (a Secret or ConfigMap), or leave out `--attestation` to fetch it from the registry with `--image`";
    let shown = path.display();
    let problem = if bytes.iter().all(u8::is_ascii_whitespace) {
        Some("is empty".to_owned())
    } else {
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            Err(e) => Some(format!(
                "is not JSON (line {}, column {})",
                e.line(),
                e.column()
            )),
            Ok(serde_json::Value::Object(o)) if !o.contains_key("mediaType") => {
                Some(if o.is_empty() {
                    "is JSON but not a Sigstore bundle (it is an empty object)".to_owned()
                } else {
                    "is JSON but not a Sigstore bundle (it has no `mediaType`)".to_owned()
                })
            }
            Ok(serde_json::Value::Object(_)) => None,
            Ok(_) => Some("is JSON but not an object".to_owned()),
        }
    };
    match problem {
        Some(p) => Err(Failure::Rejected(format!(
            "the attestation file `{shown}` {p}; expected {expected}\n{hint}"
        ))),
        None => Ok(()),
    }
}

/// The `--key` file: a certificate or a private key is refused with what to pass instead.
fn check_public_key_pem(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    let text = String::from_utf8_lossy(bytes);
    let label = text
        .find("-----BEGIN ")
        .and_then(|b| text.get(b + "-----BEGIN ".len()..))
        .and_then(|rest| rest.split("-----").next());
    let shown = path.display();
    let problem = match label {
        None => format!(
            "`--key {shown}` (VOUCH_KEY) is not a PEM file; expected a public key (`-----BEGIN PUBLIC KEY-----`)\nhint: mount the `.pub` file `vouch key generate` wrote"
        ),
        Some("CERTIFICATE") => format!(
            "`--key {shown}` (VOUCH_KEY) is a certificate, not a public key (`-----BEGIN PUBLIC KEY-----`)\nhint: vouch-init trusts a public key or a trust policy (`--policy`, whose authorities may be keyless identities); to trust this certificate's key, extract it: `openssl x509 -in {shown} -pubkey -noout > signer.pub`"
        ),
        Some(l) if l.ends_with("PRIVATE KEY") => format!(
            "`--key {shown}` (VOUCH_KEY) is a private key; verifying takes the public key (`-----BEGIN PUBLIC KEY-----`)\nhint: mount the `.pub` file `vouch key generate` wrote beside it (`P.pub` for `P.key`); a private key never belongs in a Pod"
        ),
        Some(_) => return Ok(()),
    };
    Err(Failure::Undecided(problem))
}

pub fn attest_failure(e: vouch_attest::Error) -> Failure {
    match e {
        vouch_attest::Error::Mismatch(diffs) => {
            let lines: Vec<String> = diffs.iter().map(|d| format!("  - {d}")).collect();
            Failure::Differs {
                kind: "model-mismatch",
                message: format!(
                    "the model on disk does not match the signed attestation:\n{}\nhint: {MISMATCH_HINT}",
                    lines.join("\n")
                ),
                reasons: diffs
                    .iter()
                    .map(|d| difference_json(d, MISMATCH_HINT))
                    .collect(),
            }
        }
        e if e.is_rejection() => Failure::Rejected(e.to_string()),
        e => Failure::Undecided(e.to_string()),
    }
}

/// The candidate bundles, each with where it came from.
fn candidates(
    source: &Source,
    options: &vouch_oci::Options,
) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    match source {
        Source::File(path) => {
            let bytes = read(path, "attestation")?;
            check_bundle_shape(path, &bytes)?;
            Ok(vec![(path.display().to_string(), bytes)])
        }
        Source::Registry { image } => {
            let registry =
                vouch_oci::BlockingRegistry::for_reference(image, options).map_err(|e| {
                    let hint = e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default();
                    Failure::Undecided(format!("{e}{hint}"))
                })?;
            let found = registry.fetch_attestations(image).map_err(|e| {
                Failure::Undecided(format!(
                    "cannot fetch the attestations of {image}: {e}{}",
                    e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default()
                ))
            })?;
            if found.is_empty() {
                return Err(Failure::Rejected(format!(
                    "no attestation is attached to {image}\nhint: CI signs and pushes it with `vouch attest --image REF@sha256:... --push`"
                )));
            }
            Ok(found
                .into_iter()
                .map(|a| (image.with_digest(&a.manifest_digest).to_string(), a.bundle))
                .collect())
        }
    }
}

/// Whom the candidates are checked against, loaded.
enum Checker {
    /// One public key.
    Key(PublicKey),
    /// The authorities the policy names for the image.
    Policy {
        policy: Box<Policy>,
        image: ImageRef,
        path: PathBuf,
    },
}

/// What verified: the model report, the policy authority that signed (with `--policy`),
/// and with `--model-artifact`, the artifact and whether it was pulled (or found in place).
#[derive(Debug)]
pub struct Outcome {
    pub report: ModelReport,
    pub authority: Option<String>,
    pub artifact: Option<(String, bool)>,
}

pub type VerifiedAttestation =
    vouch_trust::Verified<(vouch_attest::Attestation, vouch_trust::Signer)>;

/// Load the key, or the policy and check that it can decide for the image, before any
/// bundle is read or fetched.
fn checker(c: &Config) -> Result<Checker, Failure> {
    let (path, image) = match &c.trust {
        TrustSource::Key(path) => {
            let bytes = read(path, "public key")?;
            check_public_key_pem(path, &bytes)?;
            let key = PublicKey::from_pem(&bytes)
                .map_err(|e| Failure::Undecided(format!("`{}`: {e}", path.display())))?;
            return Ok(Checker::Key(key));
        }
        TrustSource::Policy { path, image } => (path, image),
    };
    let policy = Policy::load(path).map_err(|e| {
        Failure::Undecided(format!(
            "{e}\nhint: fix the policy file `{}` (a commented example: deploy/policy.example.yaml)",
            path.display()
        ))
    })?;
    if let Err(e) = policy.signers_for(&image.repository) {
        return Err(Failure::Rejected(format!(
            "`{}`: {e}\nhint: {}",
            path.display(),
            e.hint()
        )));
    }
    Ok(Checker::Policy {
        policy: Box::new(policy),
        image: image.clone(),
        path: path.clone(),
    })
}

/// Signature, image and pin of one candidate; with a policy, also the authority's name.
fn check_candidate(
    bytes: &[u8],
    checker: &Checker,
    c: &Config,
) -> Result<(VerifiedAttestation, Option<String>), Failure> {
    let (attestation, authority) = match checker {
        Checker::Key(key) => {
            let bundle = vouch_bundle::Bundle::from_json(bytes)
                .map_err(|e| Failure::Rejected(format!("the attestation is unusable: {e}")))?;
            let verified =
                vouch_trust::verify_envelope(&bundle, &Trust::Key(key.clone()), SystemTime::now())
                    .map_err(|e| {
                        Failure::Rejected(format!(
                            "the attestation's signature is not trusted: {e}"
                        ))
                    })?;
            (
                vouch_attest::from_verified(verified).map_err(attest_failure)?,
                None,
            )
        }
        Checker::Policy {
            policy,
            image,
            path,
        } => {
            let result = vouch_policy::verify_image(policy, image, &[bytes], SystemTime::now());
            let Some(t) = result.verified().first() else {
                let reasons: Vec<String> = result
                    .rejected()
                    .iter()
                    .flat_map(|r| {
                        r.strip_prefix("attestation #1: ")
                            .unwrap_or(r)
                            .split("; ")
                            .map(|p| format!("  - {p}"))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                return Err(Failure::Rejected(format!(
                    "the attestation is not accepted: the policy `{}` trusts {} for `{}`, and none of them verified it for this image:\n{}\nhint: sign the attestation with the key of one of these authorities, or add its signer to the policy",
                    path.display(),
                    policy.authority_names_for(&image.repository),
                    image.repository,
                    reasons.join("\n")
                )));
            };
            (t.attestation.clone(), Some(t.authority.clone()))
        }
    };
    if let Some(d) = &c.image_digest {
        vouch_attest::covered_image(&attestation, d).map_err(attest_failure)?;
    }
    if let Some(pin) = &c.pin {
        vouch_attest::check_pin(&attestation, pin).map_err(attest_failure)?;
    }
    if let Some(digest) = c.artifact.as_ref().and_then(|a| a.digest()) {
        vouch_attest::check_artifact(&attestation, digest).map_err(|e| {
            let hint = "give the artifact the attestation names (`vouch inspect --image IMAGE` shows it), or attest this one with the image: `vouch attest --image IMAGE --model-artifact REF@sha256:... --push`";
            let (expected, found) = match &e {
                vouch_attest::Error::ArtifactMismatch { expected, found } => {
                    (json!(expected), json!(found))
                }
                _ => (json!(null), json!(null)),
            };
            Failure::Differs {
                kind: "artifact-mismatch",
                message: format!("{e}\nhint: {hint}"),
                reasons: vec![json!({
                    "kind": "artifact-mismatch",
                    "file": null,
                    "role": null,
                    "expected": expected,
                    "found": found,
                    "message": e.to_string(),
                    "hint": hint,
                })],
            }
        })?;
    }
    Ok((attestation, authority))
}

/// The one failure, or all of them, one line each (undecided only when all of them are).
fn none_passed(mut reasons: Vec<((String, Vec<u8>), Failure)>) -> Failure {
    if reasons.len() == 1 {
        return reasons
            .pop()
            .map_or_else(|| Failure::Rejected(String::new()), |(_, f)| f);
    }
    let undecided = reasons
        .iter()
        .all(|(_, f)| matches!(f, Failure::Undecided(_)));
    let lines: Vec<String> = reasons
        .iter()
        .map(|((origin, _), f)| format!("  - {origin}: {}", f.message()))
        .collect();
    let m = format!(
        "none of the {} attestations passed:\n{}",
        reasons.len(),
        lines.join("\n")
    );
    if undecided {
        Failure::Undecided(m)
    } else {
        Failure::Rejected(m)
    }
}

/// Every check, fail-closed: signature, image, pin, then every byte of the model.
pub fn run(c: &Config) -> Result<Outcome, Failure> {
    let checker = checker(c)?;
    // The first candidate that passes signature, image and pin; the model check follows.
    let chosen =
        vouch_attest::first_accepted(candidates(&c.attestation, &c.registry)?, |(_, bytes)| {
            check_candidate(bytes, &checker, c)
        });
    let (_, (attestation, authority)) = chosen.map_err(none_passed)?;
    if let Some(artifact) = &c.artifact {
        let pulled = crate::pull::pull(c, artifact, &attestation)?;
        return Ok(Outcome {
            report: pulled.report,
            authority,
            artifact: Some((artifact.to_string(), pulled.pulled)),
        });
    }
    let options = CheckOptions {
        reject_hard_links: true,
        threads: c.threads,
        ..Default::default()
    };
    let report = vouch_attest::check_model(&c.model_dir, &attestation, &options, None)
        .map_err(attest_failure)?;
    Ok(Outcome {
        report: report.into_inner(),
        authority,
        artifact: None,
    })
}

/// Exit code, the JSON line for stdout, and the human reason (on failure).
pub fn report(outcome: &Result<Outcome, Failure>, seconds: f64) -> (u8, String, Option<String>) {
    match outcome {
        Ok(Outcome {
            report: r,
            authority,
            artifact,
        }) => {
            let mut line = json!({
                "verified": true,
                "modelDigest": r.digest.to_string(),
                "files": r.files,
                "bytes": r.bytes,
                "seconds": (seconds * 1000.0).round() / 1000.0,
            });
            if let Some(map) = line.as_object_mut() {
                if let Some(a) = authority {
                    map.insert("authority".into(), json!(a));
                }
                if let Some((reference, pulled)) = artifact {
                    map.insert("modelArtifact".into(), json!(reference));
                    map.insert("pulled".into(), json!(pulled));
                }
            }
            (0, line.to_string(), None)
        }
        Err(f) => {
            let m = f.message();
            let (code, decision, reason) = match f {
                Failure::Rejected(_) | Failure::Differs { .. } => {
                    (1u8, "rejected", format!("vouch-init: rejected: {m}"))
                }
                Failure::Undecided(_) => {
                    (2, "undecided", format!("vouch-init: could not decide: {m}"))
                }
            };
            let (kind, message, details, hints) = parts(f);
            let errors: Vec<serde_json::Value> = match f {
                Failure::Differs { reasons, .. } => reasons.clone(),
                _ if !details.is_empty() => details
                    .iter()
                    .map(|d| error_json(kind, d, hints.first()))
                    .collect(),
                _ => vec![error_json(kind, &message, hints.first())],
            };
            let line = json!({
                "verified": false,
                "outcome": decision,
                "decision": decision,
                "exitCode": code,
                "kind": kind,
                "message": message,
                "hints": hints,
                "errors": errors,
                "reason": reason,
                "seconds": (seconds * 1000.0).round() / 1000.0,
            });
            (code, line.to_string(), Some(reason))
        }
    }
}

/// One `errors` entry without file or role data.
fn error_json(kind: &str, message: &str, hint: Option<&String>) -> serde_json::Value {
    json!({
        "kind": kind,
        "file": null,
        "role": null,
        "expected": null,
        "found": null,
        "message": message,
        "hint": hint,
    })
}

/// A failure's kind, first line, `  - ` detail lines and `hint: ` lines.
fn parts(f: &Failure) -> (&'static str, String, Vec<String>, Vec<String>) {
    let text = f.message();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let (kind, first) = match (f, first.strip_prefix("usage: ")) {
        (_, Some(rest)) => ("usage", rest),
        (Failure::Differs { kind, .. }, None) => (*kind, first),
        (Failure::Rejected(_), None) => ("rejected", first),
        (Failure::Undecided(_), None) => ("undecided", first),
    };
    let (mut details, mut hints) = (Vec::new(), Vec::new());
    for l in lines {
        if let Some(h) = l.strip_prefix("hint: ") {
            hints.push(h.to_owned());
        } else if let Some(d) = l.trim_start().strip_prefix("- ") {
            details.push(d.to_owned());
        }
    }
    let message = first.trim_end_matches(':').to_owned();
    (kind, message, details, hints)
}
