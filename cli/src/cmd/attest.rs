//! `vouch attest`, `vouch verify`, `vouch inspect`: the combined attestation.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde_json::json;
use vouch_attest::{Attestation, CheckOptions, Model};
use vouch_bundle::Bundle;
use vouch_model::{Digest, ScanOptions};
use vouch_trust::{Signer, Verified};

use super::model::{hash_model, human_bytes, ignore_set, load_trust, model_root, print_json};
use super::registry;
use crate::args::{AttestArgs, InspectArgs, TrustArgs, VerifyArgs};
use crate::failure::{Failure, Reason, Result};
use crate::files;
use crate::progress::with_bar;

fn parse_annotations(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Failure::undecided(format!(
                "`--annotate {pair}` is not KEY=VALUE"
            )));
        };
        let valid = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
        if !valid {
            return Err(Failure::undecided(format!(
                "annotation key `{k}` may only use letters, digits and `._-/`"
            )));
        }
        if out.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(Failure::undecided(format!(
                "annotation `{k}` is given twice"
            )));
        }
    }
    Ok(out)
}

pub fn attest(args: AttestArgs) -> Result {
    let annotations = parse_annotations(&args.annotate)?;
    // The signer before any work: a missing key or token should fail first.
    let signer = super::keyless::DsseSigner::new(
        args.key.as_deref(),
        args.keyless.then_some(&args.keyless_args),
        Some(&args.keyless_args),
    )?;
    let quiet = args.output_format.quiet || args.output_format.json;

    // The image first: a wrong reference should fail before minutes of hashing.
    let (image, remote) = match (&args.image, &args.image_layout) {
        (Some(r), _) => {
            let (image, resolved) = registry::resolve(r, &args.registry)?;
            (image, Some(resolved))
        }
        (None, Some(layout)) => (
            registry::resolve_layout(layout, args.image_name.as_deref())?,
            None,
        ),
        (None, None) => {
            return Err(Failure::undecided(
                "give `--image REF` or `--image-layout DIR[:TAG]`",
            ));
        }
    };
    if !quiet && let Some(tag) = &image.reference {
        eprintln!(
            "resolved `{tag}` to {}; the digest is what gets signed",
            image.digest
        );
    }

    let model = match (&args.model, &args.model_artifact) {
        (_, Some(artifact)) => {
            if matches!(args.hashing.hash, crate::args::HashArg::Blake3) {
                return Err(Failure::undecided(
                    "`--hash blake3` cannot be used with `--model-artifact`: the artifact's layer digests are SHA-256",
                )
                .hint("drop `--hash`"));
            }
            super::model_artifact::attest_model(artifact, args.name.as_deref(), &args.registry)?
        }
        (Some(dir), None) => model_from_dir(&args, dir, quiet)?,
        (None, None) => {
            return Err(Failure::undecided(
                "give `--model DIR` or `--model-artifact REF@sha256:HEX`",
            ));
        }
    };
    let attestation = Attestation {
        images: vec![image],
        model,
        metadata: annotations,
    };
    let (bundle_json, keyless) =
        signer.sign_statement(vouch_attest::build_statement(&attestation))?;

    if let Some(out) = &args.output {
        files::write_atomic(out, &bundle_json, 0o644)?;
    }
    let pushed = match (&remote, args.push) {
        (Some(image), true) => Some(
            registry::push(
                image,
                &attestation.model.digest,
                &bundle_json,
                &args.registry,
            )?
            .reference,
        ),
        (None, true) => {
            return Err(Failure::undecided(
                "`--push` needs `--image REF`: an image layout has no registry to push to",
            ));
        }
        _ => None,
    };

    let a = &attestation;
    let img = a.images.first();
    if args.output_format.json {
        return print_json(&json!({
            "image": img.map(|i| format!("{}@{}", i.name, i.digest)),
            "model": a.model.name,
            "modelDigest": a.model.digest.to_string(),
            "modelArtifact": a.model.artifact.as_ref().map(|x| format!("{}@{}", x.name, x.digest)),
            "files": a.model.files.len(),
            "bytes": a.model.total_bytes(),
            "output": args.output,
            "pushed": pushed,
            "identity": keyless.as_ref().map(|k| &k.identity),
            "issuer": keyless.as_ref().map(|k| &k.issuer),
            "logIndex": keyless.as_ref().and_then(|k| k.log_index),
        }));
    }
    if !args.output_format.quiet {
        if let Some(i) = img {
            eprintln!("attested image {}@{}", i.name, i.digest);
        }
        eprintln!(
            "    with model `{}`: {} files, {}\nmodel digest: {}",
            a.model.name,
            a.model.files.len(),
            human_bytes(a.model.total_bytes()),
            a.model.digest
        );
        if let Some(k) = &keyless {
            let index = k
                .log_index
                .map(|i| format!(", Rekor log index {i}"))
                .unwrap_or_default();
            eprintln!("signed as {} (issuer {}){index}", k.identity, k.issuer);
        }
        if let Some(out) = &args.output {
            eprintln!("bundle: {}", out.display());
        }
        if let Some(p) = &pushed {
            eprintln!("pushed: {p}");
        }
        eprintln!(
            "pin it in the Pod: `vouch.dev/model-digest: \"{}\"`",
            a.model.digest
        );
    }
    Ok(())
}

/// The model of `vouch attest --model DIR`: the directory, hashed.
fn model_from_dir(args: &AttestArgs, dir: &Path, quiet: bool) -> Result<Model> {
    let root = model_root(dir)?;
    let mut ignore = ignore_set(&root, &args.hashing.ignore)?;
    if let Some(out) = &args.output
        && let Some(inside) = super::model::file_in_model(&root, out)
    {
        ignore.insert(inside);
    }
    let scan = ScanOptions {
        ignore: ignore.clone(),
        reject_hard_links: false,
    };
    let manifest = hash_model(
        &root,
        &scan,
        &super::model::hash_options(&args.hashing),
        quiet,
    )?;
    let name = args.name.clone().unwrap_or_else(|| {
        root.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    Model::from_manifest(&name, &manifest, ignore).map_err(Failure::undecided)
}

/// A bundle that verified under the trust given, with the attestation it carries.
type VerifiedAttestation = Verified<(Attestation, Signer)>;

fn verify_bundle_bytes(
    bytes: &[u8],
    trust: &super::keyless::BundleTrust,
) -> Result<VerifiedAttestation> {
    let verified = trust.verify(bytes)?;
    vouch_attest::from_verified(verified).map_err(attest_failure)
}

pub fn attest_failure(e: vouch_attest::Error) -> Failure {
    match e {
        vouch_attest::Error::Mismatch(diffs) => {
            let mut f = Failure::rejected(vouch_attest::Error::Mismatch(diffs.clone()))
                .code("model-mismatch");
            for d in &diffs {
                f = f.reason(Reason::difference(&d.difference, Some(d.role.name())));
            }
            f.hint("the files on disk are not the files CI attested: restore them from the release, or attest the model again")
        }
        vouch_attest::Error::Model(m) => m.into(),
        vouch_attest::Error::ImageNotCovered {
            ref wanted,
            ref covered,
        } => Failure::rejected(&e)
            .code("image-not-covered")
            .quiet_reason(Reason::new("image-not-covered", &e).expected_found(wanted, covered))
            .hint("this attestation was made for another image; attest this image digest with `vouch attest --image REF@sha256:...`"),
        vouch_attest::Error::PinMismatch {
            ref pinned,
            ref attested,
        } => Failure::rejected(&e)
            .code("pin-mismatch")
            .quiet_reason(Reason::new("pin-mismatch", &e).expected_found(pinned, attested))
            .hint("set the Pod's `vouch.dev/model-digest` to the digest printed by `vouch attest`"),
        vouch_attest::Error::ArtifactMismatch {
            ref expected,
            ref found,
        } => Failure::rejected(&e)
            .code("artifact-mismatch")
            .quiet_reason(Reason::new("artifact-mismatch", &e).expected_found(expected, found))
            .hint("this attestation was made for another model artifact; attest this one with `vouch attest --image REF@sha256:... --model-artifact REF@sha256:... --push`"),
        other => Failure::rejected(other).code("attestation"),
    }
}

/// The bundles to check: the given file, or every attestation attached to the image.
fn candidates(args: &VerifyArgs) -> Result<Vec<(String, Vec<u8>)>> {
    let candidates = match (&args.attestation, &args.image) {
        (Some(file), _) => vec![(
            file.display().to_string(),
            files::read_bundle(file, files::BundleUse::Attestation)?,
        )],
        (None, Some(r)) => registry::fetch(r, &args.registry)?,
        (None, None) => {
            return Err(Failure::undecided(
                "give `--attestation FILE` or `--image REF@sha256:HEX`",
            ));
        }
    };
    if candidates.is_empty() {
        let r = args.image.as_deref().unwrap_or_default();
        return Err(Failure::rejected(format!("no attestation is attached to `{r}`"))
            .hint("sign and push one in CI: `vouch attest --image REF@sha256:... --model DIR --key KEY --push`"));
    }
    Ok(candidates)
}

/// The one failure, or all of them as details (with their own details and the first hint
/// when `nested`).
fn none_passed(mut failures: Vec<(&(String, Vec<u8>), Failure)>, nested: bool) -> Failure {
    if let [(_, only)] = failures.as_mut_slice() {
        return std::mem::replace(only, Failure::rejected(""));
    }
    let mut f = Failure::rejected(format!(
        "none of the {} attestations passed",
        failures.len()
    ));
    for ((source, _), failure) in &failures {
        f = f.detail(format!("{source}: {}", failure.message));
        if nested {
            for d in &failure.details {
                f = f.detail(format!("{source}: {d}"));
            }
        }
        for mut r in failure.errors() {
            r.message = format!("{source}: {}", r.message);
            f = f.quiet_reason(r);
        }
    }
    if nested && let Some(h) = failures.iter().find_map(|(_, f)| f.hints.first()) {
        f = f.hint(h);
    }
    f
}

/// `--key` or `--certificate-chain`: the first candidate that passes every check.
fn verify_with_trust(
    args: &VerifyArgs,
    candidates: &[(String, Vec<u8>)],
) -> Result<(String, VerifiedAttestation)> {
    let trust = match (
        &args.trust.certificate_identity,
        &args.certificate_oidc_issuer,
    ) {
        (Some(identity), Some(issuer)) => {
            super::keyless::BundleTrust::keyless(identity, issuer, args.trusted_root.as_deref())?
        }
        _ => super::keyless::BundleTrust::Classic(load_trust(&TrustArgs {
            key: args.trust.key.clone(),
            certificate_chain: args.trust.certificate_chain.clone(),
            certificate_identity: None,
        })?),
    };
    let image_digest = match &args.image {
        Some(r) => Some(registry::require_digest(r)?),
        None => None,
    };
    let artifact_digest = artifact_digest(args)?;
    // Accept the first candidate that passes every check; report why the others failed.
    vouch_attest::first_accepted(candidates, |(_, bytes)| {
        let v = verify_bundle_bytes(bytes, &trust)?;
        if let Some(d) = &image_digest {
            vouch_attest::covered_image(&v, d).map_err(attest_failure)?;
        }
        if let Some(pin) = &args.expect_model_digest {
            vouch_attest::check_pin(&v, pin).map_err(attest_failure)?;
        }
        if let Some(d) = &artifact_digest {
            vouch_attest::check_artifact(&v, d).map_err(attest_failure)?;
        }
        Ok(v)
    })
    .map(|((source, _), v)| (source.clone(), v))
    .map_err(|failures| none_passed(failures, false))
}

/// The digest of `--model-artifact REF@sha256:HEX` (a tag is refused with a hint).
fn artifact_digest(args: &VerifyArgs) -> Result<Option<String>> {
    match &args.model_artifact {
        Some(r) => Ok(Some(registry::require_digest(r)?.to_string())),
        None => Ok(None),
    }
}

/// The policy, and the image it decides by, before anything is fetched.
struct PolicyTarget {
    policy: vouch_policy::Policy,
    image: vouch_policy::ImageRef,
}

/// `--policy FILE`: load it and check that it has something to say about `--image`.
fn policy_target(args: &VerifyArgs, path: &Path) -> Result<PolicyTarget> {
    let Some(reference) = &args.image else {
        return Err(Failure::undecided(
            "`--policy` needs `--image REF@sha256:HEX`: a policy decides by image (its `images` rules name who may sign each repository), and an attestation file alone does not say which image is being checked",
        )
        .hint(format!(
            "`vouch verify --attestation {} --image REGISTRY/REPOSITORY@sha256:HEX --policy {}`",
            args.attestation
                .as_ref()
                .map_or_else(|| "FILE".to_owned(), |f| f.display().to_string()),
            path.display()
        )));
    };
    registry::require_digest(reference)?;
    let image = vouch_policy::ImageRef::parse(reference)
        .map_err(|m| Failure::undecided(format!("`--image {reference}`: {m}")))?;
    let policy = vouch_policy::Policy::load(path).map_err(|e| {
        Failure::undecided(e).hint(format!(
            "see `deploy/policy.example.yaml` for a commented policy; checked file: `{}`",
            path.display()
        ))
    })?;
    if let Err(e) = policy.signers_for(&image.repository) {
        return Err(Failure::rejected(format!("`{}`: {e}", path.display())).hint(e.hint()));
    }
    Ok(PolicyTarget { policy, image })
}

/// `--policy FILE`: the first candidate an authority of the image's rules verified that
/// also passes the model pin, with the authority's name.
fn verify_with_policy(
    args: &VerifyArgs,
    target: &PolicyTarget,
    candidates: &[(String, Vec<u8>)],
) -> Result<(String, VerifiedAttestation, String)> {
    let PolicyTarget { policy, image } = target;
    let trusted = format!(
        "the policy trusts {} for `{}`",
        policy.authority_names_for(&image.repository),
        image.repository
    );
    let now = SystemTime::now();
    let artifact_digest = artifact_digest(args)?;
    vouch_attest::first_accepted(candidates, |(_, bytes)| {
        let result = vouch_policy::verify_image(policy, image, &[bytes], now);
        if let Some(t) = result.verified().first() {
            if let Some(pin) = &args.expect_model_digest {
                vouch_attest::check_pin(&t.attestation, pin).map_err(attest_failure)?;
            }
            if let Some(d) = &artifact_digest {
                vouch_attest::check_artifact(&t.attestation, d).map_err(attest_failure)?;
            }
            return Ok((t.attestation.clone(), t.authority.clone()));
        }
        let mut f = Failure::rejected(format!(
            "the attestation is not accepted: {trusted}, and none of them verified it for this image"
        ));
        for reason in result.rejected() {
            let reason = reason.strip_prefix("attestation #1: ").unwrap_or(reason);
            for part in reason.split("; ") {
                f = f.detail(part);
            }
        }
        Err(f.hint("sign the attestation with the key of one of these authorities (`vouch attest --key KEY`), or add its signer to the policy's authorities for this image"))
    })
    .map(|((source, _), (v, authority))| (source.clone(), v, authority))
    .map_err(|failures| none_passed(failures, true))
}

pub fn verify(args: VerifyArgs) -> Result {
    let (source, verified, authority) = match &args.trust.policy {
        Some(path) => {
            let target = policy_target(&args, path)?;
            let candidates = candidates(&args)?;
            let (s, v, a) = verify_with_policy(&args, &target, &candidates)?;
            (s, v, Some(a))
        }
        None => {
            let candidates = candidates(&args)?;
            let (s, v) = verify_with_trust(&args, &candidates)?;
            (s, v, None)
        }
    };
    let report = match &args.model {
        Some(dir) => {
            let root = model_root(dir)?;
            let quiet = args.output.quiet || args.output.json;
            let r = with_bar(None, quiet, |p| {
                vouch_attest::check_model(&root, &verified, &CheckOptions::default(), p)
            })
            .map_err(attest_failure)?;
            Some(r.into_inner())
        }
        None => None,
    };
    let (a, signer) = verified.get();
    if args.output.json {
        return print_json(&json!({
            "verified": true,
            "outcome": "verified",
            "source": source,
            "signer": signer.to_string(),
            "authority": authority,
            "images": a.images.iter().map(|i| format!("{}@{}", i.name, i.digest)).collect::<Vec<_>>(),
            "model": a.model.name,
            "modelDigest": a.model.digest.to_string(),
            "modelArtifact": a.model.artifact.as_ref().map(|x| format!("{}@{}", x.name, x.digest)),
            "modelChecked": report.as_ref().map(|r| json!({"files": r.files, "bytes": r.bytes})),
        }));
    }
    if !args.output.quiet {
        let mut out = format!("verified: attestation signed by {signer}");
        if let Some(name) = &authority {
            out.push_str(&format!(" (authority `{name}`)"));
        }
        out.push('\n');
        for i in &a.images {
            out.push_str(&format!("  image {}@{}\n", i.name, i.digest));
        }
        out.push_str(&format!("  model `{}` {}\n", a.model.name, a.model.digest));
        if let Some(x) = &a.model.artifact {
            out.push_str(&format!("  model artifact {}@{}\n", x.name, x.digest));
        }
        match &report {
            Some(r) => out.push_str(&format!(
                "  model files on disk match: {} files, {}\n",
                r.files,
                human_bytes(r.bytes)
            )),
            None => out.push_str("  model files not checked (add `--model DIR`)\n"),
        }
        print!("{out}");
    }
    Ok(())
}

fn digest_of(d: &Digest) -> String {
    d.to_string()
}

fn inspect_one(source: &str, bytes: &[u8], json_out: bool) -> Result<serde_json::Value> {
    let bundle = Bundle::from_json(bytes)?;
    let a = vouch_attest::parse_statement(&bundle.envelope.payload).map_err(attest_failure)?;
    let signer = match &bundle.material {
        vouch_bundle::Material::PublicKey { hint } => {
            format!("public key {}", hint.as_deref().unwrap_or("(no hint)"))
        }
        vouch_bundle::Material::Certificates(c) => {
            format!("certificate chain of {} certificate(s)", c.len())
        }
        _ => "unknown".to_owned(),
    };
    let mut by_role: BTreeMap<&str, Vec<&vouch_attest::ModelFile>> = BTreeMap::new();
    for f in &a.model.files {
        by_role.entry(f.role.name()).or_default().push(f);
    }
    if !json_out {
        let mut out = format!(
            "attestation: {source}\n  signature: NOT verified here (run `vouch verify`)\n  signer: {signer}\n"
        );
        for i in &a.images {
            out.push_str(&format!("  image: {}@{}", i.name, digest_of(&i.digest)));
            if let Some(r) = &i.reference {
                out.push_str(&format!(" (signed as `{r}`)"));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "  model: `{}` {} ({} files, {}, {})\n",
            a.model.name,
            a.model.digest,
            a.model.files.len(),
            human_bytes(a.model.total_bytes()),
            a.model.algorithm
        ));
        if let Some(x) = &a.model.artifact {
            out.push_str(&format!(
                "  model artifact: {}@{} (files read from its manifest)\n",
                x.name, x.digest
            ));
        }
        for (role, files) in &by_role {
            out.push_str(&format!("    {role}:\n"));
            for f in files {
                out.push_str(&format!(
                    "      {:<40} {:>10}\n",
                    f.path.as_str(),
                    human_bytes(f.size)
                ));
            }
        }
        if !a.metadata.is_empty() {
            out.push_str("  metadata:\n");
            for (k, v) in &a.metadata {
                out.push_str(&format!("    {k}: {v}\n"));
            }
        }
        print!("{out}");
    }
    Ok(json!({
        "source": source,
        "verified": false,
        "signer": signer,
        "images": a.images.iter().map(|i| json!({"name": i.name, "digest": digest_of(&i.digest), "reference": i.reference})).collect::<Vec<_>>(),
        "model": {
            "name": a.model.name,
            "digest": a.model.digest.to_string(),
            "hash": a.model.algorithm.name(),
            "artifact": a.model.artifact.as_ref().map(|x| json!({"name": x.name, "digest": x.digest.to_string(), "artifactType": x.media_type})),
            "files": a.model.files.iter().map(|f| json!({"path": f.path.as_str(), "size": f.size, "role": f.role.name()})).collect::<Vec<_>>(),
        },
        "metadata": a.metadata,
    }))
}

pub fn inspect(args: InspectArgs) -> Result {
    let items: Vec<(String, Vec<u8>)> = match (&args.file, &args.image) {
        (Some(f), _) => vec![(
            f.display().to_string(),
            files::read_bundle(f, files::BundleUse::Attestation)?,
        )],
        (None, Some(r)) => registry::fetch(r, &args.registry)?,
        (None, None) => {
            return Err(Failure::undecided(
                "give a bundle FILE or `--image REF@sha256:HEX`",
            ));
        }
    };
    if items.is_empty() {
        return Err(Failure::rejected(
            "no attestation is attached to this image",
        ));
    }
    let mut all = Vec::new();
    for (source, bytes) in &items {
        all.push(inspect_one(source, bytes, args.json)?);
    }
    if args.json {
        return print_json(&serde_json::Value::Array(all));
    }
    Ok(())
}
