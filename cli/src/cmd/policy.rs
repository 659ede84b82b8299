//! `vouch policy check`: the admission decision, offline, over manifests (for CI).
//!
//! The same `vouch_policy::decide` the webhook runs, over every object of multi-document
//! YAML files: one line per object, exit 1 when anything would be denied.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use serde_json::Value;
use vouch_policy::{Attestations, Lookup, Operation, Policy, Subject};

use crate::args::RegistryArgs;
use crate::failure::{Failure, Reason, Result};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide, as the admission webhook would, every Pod and workload in the manifests.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The trust policy (YAML).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Kubernetes manifests (multi-document YAML; `-` for stdin).
    #[arg(value_name = "MANIFEST.yaml", required = true)]
    pub manifests: Vec<PathBuf>,
    /// A combined-attestation bundle to use instead of the registry. Repeatable; each is
    /// matched to the images it covers.
    #[arg(long, value_name = "FILE")]
    pub attestation: Vec<PathBuf>,
    /// A directory of bundles by image digest (`DIR/<digest hex>/*.json`), as
    /// `vouch-admission --attestation-dir` reads.
    #[arg(long, value_name = "DIR")]
    pub attestation_dir: Option<PathBuf>,
    /// Namespace for objects that do not name one.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// One JSON document on stdout instead of text: `{"verified": true, "outcome":
    /// "allowed", "objects": [...]}`, or `"verified": false` with `"outcome": "rejected"`
    /// (something would be denied) or `"undecided"`, and `"errors"`, one per problem.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: PolicyCommand) -> Result {
    match cmd {
        PolicyCommand::Check(a) => check(a),
    }
}

fn read(path: &PathBuf) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Failure::undecided(format!("cannot read stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| Failure::undecided(format!("cannot read `{}`: {e}", path.display())))
}

/// Where bundles come from: given files (offline) or the registry.
struct Bundles<'a> {
    files: Vec<Vec<u8>>,
    dir: Option<PathBuf>,
    registry: &'a RegistryArgs,
    fetched: HashMap<String, Lookup>,
}

impl Bundles<'_> {
    fn lookup(&mut self, policy: &Policy, image: &vouch_policy::ImageRef) -> Lookup {
        let Some(pinned) = image.pinned() else {
            return Lookup::Unavailable("not pinned".into());
        };
        if let Some(l) = self.fetched.get(&pinned) {
            return l.clone();
        }
        let offline = !self.files.is_empty() || self.dir.is_some();
        let blobs: std::result::Result<Vec<Vec<u8>>, String> = if offline {
            let mut blobs = self.files.clone();
            if let (Some(dir), Some(d)) = (&self.dir, image.digest)
                && let Ok(entries) = std::fs::read_dir(dir.join(d.hex()))
            {
                let mut paths: Vec<PathBuf> = entries
                    .filter_map(std::result::Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect();
                paths.sort();
                for p in paths {
                    if let Ok(b) = std::fs::read(&p) {
                        blobs.push(b);
                    }
                }
            }
            Ok(blobs)
        } else {
            crate::cmd::registry::fetch(&pinned, self.registry)
                .map(|v| v.into_iter().map(|(_, b)| b).collect())
                .map_err(|f| f.message)
        };
        let l = match blobs {
            Ok(b) => Lookup::Checked(vouch_policy::verify_for_admission(
                policy,
                image,
                &b,
                SystemTime::now(),
            )),
            Err(m) => Lookup::Unavailable(m),
        };
        self.fetched.insert(pinned, l.clone());
        l
    }
}

fn check(a: CheckArgs) -> Result {
    let policy = Policy::load(&a.policy).map_err(|e| {
        Failure::undecided(e).hint(format!(
            "see `deploy/policy.example.yaml` for a commented policy; checked file: `{}`",
            a.policy.display()
        ))
    })?;
    let mut files = Vec::new();
    for f in &a.attestation {
        files.push(crate::files::read_bundle(
            f,
            crate::files::BundleUse::Attestation,
        )?);
    }
    let mut bundles = Bundles {
        files,
        dir: a.attestation_dir.clone(),
        registry: &a.registry,
        fetched: HashMap::new(),
    };
    let (mut denied, mut undecided, mut objects) = (0usize, 0usize, 0usize);
    let mut objects_json: Vec<Value> = Vec::new();
    let mut reasons: Vec<Reason> = Vec::new();
    for path in &a.manifests {
        let text = read(path)?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .map_err(|e| Failure::undecided(format!("`{}` is not YAML:\n{e}", path.display())))?;
        let mut queue: Vec<Value> = Vec::new();
        for d in docs {
            match d.get("kind").and_then(Value::as_str) {
                Some(k) if k.ends_with("List") => {
                    if let Some(items) = d.get("items").and_then(Value::as_array) {
                        queue.extend(items.iter().cloned());
                    }
                }
                _ if d.is_null() => {}
                _ => queue.push(d),
            }
        }
        for obj in &queue {
            objects += 1;
            let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
            let namespace = obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(&a.namespace);
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("(unnamed)");
            let subject = Subject {
                kind,
                namespace,
                operation: Operation::Create,
                object: Some(obj),
            };
            let prepared = vouch_policy::Prepared::new(&policy, &subject);
            let mut results = Attestations::new();
            for image in prepared.lookups(&policy) {
                let l = bundles.lookup(&policy, &image);
                if let Some(p) = image.pinned() {
                    results.insert(p, l);
                }
            }
            let d = prepared.decide_as(&policy, &results, vouch_policy::Caller::PolicyCheck);
            let verdict = if !d.allowed && d.is_undecided() {
                undecided += 1;
                "undecided"
            } else if !d.allowed {
                denied += 1;
                "deny"
            } else if !d.warnings.is_empty() {
                "warn"
            } else {
                "allow"
            };
            if a.json {
                objects_json.push(serde_json::json!({
                    "file": path.display().to_string(),
                    "kind": kind,
                    "namespace": namespace,
                    "name": name,
                    "decision": verdict,
                    "summary": d.summary,
                    "problems": d.findings.iter().map(|f| serde_json::json!({
                        "place": f.place,
                        "image": f.image,
                        "problem": f.problem,
                        "hint": f.hint,
                        "couldNotVerify": f.undecided,
                    })).collect::<Vec<_>>(),
                }));
            } else {
                let why = d.summary.splitn(3, ": ").nth(2).unwrap_or("");
                println!(
                    "{verdict:<9} {}: {kind} {namespace}/{name}{}{why}",
                    path.display(),
                    if why.is_empty() { "" } else { ": " }
                );
                for f in &d.findings {
                    println!("  - {f}");
                }
            }
            if !d.allowed {
                for f in &d.findings {
                    let mut r = Reason::new(
                        if f.undecided {
                            "could-not-verify"
                        } else {
                            "denied"
                        },
                        format!("{kind} {namespace}/{name}: {f}"),
                    )
                    .file(path.display());
                    if let Some(h) = &f.hint {
                        r = r.hint(h);
                    }
                    reasons.push(r);
                }
            }
        }
    }
    let failure = if denied > 0 {
        Failure::rejected(format!(
            "{denied} of {objects} object{} would be denied",
            if objects == 1 { "" } else { "s" }
        ))
        .code("denied")
    } else if undecided > 0 {
        Failure::undecided(format!(
            "{undecided} of {objects} object{} could not be verified",
            if objects == 1 { "" } else { "s" }
        ))
        .code("could-not-verify")
        .hint("pass the bundles with `--attestation FILE`, or check registry access")
    } else {
        if a.json {
            return super::model::print_json(&serde_json::json!({
                "verified": true,
                "outcome": "allowed",
                "exitCode": 0,
                "objects": objects_json,
            }));
        }
        return Ok(());
    };
    let mut failure = failure.data("objects", Value::Array(objects_json));
    for r in reasons {
        failure = failure.quiet_reason(r);
    }
    Err(failure)
}
