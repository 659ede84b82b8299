//! From bundle bytes (however they were fetched) to verified attestations for one image.

use std::collections::HashMap;
use std::time::SystemTime;

use vouch_attest::Attestation;
use vouch_bundle::Bundle;
use vouch_trust::{Signer, Trust, Verified};

use crate::image::ImageRef;
use crate::policy::{Authority, AuthorityKind, Policy, SubjectMatch};

/// An attestation that verified against a named authority and covers the image digest.
#[derive(Debug, Clone)]
pub struct TrustedAttestation {
    /// The authority whose key verified it.
    pub authority: String,
    /// The verified attestation.
    pub attestation: Verified<(Attestation, Signer)>,
}

/// What the bundles stored for one image established. Only [`verify_image`] builds one.
#[derive(Debug, Clone)]
pub struct ImageAttestations {
    verified: Vec<TrustedAttestation>,
    rejected: Vec<String>,
}

impl ImageAttestations {
    /// The attestations that verified and cover the image.
    pub fn verified(&self) -> &[TrustedAttestation] {
        &self.verified
    }

    /// Why each other bundle was not accepted.
    pub fn rejected(&self) -> &[String] {
        &self.rejected
    }

    /// No bundle at all was found.
    pub fn is_empty(&self) -> bool {
        self.verified.is_empty() && self.rejected.is_empty()
    }
}

/// The result of looking up one image.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The bundles were fetched and checked.
    Checked(ImageAttestations),
    /// They could not be fetched (registry unreachable, slow, refused): not a verdict.
    Unavailable(String),
}

/// Results per pinned image (`REPOSITORY@sha256:HEX`, [`ImageRef::pinned`]).
pub type Attestations = HashMap<String, Lookup>;

/// Check every bundle in `bundles` (JSON) against the authorities the policy names for
/// `image`, at time `now`. A bundle is accepted when one of those authorities verifies
/// its signature, it parses as a combined attestation, and it covers the image's digest.
pub fn verify_image(
    policy: &Policy,
    image: &ImageRef,
    bundles: &[impl AsRef<[u8]>],
    now: SystemTime,
) -> ImageAttestations {
    verify_with(
        policy.authorities_for(&image.repository),
        image,
        bundles,
        now,
    )
}

/// The admission decision's check of the bundles stored next to `image`: as
/// [`verify_image`], but against every authority of the policy, those of the image's own
/// rules first. An image's referrers also hold the attestations that pair it with a model
/// artifact mounted as an image volume, and the artifact's rule may name other authorities
/// than the image's, or the image may be covered by no rule at all; the decision then
/// counts, for each rule, only the attestations of that rule's authorities. Each bundle is
/// recorded under the first authority that verifies it. The result depends only on the
/// image, the bundles and the policy (never on the Pod), so it can be cached per image.
pub fn verify_for_admission(
    policy: &Policy,
    image: &ImageRef,
    bundles: &[impl AsRef<[u8]>],
    now: SystemTime,
) -> ImageAttestations {
    let mut authorities = policy.authorities_for(&image.repository);
    for a in &policy.authorities {
        if !authorities.iter().any(|b| b.name == a.name) {
            authorities.push(a);
        }
    }
    verify_with(authorities, image, bundles, now)
}

fn verify_with(
    authorities: Vec<&Authority>,
    image: &ImageRef,
    bundles: &[impl AsRef<[u8]>],
    now: SystemTime,
) -> ImageAttestations {
    let mut out = ImageAttestations {
        verified: Vec::new(),
        rejected: Vec::new(),
    };
    let Some(digest) = image.digest else {
        out.rejected
            .push("the image is not pinned by digest, so no attestation can cover it".into());
        return out;
    };
    for (n, bytes) in bundles.iter().enumerate() {
        let bytes = bytes.as_ref();
        let label = format!("attestation #{}", n + 1);
        // Parsed once, when a key authority needs it (keyless bundles are parsed by the
        // Sigstore verifier).
        let mut parsed: Option<Result<Bundle, String>> = None;
        let mut reasons: Vec<String> = Vec::new();
        let mut accepted = false;
        for authority in &authorities {
            let name = authority.name.as_str();
            let verified = match &authority.kind {
                AuthorityKind::Key(k) => {
                    let bundle = parsed
                        .get_or_insert_with(|| Bundle::from_json(bytes).map_err(|e| e.to_string()));
                    match bundle {
                        Ok(b) => vouch_trust::verify_envelope(b, &Trust::Key(k.clone()), now)
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(format!("not a bundle: {e}")),
                    }
                }
                AuthorityKind::Keyless {
                    issuer,
                    subject,
                    root,
                    ..
                } => {
                    let signer = match subject {
                        SubjectMatch::Exact(s) => vouch_trust::sigstore::Signer::Identity {
                            identity: s.clone(),
                            issuer: issuer.clone(),
                        },
                        SubjectMatch::RegExp(r) => vouch_trust::sigstore::Signer::IdentityPattern {
                            pattern: r.clone(),
                            issuer: issuer.clone(),
                        },
                    };
                    vouch_trust::verify_keyless_signer(bytes, root, &signer)
                        .map_err(|e| e.to_string())
                }
            };
            let payload = match verified {
                Ok(p) => p,
                Err(e) => {
                    reasons.push(format!("not signed by `{name}`: {e}"));
                    continue;
                }
            };
            let attestation = match vouch_attest::from_verified(payload) {
                Ok(a) => a,
                Err(e) => {
                    reasons.push(format!("signed by `{name}` but unusable: {e}"));
                    continue;
                }
            };
            if let Err(e) = vouch_attest::covered_image(&attestation, &digest) {
                reasons.push(format!("signed by `{name}`, but {e}"));
                continue;
            }
            out.verified.push(TrustedAttestation {
                authority: name.to_owned(),
                attestation,
            });
            accepted = true;
            break;
        }
        if !accepted {
            if authorities.is_empty() {
                reasons.push("the policy names no authority for this image".into());
            }
            out.rejected
                .push(format!("{label}: {}", reasons.join("; ")));
        }
    }
    out
}
