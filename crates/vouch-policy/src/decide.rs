//! The decision: allow or deny one object, from data already fetched and verified.
//!
//! The order of the checks, per Pod template:
//! 1. the operation carries a pod spec (CREATE, UPDATE of a Pod or workload kind), and the
//!    namespace is not exempt;
//! 2. every image (init, regular, ephemeral containers and image volumes) is pinned by
//!    digest when `requireDigest`;
//! 3. every image the policy covers has a verified combined attestation from one of the
//!    authorities of **every** rule that matches it, whose model digest equals the Pod's
//!    model pin annotation;
//! 4. when any image is covered: the `vouch-init` init container is present, runs the
//!    policy's `initVerifierImage`, checks that same pin on a directory of a mounted volume
//!    (the model volume), and is not a sidecar;
//! 5. every container that could run after `vouch-init` (later init containers, sidecars,
//!    containers, ephemeral containers) mounts the model volume read-only.

use std::fmt;

use serde_json::Value;

use crate::image::ImageRef;
use crate::policy::{Mode, Policy};
use crate::verify::{Attestations, Lookup};
use crate::workload::{self, Container, ContainerKind, PodTemplate, Setting};

/// The admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// CREATE.
    Create,
    /// UPDATE.
    Update,
    /// DELETE.
    Delete,
    /// CONNECT.
    Connect,
}

/// What is being decided.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The object's kind (`Pod`, `Deployment`, ...).
    pub kind: &'a str,
    /// The namespace of the request.
    pub namespace: &'a str,
    /// The operation.
    pub operation: Operation,
    /// The object as sent (for UPDATE: the new object).
    pub object: Option<&'a Value>,
}

/// Who runs the decision: the hints name what the reader can fix, and the webhook's reader
/// fixes other things than the person who ran `vouch policy check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Caller {
    /// The admission webhook (`vouch-admission`): it fetched the attestations.
    #[default]
    Webhook,
    /// `vouch policy check`: the command fetched them from where it ran.
    PolicyCheck,
}

impl Caller {
    /// What to do when the attestations of an image could not be fetched.
    fn unreachable_hint(self) -> &'static str {
        match self {
            Self::Webhook => "retry; if it persists, check that the webhook can reach the registry",
            Self::PolicyCheck => {
                "check that this machine can reach the registry and may read the repository (`--registry-username` + `VOUCH_REGISTRY_PASSWORD`, or `docker login`), or check offline with the bundles: `vouch policy check --attestation FILE` or `--attestation-dir DIR`"
            }
        }
    }
}

/// One problem, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The place, e.g. "container `server`" or "the Pod".
    pub place: String,
    /// The image concerned, when there is one.
    pub image: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// The fix.
    pub hint: Option<String>,
    /// True when nothing was found wrong, but the check could not be carried out (for
    /// example the registry could not be reached): "could not verify".
    pub undecided: bool,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.place)?;
        if let Some(i) = &self.image {
            write!(f, " (image `{i}`)")?;
        }
        write!(f, ": {}", self.problem)?;
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        Ok(())
    }
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// One line: what was decided about what.
    pub summary: String,
    /// Every problem found (empty when allowed in enforce mode).
    pub findings: Vec<Finding>,
    /// Warnings for the client (`warn` mode: the findings).
    pub warnings: Vec<String>,
}

impl Decision {
    fn allow(summary: impl Into<String>) -> Self {
        Self {
            allowed: true,
            summary: summary.into(),
            findings: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The message for a person: the summary, then one line per finding.
    pub fn message(&self) -> String {
        let mut m = self.summary.clone();
        for f in &self.findings {
            m.push_str("\n- ");
            m.push_str(&f.to_string());
        }
        m
    }

    /// Denied only because something could not be checked (exit 2 rather than 1).
    pub fn is_undecided(&self) -> bool {
        !self.allowed && !self.findings.is_empty() && self.findings.iter().all(|f| f.undecided)
    }
}

/// A subject read once: its pod template, or the decision when there is nothing to check.
/// [`Prepared::lookups`] then [`Prepared::decide`] read the object once (the webhook does
/// this); [`lookups`] and [`decide`] do the same for callers that do not mind reading it
/// twice.
#[derive(Debug)]
pub struct Prepared {
    stage: Stage,
    namespace: String,
}

#[derive(Debug)]
enum Stage {
    Done(Decision),
    Template(Box<PodTemplate>),
}

impl Prepared {
    /// Read `subject` under `policy`.
    #[must_use]
    pub fn new(policy: &Policy, subject: &Subject<'_>) -> Self {
        Self {
            stage: stage(policy, subject),
            namespace: subject.namespace.to_owned(),
        }
    }

    /// The images whose attestations must be fetched and verified (with
    /// [`crate::verify_image`]) before [`Prepared::decide`]: pinned images the policy
    /// covers, each once.
    #[must_use]
    pub fn lookups(&self, policy: &Policy) -> Vec<ImageRef> {
        match &self.stage {
            Stage::Done(_) => Vec::new(),
            Stage::Template(t) => template_lookups(policy, t),
        }
    }

    /// The decision, given the verified attestations of the images [`Prepared::lookups`]
    /// named. Pure: no I/O, no clock.
    #[must_use]
    pub fn decide(self, policy: &Policy, results: &Attestations) -> Decision {
        self.decide_as(policy, results, Caller::Webhook)
    }

    /// [`Prepared::decide`], with hints worded for `caller`. The decision itself does not
    /// depend on the caller.
    #[must_use]
    pub fn decide_as(self, policy: &Policy, results: &Attestations, caller: Caller) -> Decision {
        match self.stage {
            Stage::Done(d) => d,
            Stage::Template(t) => decide_template(policy, &self.namespace, &t, results, caller),
        }
    }
}

fn stage(policy: &Policy, s: &Subject<'_>) -> Stage {
    match s.operation {
        Operation::Delete | Operation::Connect => {
            return Stage::Done(Decision::allow(format!(
                "vouch: allowed: {:?} carries no new pod spec",
                s.operation
            )));
        }
        Operation::Create | Operation::Update => {}
    }
    if workload::template_path(s.kind).is_none() {
        return Stage::Done(Decision::allow(format!(
            "vouch: allowed: a {} has no pod template",
            s.kind
        )));
    }
    if policy.is_exempt(s.namespace) {
        return Stage::Done(Decision::allow(format!(
            "vouch: allowed: namespace `{}` is exempt by the policy",
            s.namespace
        )));
    }
    let Some(object) = s.object else {
        return Stage::Done(deny_object(s.kind, "the request carries no object".into()));
    };
    match workload::extract(s.kind, object) {
        Ok(Some(t)) => Stage::Template(Box::new(t)),
        Ok(None) => Stage::Done(Decision::allow(format!(
            "vouch: allowed: a {} has no pod template",
            s.kind
        ))),
        Err(e) => Stage::Done(deny_object(s.kind, e.to_string())),
    }
}

fn deny_object(kind: &str, problem: String) -> Decision {
    Decision {
        allowed: false,
        summary: format!("vouch: denied {kind}: the object cannot be checked"),
        findings: vec![Finding {
            place: format!("the {kind}"),
            image: None,
            problem,
            hint: Some("send a complete object (see `kubectl explain`)".into()),
            undecided: false,
        }],
        warnings: Vec::new(),
    }
}

/// An image in the template: where it is, as written, and parsed.
struct Use<'a> {
    place: String,
    text: Option<&'a str>,
}

fn uses(t: &PodTemplate) -> Vec<Use<'_>> {
    let mut v: Vec<Use<'_>> = t
        .spec
        .all_containers()
        .map(|(kind, _, c)| Use {
            place: format!("{} `{}`", kind.label(), c.name),
            text: c.image.as_deref(),
        })
        .collect();
    for vol in &t.spec.volumes {
        if let Some(img) = &vol.image {
            v.push(Use {
                place: format!("image volume `{}`", vol.name),
                text: img.reference.as_deref(),
            });
        }
    }
    v
}

/// The images whose attestations the caller must fetch and verify (with
/// [`crate::verify_image`]) before calling [`decide`]: pinned images the policy covers,
/// each once.
pub fn lookups(policy: &Policy, subject: &Subject<'_>) -> Vec<ImageRef> {
    Prepared::new(policy, subject).lookups(policy)
}

fn template_lookups(policy: &Policy, t: &PodTemplate) -> Vec<ImageRef> {
    let mut out: Vec<ImageRef> = Vec::new();
    for u in uses(t) {
        let Some(r) = u.text.and_then(|s| ImageRef::parse(s).ok()) else {
            continue;
        };
        if r.digest.is_some()
            && policy.covers(&r.repository)
            && !out.iter().any(|o| o.pinned() == r.pinned())
        {
            out.push(r);
        }
    }
    out
}

fn attest_hint(pinned: &str) -> String {
    format!(
        "attest and push it: `vouch attest --image {pinned} --model MODEL_DIR --key KEY --push`"
    )
}

/// Decide `subject` under `policy`, given the verified attestations of the images that
/// [`lookups`] named. Pure: no I/O, no clock.
pub fn decide(policy: &Policy, subject: &Subject<'_>, results: &Attestations) -> Decision {
    Prepared::new(policy, subject).decide(policy, results)
}

fn decide_template(
    policy: &Policy,
    namespace: &str,
    t: &PodTemplate,
    results: &Attestations,
    caller: Caller,
) -> Decision {
    let mut findings: Vec<Finding> = Vec::new();
    let ann = &policy.model_pin_annotation;
    let pin = t.annotations.get(ann).map(|p| p.trim().to_owned());
    let pin_ok = pin.as_deref().is_some_and(is_sha256);
    let pin_place = if t.kind == "Pod" {
        "the Pod".to_owned()
    } else {
        format!("the pod template (`{}`)", t.path)
    };
    if let Some(p) = &pin
        && !pin_ok
    {
        findings.push(Finding {
            place: pin_place.clone(),
            image: None,
            problem: format!("annotation `{ann}` is `{p}`, not `sha256:<64 hex digits>`"),
            hint: Some("set it to the model digest that `vouch attest` printed".into()),
            undecided: false,
        });
    }
    let mut covered_any = false;
    let mut attested_models: Vec<String> = Vec::new();
    for u in uses(t) {
        let Some(text) = u.text.filter(|s| !s.trim().is_empty()) else {
            findings.push(Finding {
                place: u.place,
                image: None,
                problem: "has no image".into(),
                hint: None,
                undecided: false,
            });
            continue;
        };
        let r = match ImageRef::parse(text) {
            Ok(r) => r,
            Err(e) => {
                findings.push(Finding {
                    place: u.place,
                    image: Some(text.to_owned()),
                    problem: format!("not a valid image reference: {e}"),
                    hint: None,
                    undecided: false,
                });
                continue;
            }
        };
        let covered = policy.covers(&r.repository);
        covered_any |= covered;
        let Some(pinned) = r.pinned() else {
            if policy.require_digest || covered {
                let why = if covered {
                    "is not pinned by digest; the policy requires a combined attestation for it, which can only cover a digest"
                } else {
                    "is not pinned by digest (the policy sets `requireDigest`)"
                };
                findings.push(Finding {
                    place: u.place,
                    image: Some(text.to_owned()),
                    problem: why.into(),
                    hint: Some(format!(
                        "pin the image: `{}@sha256:<digest>` (`skopeo inspect --format '{{{{.Digest}}}}' docker://{text}` prints the digest)",
                        r.repository
                    )),
                    undecided: false,
                });
            }
            continue;
        };
        if !covered {
            continue;
        }
        let checked = match results.get(&pinned) {
            None => {
                findings.push(Finding {
                    place: u.place,
                    image: Some(text.to_owned()),
                    problem: "could not verify: its attestations were not looked up".into(),
                    hint: None,
                    undecided: true,
                });
                continue;
            }
            Some(Lookup::Unavailable(why)) => {
                findings.push(Finding {
                    place: u.place,
                    image: Some(text.to_owned()),
                    problem: format!("could not verify its attestations: {why}"),
                    hint: Some(caller.unreachable_hint().into()),
                    undecided: true,
                });
                continue;
            }
            Some(Lookup::Checked(a)) => a,
        };
        for rule in policy.rules_for(&r.repository) {
            let trusted: Vec<_> = checked
                .verified()
                .iter()
                .filter(|v| rule.authorities.contains(&v.authority))
                .collect();
            let authorities = rule
                .authorities
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ");
            if trusted.is_empty() {
                let (problem, hint) = if checked.is_empty() {
                    (
                        format!("no combined attestation found for {pinned}"),
                        attest_hint(&pinned),
                    )
                } else {
                    let mut why = checked.rejected().to_vec();
                    for v in checked.verified() {
                        why.push(format!(
                            "an attestation by `{}` is valid, but rule `{}` accepts only {authorities}",
                            v.authority, rule.glob
                        ));
                    }
                    (
                        format!(
                            "no valid combined attestation by {authorities} (rule `{}`): {}",
                            rule.glob,
                            why.join("; ")
                        ),
                        format!(
                            "sign with a key of {authorities}: `vouch attest --image {pinned} --model MODEL_DIR --key KEY --push`"
                        ),
                    )
                };
                findings.push(Finding {
                    place: u.place.clone(),
                    image: Some(text.to_owned()),
                    problem,
                    hint: Some(hint),
                    undecided: false,
                });
                continue;
            }
            let models: Vec<String> = trusted
                .iter()
                .map(|v| v.attestation.get().0.model.digest.to_string())
                .collect();
            match pin.as_deref() {
                None => findings.push(Finding {
                    place: pin_place.clone(),
                    image: Some(text.to_owned()),
                    problem: format!("has no model pin annotation `{ann}`"),
                    hint: Some(format!(
                        "add `metadata.annotations: {{\"{ann}\": \"{}\"}}` (the attested model digest)",
                        models.first().map_or("sha256:<model digest>", String::as_str)
                    )),
                    undecided: false,
                }),
                Some(p) if pin_ok => {
                    if let Some(v) = trusted
                        .iter()
                        .find(|v| vouch_attest::check_pin(&v.attestation, p).is_ok())
                    {
                        let d = v.attestation.get().0.model.digest.to_string();
                        if !attested_models.contains(&d) {
                            attested_models.push(d);
                        }
                    } else {
                        findings.push(Finding {
                            place: u.place.clone(),
                            image: Some(text.to_owned()),
                            problem: format!(
                                "the Pod pins model {p} (`{ann}`), but the attestation for this image is for model {}",
                                models.join(", ")
                            ),
                            hint: Some(format!(
                                "pin the attested model (`{ann}: {}`), or attest the model you mean to run: {}",
                                models.first().map_or("", String::as_str),
                                attest_hint(&pinned)
                            )),
                            undecided: false,
                        });
                    }
                }
                Some(_) => {}
            }
        }
    }
    if covered_any {
        check_init(policy, t, pin.as_deref(), &mut findings);
    }
    finish(policy, namespace, t, findings, &attested_models)
}

fn is_sha256(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn finish(
    policy: &Policy,
    namespace: &str,
    t: &PodTemplate,
    findings: Vec<Finding>,
    models: &[String],
) -> Decision {
    let what = format!("{} {}/{}", t.kind, namespace, display_name(&t.name));
    if findings.is_empty() {
        let summary = if models.is_empty() {
            format!("vouch: allowed {what}: no image needs a combined attestation")
        } else {
            format!(
                "vouch: allowed {what}: attested model {}",
                models.join(", ")
            )
        };
        return Decision::allow(summary);
    }
    let undecided = findings.iter().all(|f| f.undecided);
    let verb = if undecided {
        "could not verify"
    } else {
        "denied"
    };
    match policy.mode {
        Mode::Enforce => Decision {
            allowed: false,
            summary: format!(
                "vouch: {verb} {what} ({} problem{})",
                findings.len(),
                if findings.len() == 1 { "" } else { "s" }
            ),
            findings,
            warnings: Vec::new(),
        },
        Mode::Warn => Decision {
            allowed: true,
            summary: format!("vouch: allowed {what} in warn mode; enforce mode would deny it"),
            warnings: findings.iter().map(|f| format!("vouch: {f}")).collect(),
            findings,
        },
    }
}

fn display_name(n: &str) -> &str {
    if n.is_empty() { "(unnamed)" } else { n }
}

const EXPECT_FLAG: &str = "--expect-model-digest";
const EXPECT_ENV: &str = "VOUCH_EXPECT_MODEL_DIGEST";
const DIR_FLAG: &str = "--model-dir";
const DIR_ENV: &str = "VOUCH_MODEL_DIR";

fn check_init(policy: &Policy, t: &PodTemplate, pin: Option<&str>, findings: &mut Vec<Finding>) {
    let wanted = policy.init_verifier_image.as_ref();
    let wanted_text = policy
        .init_verifier_image_text
        .as_deref()
        .unwrap_or("the policy's initVerifierImage");
    let pin_text = pin.unwrap_or("sha256:<model digest>");
    let found = t.spec.init_containers.iter().enumerate().find(|(_, c)| {
        let repo_matches = c
            .image
            .as_deref()
            .and_then(|i| ImageRef::parse(i).ok())
            .zip(wanted)
            .is_some_and(|(r, w)| r.repository == w.repository);
        repo_matches || c.name == "vouch-init"
    });
    let Some((index, init)) = found else {
        findings.push(Finding {
            place: "initContainers".into(),
            image: None,
            problem: "no `vouch-init` init container: nothing checks the model bytes before the model server starts".into(),
            hint: Some(format!(
                "add an init container `vouch-init` with image `{wanted_text}`, args `--model-dir=MODEL_DIR --expect-model-digest={pin_text}`, and mount the model volume (example: deploy/examples/pod-model-server.yaml)"
            )),
            undecided: false,
        });
        return;
    };
    let place = format!("init container `{}`", init.name);
    let image_text = init.image.clone().unwrap_or_default();
    let image_ok = init
        .image
        .as_deref()
        .and_then(|i| ImageRef::parse(i).ok())
        .zip(wanted)
        .is_some_and(|(r, w)| r.repository == w.repository && r.digest == w.digest);
    if !image_ok {
        findings.push(Finding {
            place: place.clone(),
            image: Some(image_text.clone()),
            problem: format!(
                "runs `{image_text}`, but the policy requires the vouch-init image `{wanted_text}`"
            ),
            hint: Some(format!("pin the image: `{wanted_text}`")),
            undecided: false,
        });
    }
    if init.restart_policy.as_deref() == Some("Always") {
        findings.push(Finding {
            place: place.clone(),
            image: Some(image_text.clone()),
            problem:
                "is a sidecar (`restartPolicy: Always`), so the model server does not wait for it"
                    .into(),
            hint: Some("remove `restartPolicy: Always` from the vouch-init container".into()),
            undecided: false,
        });
    }
    match workload::setting(init, EXPECT_FLAG, EXPECT_ENV) {
        Setting::Unset => findings.push(Finding {
            place: place.clone(),
            image: Some(image_text.clone()),
            problem: "does not check a model pin".into(),
            hint: Some(format!("add the argument `{EXPECT_FLAG}={pin_text}`")),
            undecided: false,
        }),
        Setting::Indirect(from) => findings.push(Finding {
            place: place.clone(),
            image: Some(image_text.clone()),
            problem: format!("takes its model pin from {from}, which is not known at admission"),
            hint: Some(format!("pass it literally: `{EXPECT_FLAG}={pin_text}`")),
            undecided: false,
        }),
        Setting::Value(v, from) => {
            if let Some(p) = pin
                && !v.trim().eq_ignore_ascii_case(p)
            {
                findings.push(Finding {
                    place: place.clone(),
                    image: Some(image_text.clone()),
                    problem: format!(
                        "checks model {v} ({from}), but the Pod pins {p} (`{}`)",
                        policy.model_pin_annotation
                    ),
                    hint: Some(format!("use the same pin in both: `{EXPECT_FLAG}={p}`")),
                    undecided: false,
                });
            }
        }
    }
    let dir = match workload::setting(init, DIR_FLAG, DIR_ENV) {
        Setting::Value(v, _) => v,
        Setting::Unset | Setting::Indirect(_) => {
            findings.push(Finding {
                place: place.clone(),
                image: Some(image_text.clone()),
                problem: format!(
                    "has no literal `{DIR_FLAG}` (or `{DIR_ENV}`): the model volume is unknown"
                ),
                hint: Some(format!(
                    "add the argument `{DIR_FLAG}=/models/NAME` on the model volume's mount"
                )),
                undecided: false,
            });
            return;
        }
    };
    let Some(volume) = init
        .volume_mounts
        .iter()
        .filter(|m| path_under(&dir, &m.mount_path))
        .max_by_key(|m| m.mount_path.len())
        .map(|m| m.name.clone())
    else {
        findings.push(Finding {
            place,
            image: Some(image_text),
            problem: format!("checks `{dir}`, which is not on any of its volume mounts"),
            hint: Some("mount the model volume in vouch-init at a parent of `--model-dir`".into()),
            undecided: false,
        });
        return;
    };
    for (kind, i, c) in t.spec.all_containers() {
        let before = kind == ContainerKind::Init && i < index && !is_sidecar(c);
        if (kind == ContainerKind::Init && i == index) || before {
            continue;
        }
        for m in c.volume_mounts.iter().filter(|m| m.name == volume) {
            if !m.read_only {
                findings.push(Finding {
                    place: format!("{} `{}`", kind.label(), c.name),
                    image: c.image.clone(),
                    problem: format!(
                        "mounts the model volume `{volume}` writable at `{}`, so the checked model could change after vouch-init",
                        m.mount_path
                    ),
                    hint: Some(format!("set `readOnly: true` on its volumeMount `{volume}`")),
                    undecided: false,
                });
            }
        }
    }
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Whether `path` is `mount` or below it, by path components.
fn path_under(path: &str, mount: &str) -> bool {
    let p: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let m: Vec<&str> = mount
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if p.contains(&"..") || m.contains(&"..") || !path.starts_with('/') {
        return false;
    }
    p.len() >= m.len() && p.iter().zip(m.iter()).all(|(a, b)| a == b)
}

#[cfg(test)]
mod tests {
    use super::path_under;

    #[test]
    fn mounts_contain_paths_by_component() {
        assert!(path_under("/models/tiny", "/models"));
        assert!(path_under("/models", "/models/"));
        assert!(!path_under("/models2/x", "/models"));
        assert!(!path_under("/models/../etc", "/models"));
        assert!(!path_under("models/x", "/models"));
        assert!(path_under("/x", "/"));
    }
}
