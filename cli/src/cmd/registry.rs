//! Registry and image-layout access for the CLI (blocking wrappers around `vouch-oci`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use vouch_attest::Image;
use vouch_model::{Digest, HashAlgorithm};
use vouch_oci::{BlockingRegistry, Credentials, ImageReference, Options, ResolvedImage};

use crate::args::RegistryArgs;
use crate::failure::{Failure, Result};

impl From<vouch_oci::Error> for Failure {
    fn from(e: vouch_oci::Error) -> Self {
        let hint = e.hint();
        let code = match &e {
            vouch_oci::Error::InvalidReference { .. } | vouch_oci::Error::DigestRequired { .. } => {
                "image-reference"
            }
            vouch_oci::Error::Layout { .. } => "image-layout",
            _ => "registry",
        };
        let f = Failure::undecided(&e).code(code);
        match hint {
            Some(h) => f.hint(h),
            None => f,
        }
    }
}

/// A digest from `REF@sha256:HEX`; a tag is refused with a hint.
pub fn require_digest(reference: &str) -> Result<Digest> {
    let r = ImageReference::parse_pinned(reference)?;
    r.digest()
        .and_then(|d| d.strip_prefix("sha256:"))
        .and_then(|hex| Digest::from_hex(HashAlgorithm::Sha256, hex))
        .ok_or_else(|| Failure::undecided(format!("`{reference}` has no sha256 digest")))
}

pub fn options(args: &RegistryArgs) -> Result<Options> {
    let credentials = match (&args.registry_username, &args.registry_password) {
        (Some(u), Some(p)) => Some(Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        }),
        (Some(_), None) => {
            return Err(Failure::undecided(
                "`--registry-username` needs a password: set VOUCH_REGISTRY_PASSWORD",
            ));
        }
        (None, Some(_)) => {
            return Err(Failure::undecided(
                "a registry password was given without `--registry-username`",
            ));
        }
        (None, None) => None,
    };
    Ok(Options {
        allow_insecure: args.allow_insecure_registry,
        registry_ca: match &args.registry_ca {
            Some(p) => Some(vouch_oci::RegistryCa::from_file(p)?),
            None => None,
        },
        credentials,
        // On the command line, as docker and skopeo do; the verifiers in the cluster never.
        credential_helpers: vouch_oci::Helpers::Run,
        ..Options::default()
    })
}

fn image_of(name: String, digest: &str, media_type: &str, tag: Option<String>) -> Result<Image> {
    let digest = digest
        .strip_prefix("sha256:")
        .and_then(|h| Digest::from_hex(HashAlgorithm::Sha256, h))
        .ok_or_else(|| Failure::undecided(format!("`{digest}` is not a sha256 digest")))?;
    Ok(Image {
        name,
        digest,
        media_type: Some(media_type.to_owned()),
        reference: tag,
    })
}

/// The image `reference` names in its registry (a tag is resolved to its digest).
pub fn resolve(reference: &str, args: &RegistryArgs) -> Result<(Image, ResolvedImage)> {
    let r = ImageReference::parse(reference)?;
    let registry = BlockingRegistry::for_reference(&r, &options(args)?)?;
    let resolved = registry.resolve(&r)?;
    let tag = resolved.tag.as_ref().map(|_| reference.to_owned());
    let image = image_of(r.name(), &resolved.digest, &resolved.media_type, tag)?;
    Ok((image, resolved))
}

/// The image `DIR[:TAG]` names in a local OCI image layout.
pub fn resolve_layout(spec: &str, name: Option<&str>) -> Result<Image> {
    let found = vouch_oci::layout::resolve(spec)?;
    let name = match name {
        Some(n) => n.to_owned(),
        None => found
            .dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "image".to_owned()),
    };
    let tag = found.tag.map(|t| format!("{spec} (tag {t})"));
    image_of(name, &found.digest, &found.media_type, tag)
}

/// Store `bundle` next to the image; returns where it went.
pub fn push(
    image: &ResolvedImage,
    model_digest: &Digest,
    bundle: &[u8],
    args: &RegistryArgs,
) -> Result<vouch_oci::PushedAttestation> {
    let registry = BlockingRegistry::for_reference(&image.reference, &options(args)?)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let annotations = BTreeMap::from([
        (
            vouch_oci::MODEL_DIGEST_ANNOTATION.to_owned(),
            model_digest.to_string(),
        ),
        (
            "org.opencontainers.image.created".to_owned(),
            vouch_trust::rfc3339(now),
        ),
    ]);
    Ok(registry.push_attestation(image, bundle, &annotations)?)
}

/// The attestation bundles attached to `reference` (pinned by digest), each with where it
/// came from.
pub fn fetch(reference: &str, args: &RegistryArgs) -> Result<Vec<(String, Vec<u8>)>> {
    let r = ImageReference::parse_pinned(reference)?;
    let registry = BlockingRegistry::for_reference(&r, &options(args)?)?;
    Ok(registry
        .fetch_attestations(&r)?
        .into_iter()
        .map(|a| (r.with_digest(&a.manifest_digest).to_string(), a.bundle))
        .collect())
}
