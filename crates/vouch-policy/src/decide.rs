//! The decision: allow or deny one object, from data already fetched and verified.
//!
//! The order of the checks, per Pod template:
//! 1. the operation carries a pod spec (CREATE, UPDATE of a Pod or workload kind), and the
//!    namespace is not exempt;
//! 2. every image (init, regular, ephemeral containers and image volumes) is pinned by
//!    digest when `requireDigest`, and every image or image volume the policy covers is
//!    pinned whatever `requireDigest` says;
//! 3. every covered container image that mounts no covered image volume has a verified
//!    combined attestation from one of the authorities of **every** rule that matches it,
//!    whose model digest equals the Pod's model pin annotation;
//! 4. every covered image volume (a model artifact, `volumes[].image.reference`): for each
//!    container that mounts it, a verified combined attestation stored next to that
//!    container's image (its referrers), by the authorities of every rule that matches the
//!    artifact or the image, that covers the image **and** names the artifact's manifest
//!    digest (`model.artifact`); a Pod model pin, when there, must equal its model digest.
//!    An image volume no container mounts needs such an attestation from one of the Pod's
//!    images. A swap of either half is named: another artifact with an attested server
//!    image (the finding is on the image volume), or the artifact under a server image not
//!    attested with it (the finding is on the container);
//! 5. when a container of step 3 exists (its model is on another volume): the `vouch-init`
//!    init container is present, runs the policy's `initVerifierImage`, checks that same pin
//!    on a directory of a mounted volume (the model volume), and is not a sidecar; and
//!    every container that could run after `vouch-init` (later init containers, sidecars,
//!    containers, ephemeral containers) mounts the model volume read-only. A model that
//!    arrives as an image volume needs no vouch-init: the runtime pulls it by the digest
//!    the attestation names and mounts it read-only, so its bytes are what was attested.

use std::fmt;

use serde_json::Value;

use crate::image::ImageRef;
use crate::policy::{ImageRule, Mode, Policy};
use crate::verify::{Attestations, ImageAttestations, Lookup, TrustedAttestation};
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
    /// [`crate::verify_for_admission`]) before [`Prepared::decide`]: pinned container
    /// images the policy covers, and the pinned images of the containers that mount a
    /// covered image volume, each once.
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

/// An image in the template: where it is, as written, and for a container, which one.
struct Use<'a> {
    place: String,
    text: Option<&'a str>,
    /// The container; `None` for an image volume.
    container: Option<&'a Container>,
}

fn uses(t: &PodTemplate) -> Vec<Use<'_>> {
    let mut v: Vec<Use<'_>> = t
        .spec
        .all_containers()
        .map(|(kind, _, c)| Use {
            place: container_place(kind, c),
            text: c.image.as_deref(),
            container: Some(c),
        })
        .collect();
    for vol in &t.spec.volumes {
        if let Some(img) = &vol.image {
            v.push(Use {
                place: format!("image volume `{}`", vol.name),
                text: img.reference.as_deref(),
                container: None,
            });
        }
    }
    v
}

fn container_place(kind: ContainerKind, c: &Container) -> String {
    format!("{} `{}`", kind.label(), c.name)
}

/// An image volume whose reference the policy covers: a model artifact that the runtime
/// pulls by digest and mounts read-only, and the containers that mount it.
struct ModelVolume<'a> {
    name: &'a str,
    /// The reference as written.
    text: &'a str,
    artifact: ImageRef,
    /// Every container (init, regular, ephemeral) with a volumeMount of it, and its place.
    mounted_by: Vec<(String, &'a Container)>,
}

impl ModelVolume<'_> {
    fn is_mounted_by(&self, c: &Container) -> bool {
        self.mounted_by.iter().any(|(_, m)| std::ptr::eq(*m, c))
    }
}

fn model_volumes<'a>(policy: &Policy, t: &'a PodTemplate) -> Vec<ModelVolume<'a>> {
    t.spec
        .volumes
        .iter()
        .filter_map(|vol| {
            let text = vol.image.as_ref()?.reference.as_deref()?;
            let artifact = ImageRef::parse(text).ok()?;
            if !policy.covers(&artifact.repository) {
                return None;
            }
            let mounted_by = t
                .spec
                .all_containers()
                .filter(|(_, _, c)| c.volume_mounts.iter().any(|m| m.name == vol.name))
                .map(|(kind, _, c)| (container_place(kind, c), c))
                .collect();
            Some(ModelVolume {
                name: &vol.name,
                text,
                artifact,
                mounted_by,
            })
        })
        .collect()
}

/// The images whose attestations the caller must fetch and verify (with
/// [`crate::verify_for_admission`]) before calling [`decide`]: pinned container images the
/// policy covers, and the pinned images of the containers that mount a covered image volume
/// (whose referrers hold the attestation naming the artifact), each once.
pub fn lookups(policy: &Policy, subject: &Subject<'_>) -> Vec<ImageRef> {
    Prepared::new(policy, subject).lookups(policy)
}

fn push_unique(out: &mut Vec<ImageRef>, r: ImageRef) {
    if r.digest.is_some() && !out.iter().any(|o| o.pinned() == r.pinned()) {
        out.push(r);
    }
}

fn parsed_image(c: &Container) -> Option<ImageRef> {
    c.image.as_deref().and_then(|s| ImageRef::parse(s).ok())
}

fn template_lookups(policy: &Policy, t: &PodTemplate) -> Vec<ImageRef> {
    let mut out: Vec<ImageRef> = Vec::new();
    for (_, _, c) in t.spec.all_containers() {
        if let Some(r) = parsed_image(c)
            && policy.covers(&r.repository)
        {
            push_unique(&mut out, r);
        }
    }
    for v in model_volumes(policy, t) {
        if v.artifact.digest.is_none() {
            continue;
        }
        // Unmounted: any of the Pod's images may hold the attestation naming it.
        let containers: Vec<&Container> = if v.mounted_by.is_empty() {
            t.spec.all_containers().map(|(_, _, c)| c).collect()
        } else {
            v.mounted_by.iter().map(|(_, c)| *c).collect()
        };
        for c in containers {
            if let Some(r) = parsed_image(c) {
                push_unique(&mut out, r);
            }
        }
    }
    out
}

fn attest_hint(pinned: &str) -> String {
    format!(
        "attest and push it: `vouch attest --image {pinned} --model MODEL_DIR --key KEY --push`"
    )
}

fn pair_command(image: &str, artifact: &str) -> String {
    format!("`vouch attest --image {image} --model-artifact {artifact} --key KEY --push`")
}

/// Decide `subject` under `policy`, given the verified attestations of the images that
/// [`lookups`] named. Pure: no I/O, no clock.
pub fn decide(policy: &Policy, subject: &Subject<'_>, results: &Attestations) -> Decision {
    Prepared::new(policy, subject).decide(policy, results)
}

/// The model pin annotation as read from the template.
struct Pin {
    annotation: String,
    /// The value, trimmed, when present.
    value: Option<String>,
    /// The value is `sha256:<64 hex>`.
    valid: bool,
    /// Where it is, for messages.
    place: String,
}

/// What the decision reads besides the template: the policy, the verified results, and
/// for whom the hints are worded.
struct Ctx<'a> {
    policy: &'a Policy,
    results: &'a Attestations,
    caller: Caller,
    pin: Pin,
}

impl Ctx<'_> {
    /// The checked attestations of `pinned`, or a "could not verify" finding.
    fn looked_up(
        &self,
        pinned: &str,
        place: &str,
        text: &str,
        findings: &mut Vec<Finding>,
    ) -> Option<&ImageAttestations> {
        match self.results.get(pinned) {
            None => {
                findings.push(Finding {
                    place: place.to_owned(),
                    image: Some(text.to_owned()),
                    problem: "could not verify: its attestations were not looked up".into(),
                    hint: None,
                    undecided: true,
                });
                None
            }
            Some(Lookup::Unavailable(why)) => {
                findings.push(Finding {
                    place: place.to_owned(),
                    image: Some(text.to_owned()),
                    problem: format!("could not verify its attestations: {why}"),
                    hint: Some(self.caller.unreachable_hint().into()),
                    undecided: true,
                });
                None
            }
            Some(Lookup::Checked(a)) => Some(a),
        }
    }
}

fn authority_list(rule: &ImageRule) -> String {
    rule.authorities
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The attestations in `checked` by one of `rule`'s authorities.
fn trusted_by<'a>(checked: &'a ImageAttestations, rule: &ImageRule) -> Vec<&'a TrustedAttestation> {
    checked
        .verified()
        .iter()
        .filter(|v| rule.authorities.contains(&v.authority))
        .collect()
}

/// Why no attestation in `checked` is by one of `rule`'s authorities (`checked` not empty).
fn untrusted_reasons(checked: &ImageAttestations, rule: &ImageRule) -> String {
    let authorities = authority_list(rule);
    let mut why = checked.rejected().to_vec();
    for v in checked.verified() {
        why.push(format!(
            "an attestation by `{}` is valid, but rule `{}` accepts only {authorities}",
            v.authority, rule.glob
        ));
    }
    why.join("; ")
}

fn remember(models: &mut Vec<String>, m: String) {
    if !models.contains(&m) {
        models.push(m);
    }
}

fn decide_template(
    policy: &Policy,
    namespace: &str,
    t: &PodTemplate,
    results: &Attestations,
    caller: Caller,
) -> Decision {
    let mut findings: Vec<Finding> = Vec::new();
    let ann = policy.model_pin_annotation.clone();
    let value = t.annotations.get(&ann).map(|p| p.trim().to_owned());
    let valid = value.as_deref().is_some_and(is_sha256);
    let pin_place = if t.kind == "Pod" {
        "the Pod".to_owned()
    } else {
        format!("the pod template (`{}`)", t.path)
    };
    if let Some(p) = &value
        && !valid
    {
        findings.push(Finding {
            place: pin_place.clone(),
            image: None,
            problem: format!("annotation `{ann}` is `{p}`, not `sha256:<64 hex digits>`"),
            hint: Some("set it to the model digest that `vouch attest` printed".into()),
            undecided: false,
        });
    }
    let ctx = Ctx {
        policy,
        results,
        caller,
        pin: Pin {
            annotation: ann,
            value,
            valid,
            place: pin_place,
        },
    };
    let volumes = model_volumes(policy, t);
    let mut needs_init = false;
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
        // A container that mounts a model artifact (a covered image volume) gets its model
        // from the runtime, pulled by digest and read-only: the pair is checked below, and
        // no vouch-init is needed for it. Any other covered container keeps its model on
        // another volume, which vouch-init must check.
        let serves_volume = u
            .container
            .is_some_and(|c| volumes.iter().any(|v| v.is_mounted_by(c)));
        if covered && u.container.is_some() && !serves_volume {
            needs_init = true;
        }
        let Some(pinned) = r.pinned() else {
            if policy.require_digest || covered {
                findings.push(unpinned(&u.place, text, &r, covered, u.container.is_none()));
            }
            continue;
        };
        if !covered || serves_volume {
            continue;
        }
        // Image volumes are checked with the containers that mount them (below): their
        // attestation is stored next to the server image, not next to the artifact.
        if u.container.is_none() {
            continue;
        }
        check_image(
            &ctx,
            &u.place,
            text,
            &r,
            &pinned,
            &mut findings,
            &mut attested_models,
        );
    }
    for v in &volumes {
        check_model_volume(&ctx, t, v, &mut findings, &mut attested_models);
    }
    if needs_init {
        check_init(policy, t, ctx.pin.value.as_deref(), &mut findings);
    }
    finish(policy, namespace, t, findings, &attested_models)
}

fn unpinned(place: &str, text: &str, r: &ImageRef, covered: bool, volume: bool) -> Finding {
    let (why, hint) = match (covered, volume) {
        (true, true) => (
            "is not pinned by digest; the policy requires a combined attestation that names this model artifact, which can only name a digest",
            artifact_pin_hint(r, text),
        ),
        (true, false) => (
            "is not pinned by digest; the policy requires a combined attestation for it, which can only cover a digest",
            image_pin_hint(r, text),
        ),
        (false, true) => (
            "is not pinned by digest (the policy sets `requireDigest`)",
            artifact_pin_hint(r, text),
        ),
        (false, false) => (
            "is not pinned by digest (the policy sets `requireDigest`)",
            image_pin_hint(r, text),
        ),
    };
    Finding {
        place: place.to_owned(),
        image: Some(text.to_owned()),
        problem: why.into(),
        hint: Some(hint),
        undecided: false,
    }
}

fn artifact_pin_hint(r: &ImageRef, text: &str) -> String {
    format!(
        "pin the artifact: `{}@sha256:<digest>` (`vouch model push` prints the reference with its digest; `oras resolve {text}` prints the digest of one already pushed)",
        r.repository
    )
}

fn image_pin_hint(r: &ImageRef, text: &str) -> String {
    format!(
        "pin the image: `{}@sha256:<digest>` (`skopeo inspect --format '{{{{.Digest}}}}' docker://{text}` prints the digest)",
        r.repository
    )
}

/// A covered container image whose model is not an image volume: an attestation by every
/// rule's authorities, for the model the Pod pins.
fn check_image(
    ctx: &Ctx<'_>,
    place: &str,
    text: &str,
    r: &ImageRef,
    pinned: &str,
    findings: &mut Vec<Finding>,
    attested_models: &mut Vec<String>,
) {
    let Some(checked) = ctx.looked_up(pinned, place, text, findings) else {
        return;
    };
    let ann = &ctx.pin.annotation;
    for rule in ctx.policy.rules_for(&r.repository) {
        let trusted = trusted_by(checked, rule);
        let authorities = authority_list(rule);
        if trusted.is_empty() {
            let (problem, hint) = if checked.is_empty() {
                (
                    format!("no combined attestation found for {pinned}"),
                    attest_hint(pinned),
                )
            } else {
                (
                    format!(
                        "no valid combined attestation by {authorities} (rule `{}`): {}",
                        rule.glob,
                        untrusted_reasons(checked, rule)
                    ),
                    format!(
                        "sign with a key of {authorities}: `vouch attest --image {pinned} --model MODEL_DIR --key KEY --push`"
                    ),
                )
            };
            findings.push(Finding {
                place: place.to_owned(),
                image: Some(text.to_owned()),
                problem,
                hint: Some(hint),
                undecided: false,
            });
            continue;
        }
        let mut models: Vec<String> = Vec::new();
        for v in &trusted {
            remember(&mut models, v.attestation.get().0.model.digest.to_string());
        }
        match ctx.pin.value.as_deref() {
            None => findings.push(Finding {
                place: ctx.pin.place.clone(),
                image: Some(text.to_owned()),
                problem: format!("has no model pin annotation `{ann}`"),
                hint: Some(format!(
                    "add `metadata.annotations: {{\"{ann}\": \"{}\"}}` (the attested model digest)",
                    models
                        .first()
                        .map_or("sha256:<model digest>", String::as_str)
                )),
                undecided: false,
            }),
            Some(p) if ctx.pin.valid => {
                if let Some(v) = trusted
                    .iter()
                    .find(|v| vouch_attest::check_pin(&v.attestation, p).is_ok())
                {
                    remember(
                        attested_models,
                        v.attestation.get().0.model.digest.to_string(),
                    );
                } else {
                    findings.push(Finding {
                        place: place.to_owned(),
                        image: Some(text.to_owned()),
                        problem: format!(
                            "the Pod pins model {p} (`{ann}`), but the attestation for this image is for model {}",
                            models.join(", ")
                        ),
                        hint: Some(format!(
                            "pin the attested model (`{ann}: {}`), or attest the model you mean to run: {}",
                            models.first().map_or("", String::as_str),
                            attest_hint(pinned)
                        )),
                        undecided: false,
                    });
                }
            }
            Some(_) => {}
        }
    }
}

/// A model artifact mounted as an image volume: for every container that mounts it, an
/// attestation stored next to that container's image, by the authorities of every rule that
/// covers the artifact or the image, that covers the image **and** names the artifact.
fn check_model_volume(
    ctx: &Ctx<'_>,
    t: &PodTemplate,
    v: &ModelVolume<'_>,
    findings: &mut Vec<Finding>,
    attested_models: &mut Vec<String>,
) {
    // Not pinned: denied as such above; there is no digest to look for.
    let (Some(artifact), Some(digest)) = (v.artifact.pinned(), v.artifact.digest) else {
        return;
    };
    let digest = digest.to_string();
    if v.mounted_by.is_empty() {
        check_unmounted(ctx, t, v, &artifact, &digest, findings);
        return;
    }
    let policy = ctx.policy;
    let ann = &ctx.pin.annotation;
    for (place, c) in &v.mounted_by {
        // A container without a valid image was reported above.
        let Some(text) = c.image.as_deref().filter(|s| !s.trim().is_empty()) else {
            continue;
        };
        let Ok(r) = ImageRef::parse(text) else {
            continue;
        };
        let Some(pinned) = r.pinned() else {
            // Reported above when the policy requires digests or covers the image.
            if !(policy.require_digest || policy.covers(&r.repository)) {
                findings.push(Finding {
                    place: place.clone(),
                    image: Some(text.to_owned()),
                    problem: format!(
                        "mounts model artifact {artifact} (image volume `{}`), but its image is not pinned by digest: the attestation that pairs them can only name a digest",
                        v.name
                    ),
                    hint: Some(image_pin_hint(&r, text)),
                    undecided: false,
                });
            }
            continue;
        };
        let Some(checked) = ctx.looked_up(&pinned, place, text, findings) else {
            continue;
        };
        let mut rules: Vec<&ImageRule> = policy.rules_for(&v.artifact.repository).collect();
        for rule in policy.rules_for(&r.repository) {
            if !rules.iter().any(|x| std::ptr::eq(*x, rule)) {
                rules.push(rule);
            }
        }
        for rule in rules {
            let trusted = trusted_by(checked, rule);
            let authorities = authority_list(rule);
            let naming: Vec<&TrustedAttestation> = trusted
                .iter()
                .copied()
                .filter(|a| vouch_attest::check_artifact(&a.attestation, &digest).is_ok())
                .collect();
            if naming.is_empty() && trusted.is_empty() {
                // The server half: this image is not attested (with this artifact or at all).
                let why = if checked.is_empty() {
                    format!("no combined attestation found for {pinned}")
                } else {
                    format!(
                        "no valid combined attestation by {authorities} (rule `{}`) for it: {}",
                        rule.glob,
                        untrusted_reasons(checked, rule)
                    )
                };
                findings.push(Finding {
                    place: place.clone(),
                    image: Some(text.to_owned()),
                    problem: format!(
                        "mounts model artifact {artifact} (image volume `{}`), but its image is not attested with that artifact (the server image differs from the attested pair): {why}",
                        v.name
                    ),
                    hint: Some(format!(
                        "run the image the artifact was attested with, or attest this pair and push it: {}",
                        pair_command(&pinned, &artifact)
                    )),
                    undecided: false,
                });
                continue;
            }
            if naming.is_empty() {
                // The artifact half: the image is attested, with another artifact.
                let mut found: Vec<String> = Vec::new();
                let mut signers: Vec<String> = Vec::new();
                let mut directories = false;
                for a in &trusted {
                    remember(&mut signers, format!("`{}`", a.authority));
                    match &a.attestation.get().0.model.artifact {
                        Some(x) => remember(&mut found, format!("{}@{}", x.name, x.digest)),
                        None => directories = true,
                    }
                }
                let named = match (found.is_empty(), directories) {
                    (true, _) => {
                        format!("attests a model directory, not model artifact {artifact}")
                    }
                    (false, false) => {
                        format!("names model artifact {}, not {artifact}", found.join(", "))
                    }
                    (false, true) => format!(
                        "names model artifact {}, not {artifact} (another attests a model directory)",
                        found.join(", ")
                    ),
                };
                let attested = found
                    .first()
                    .map(|a| format!("mount the attested artifact (`{a}`), or "))
                    .unwrap_or_default();
                findings.push(Finding {
                    place: format!("image volume `{}`", v.name),
                    image: Some(v.text.to_owned()),
                    problem: format!(
                        "is another model artifact than the one attested with the image of {place} (the artifact differs from the attested pair): the attestation of `{text}` by {} {named}",
                        signers.join(", "),
                    ),
                    hint: Some(format!(
                        "{attested}attest this pair and push it: {}",
                        pair_command(&pinned, &artifact)
                    )),
                    undecided: false,
                });
                continue;
            }
            let model_of = |a: &TrustedAttestation| a.attestation.get().0.model.digest.to_string();
            match ctx.pin.value.as_deref() {
                // The pin annotation is not needed here (the reference pins the artifact),
                // but one that is there must agree: it only ever adds a requirement.
                Some(p) if ctx.pin.valid => {
                    if let Some(a) = naming
                        .iter()
                        .find(|a| vouch_attest::check_pin(&a.attestation, p).is_ok())
                    {
                        remember(
                            attested_models,
                            format!("{} (artifact {artifact})", model_of(a)),
                        );
                    } else {
                        let mut models: Vec<String> = Vec::new();
                        for a in &naming {
                            remember(&mut models, model_of(a));
                        }
                        findings.push(Finding {
                            place: place.clone(),
                            image: Some(text.to_owned()),
                            problem: format!(
                                "the Pod pins model {p} (`{ann}`), but the attestation pairing this image with model artifact {artifact} is for model {}",
                                models.join(", ")
                            ),
                            hint: Some(format!(
                                "pin the attested model (`{ann}: {}`), or remove the annotation: the image volume's reference pins the artifact",
                                models.first().map_or("", String::as_str)
                            )),
                            undecided: false,
                        });
                    }
                }
                _ => {
                    if let Some(a) = naming.first() {
                        remember(
                            attested_models,
                            format!("{} (artifact {artifact})", model_of(a)),
                        );
                    }
                }
            }
        }
    }
}

/// An image volume no container mounts. Nothing in this Pod reads it (volumes and mounts
/// cannot change later; an ephemeral container that mounts it is a new review), but the
/// runtime still pulls it: it needs, for every rule that covers the artifact, an
/// attestation by that rule's authorities, stored next to one of the Pod's images, that
/// names it.
fn check_unmounted(
    ctx: &Ctx<'_>,
    t: &PodTemplate,
    v: &ModelVolume<'_>,
    artifact: &str,
    digest: &str,
    findings: &mut Vec<Finding>,
) {
    let candidates: Vec<String> = t
        .spec
        .all_containers()
        .filter_map(|(_, _, c)| parsed_image(c)?.pinned())
        .collect();
    let place = format!("image volume `{}`", v.name);
    for rule in ctx.policy.rules_for(&v.artifact.repository) {
        let mut missing: Vec<String> = Vec::new();
        let mut named = false;
        for pinned in &candidates {
            match ctx.results.get(pinned) {
                Some(Lookup::Checked(a)) => {
                    named |= trusted_by(a, rule)
                        .iter()
                        .any(|x| vouch_attest::check_artifact(&x.attestation, digest).is_ok());
                }
                Some(Lookup::Unavailable(why)) => missing.push(format!("{pinned}: {why}")),
                None => missing.push(format!("{pinned}: not looked up")),
            }
        }
        if named {
            continue;
        }
        let authorities = authority_list(rule);
        if missing.is_empty() {
            let server = candidates
                .first()
                .map_or("SERVER@sha256:<digest>", String::as_str);
            findings.push(Finding {
                place: place.clone(),
                image: Some(v.text.to_owned()),
                problem: format!(
                    "is mounted by no container, and no attestation by {authorities} (rule `{}`) stored next to the Pod's images names model artifact {artifact}",
                    rule.glob
                ),
                hint: Some(format!(
                    "mount it in the container that serves the model, attested with it ({}), or remove the volume",
                    pair_command(server, artifact)
                )),
                undecided: false,
            });
        } else {
            findings.push(Finding {
                place: place.clone(),
                image: Some(v.text.to_owned()),
                problem: format!(
                    "could not verify: it is mounted by no container, and the attestations of the Pod's images could not all be looked up ({})",
                    missing.join("; ")
                ),
                hint: Some(ctx.caller.unreachable_hint().into()),
                undecided: true,
            });
        }
    }
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
    let Some(wanted) = policy.init_verifier_image.as_ref() else {
        findings.push(Finding {
            place: "initContainers".into(),
            image: None,
            problem: "the model is not mounted as an image volume, and the policy names no `initVerifierImage`: nothing may check the model bytes before the model server starts".into(),
            hint: Some(
                "mount the model as an attested image volume (deploy/examples/pod-image-volume.yaml), or set `initVerifierImage` in the policy to the vouch-init image by digest and add that init container (deploy/examples/pod-model-server.yaml)".into(),
            ),
            undecided: false,
        });
        return;
    };
    let wanted = Some(wanted);
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
