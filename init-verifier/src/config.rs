//! Flags and environment, then a validated configuration.

use std::path::PathBuf;

use clap::Parser;

/// Verify a model directory against a signed combined attestation before the model starts.
///
/// With `--model-artifact REF@sha256:HEX` (clusters without image volumes), the model is pulled
/// from that ModelPack artifact into `--model-dir`, which must be empty, and verified while it
/// streams: the attestation must name the artifact, its manifest must list exactly the attested
/// files, and every file is moved into place only when all of them matched; on any failure
/// nothing is left in the directory. A directory that already holds files (a restarted Pod) is
/// checked in place as without `--model-artifact`.
///
/// Every flag can also be set with the environment variable shown, for Kubernetes manifests.
/// Exit status: 0 verified, 1 rejected, 2 could not decide.
///
/// Output: one JSON line on stdout in every outcome: `{"verified": true, "modelDigest", "files",
/// "bytes", "seconds"}` (and `"modelArtifact", "pulled"` with `--model-artifact`), or `{"verified": false, "outcome": "rejected"|"undecided",
/// "errors": [{"kind", "file", "role", "expected", "found", "message", "hint"}], ...}`. When it
/// does not verify, the reason is written twice on purpose: in that JSON line on stdout, and
/// as text on stderr (and in the termination log, for `kubectl describe pod`); on a terminal
/// both show.
#[derive(Debug, Parser)]
#[command(name = "vouch-init", version, about, max_term_width = 100)]
pub struct Args {
    /// The mounted model directory to check (with `--model-artifact`: the empty volume to
    /// pull into).
    #[arg(
        long,
        env = "VOUCH_MODEL_DIR",
        hide_env_values = true,
        value_name = "DIR"
    )]
    pub model_dir: PathBuf,
    /// The attestation bundle (a mounted Secret or ConfigMap, or a downward-API file).
    #[arg(
        long,
        env = "VOUCH_ATTESTATION",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub attestation: Option<PathBuf>,
    /// The image the attestation must cover, by digest (`REF@sha256:HEX`). Without
    /// `--attestation`, the attestations attached to it are fetched from its registry.
    #[arg(
        long,
        env = "VOUCH_IMAGE",
        hide_env_values = true,
        value_name = "REF@sha256:HEX"
    )]
    pub image: Option<String>,
    /// Pull the model from this ModelPack artifact (as `vouch model push` printed it) into
    /// `--model-dir`, verifying every file as it arrives. The attestation must name this
    /// artifact (`vouch attest --model-artifact`); it comes from `--attestation` or `--image`.
    #[arg(
        long,
        env = "VOUCH_MODEL_ARTIFACT",
        hide_env_values = true,
        value_name = "REF@sha256:HEX"
    )]
    pub model_artifact: Option<String>,
    /// Allow plain HTTP to a registry that is not on the loopback interface.
    #[arg(long, env = "VOUCH_ALLOW_INSECURE_REGISTRY", hide_env_values = true)]
    pub allow_insecure_registry: bool,
    /// PEM file of CA certificates trusted for the registry besides the system store;
    /// loopback registries are then spoken to over HTTPS too.
    #[arg(
        long,
        env = "VOUCH_REGISTRY_CA",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub registry_ca: Option<PathBuf>,
    /// PEM public key of the signer.
    #[arg(long, env = "VOUCH_KEY", hide_env_values = true, value_name = "PUB")]
    pub key: Option<PathBuf>,
    /// The trust policy (YAML, `vouch.dev/v1alpha1` `TrustPolicy`), instead of `--key`: the
    /// authorities of its `images` rules that match `--image` may sign. Needs `--image`.
    #[arg(
        long,
        env = "VOUCH_POLICY",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub policy: Option<PathBuf>,
    /// The model digest the Pod pins (`sha256:HEX`).
    #[arg(
        long,
        env = "VOUCH_EXPECT_MODEL_DIGEST",
        hide_env_values = true,
        value_name = "sha256:HEX"
    )]
    pub expect_model_digest: Option<String>,
    /// Where to write the reason, for `kubectl describe pod` [default:
    /// `/dev/termination-log` when it exists, as it does in a Kubernetes container].
    #[arg(
        long,
        env = "VOUCH_TERMINATION_LOG",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub termination_log: Option<PathBuf>,
    /// Hashing threads (0: one per available core).
    #[arg(
        long,
        env = "VOUCH_THREADS",
        hide_env_values = true,
        default_value_t = 0
    )]
    pub threads: usize,
}

/// A reference given to `flag`, which must be pinned by digest (a usage error otherwise).
fn pinned_flag(
    flag: &str,
    value: Option<&str>,
) -> Result<Option<vouch_oci::ImageReference>, Failure> {
    value
        .map(|r| {
            vouch_oci::ImageReference::parse_pinned(r).map_err(|e| {
                Failure::Undecided(format!(
                    "usage: `{flag}`: {e}{}",
                    e.hint().map(|h| format!("; {h}")).unwrap_or_default()
                ))
            })
        })
        .transpose()
}

/// A configuration that has passed every usage check.
#[derive(Debug)]
pub struct Config {
    pub model_dir: PathBuf,
    pub attestation: Source,
    pub image_digest: Option<vouch_model::Digest>,
    /// `--model-artifact`: pull the model from this artifact (pinned by digest).
    pub artifact: Option<vouch_oci::ImageReference>,
    /// How to reach registries (`--image`, `--model-artifact`).
    pub registry: vouch_oci::Options,
    pub trust: TrustSource,
    pub pin: Option<String>,
    pub threads: usize,
}

/// Whom to trust.
#[derive(Debug)]
pub enum TrustSource {
    /// One public key (PEM file).
    Key(PathBuf),
    /// The authorities a trust policy names for the image.
    Policy {
        /// The policy file.
        path: PathBuf,
        /// The pinned image whose rules decide the authorities.
        image: vouch_policy::ImageRef,
    },
}

/// Where the attestation comes from.
#[derive(Debug)]
pub enum Source {
    /// A mounted file.
    File(PathBuf),
    /// The attestations attached to this image (pinned by digest) in its registry.
    Registry { image: vouch_oci::ImageReference },
}

/// Why `vouch-init` did not verify. A message may carry `  - ` detail lines and ends with
/// its `hint: ` lines.
#[derive(Debug)]
pub enum Failure {
    /// Checked and rejected (exit 1).
    Rejected(String),
    /// Could not decide (exit 2).
    Undecided(String),
    /// Rejected: the model on disk differs from the attestation (exit 1); `reasons` are the
    /// differences as data, in the JSON shape `vouch --json` uses for `errors`.
    Differs {
        /// The JSON line's `kind`: `model-mismatch` (files), `artifact-mismatch` (the
        /// attestation names another model artifact).
        kind: &'static str,
        /// The text, as for `Rejected`.
        message: String,
        /// One JSON object per difference.
        reasons: Vec<serde_json::Value>,
    },
}

impl Failure {
    /// The text of the failure.
    pub fn message(&self) -> &str {
        match self {
            Self::Rejected(m) | Self::Undecided(m) | Self::Differs { message: m, .. } => m,
        }
    }
}

impl TryFrom<Args> for Config {
    type Error = Failure;

    fn try_from(a: Args) -> Result<Self, Failure> {
        let usage = |m: &str| Failure::Undecided(format!("usage: {m}"));
        let trust = match (a.key, a.policy, &a.image) {
            (Some(_), Some(_), _) => {
                return Err(usage(
                    "give either `--key PUB` (VOUCH_KEY) or `--policy FILE` (VOUCH_POLICY), not both",
                ));
            }
            (Some(key), None, _) => TrustSource::Key(key),
            (None, Some(_), None) => {
                return Err(usage(
                    "`--policy` needs the pinned image, `--image REF@sha256:HEX` (VOUCH_IMAGE): the policy's `images` rule for that image decides which authorities may sign",
                ));
            }
            (None, Some(path), Some(r)) => {
                let image = vouch_policy::ImageRef::parse(r)
                    .map_err(|m| usage(&format!("`--image`: {m}")))?;
                TrustSource::Policy { path, image }
            }
            (None, None, _) => {
                return Err(usage(
                    "give the signer's public key with `--key PUB` (VOUCH_KEY), or a trust policy with `--policy FILE` (VOUCH_POLICY) and `--image REF@sha256:HEX`",
                ));
            }
        };
        let image = pinned_flag("--image", a.image.as_deref())?;
        let image_digest = match &image {
            None => None,
            Some(r) => Some(
                r.digest()
                    .and_then(|d| d.strip_prefix("sha256:"))
                    .and_then(|hex| {
                        vouch_model::Digest::from_hex(vouch_model::HashAlgorithm::Sha256, hex)
                    })
                    .ok_or_else(|| usage("`--image` must carry a sha256 digest"))?,
            ),
        };
        let registry = vouch_oci::Options {
            allow_insecure: a.allow_insecure_registry,
            registry_ca: match &a.registry_ca {
                Some(p) => Some(vouch_oci::RegistryCa::from_file(p).map_err(|e| {
                    let hint = e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default();
                    Failure::Undecided(format!("{e}{hint}"))
                })?),
                None => None,
            },
            ..Default::default()
        };
        let artifact = pinned_flag("--model-artifact", a.model_artifact.as_deref())?;
        if let Some(r) = &artifact
            && !r.digest().is_some_and(vouch_oci::is_sha256_digest)
        {
            return Err(usage(&format!(
                "`--model-artifact {r}` must carry a sha256 digest (`REF@sha256:<64 hex digits>`)"
            )));
        }
        let attestation = match (a.attestation, image) {
            (Some(file), _) => Source::File(file),
            (None, Some(image)) => Source::Registry { image },
            (None, None) => {
                return Err(usage(
                    "give the attestation with `--attestation FILE` (VOUCH_ATTESTATION), or `--image REF@sha256:HEX` (VOUCH_IMAGE) to fetch it from the registry",
                ));
            }
        };
        if let Some(pin) = &a.expect_model_digest {
            let ok = pin
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                return Err(usage(&format!(
                    "`--expect-model-digest {pin}` is not `sha256:<64 hex digits>`"
                )));
            }
        }
        if a.expect_model_digest.is_none() && image_digest.is_none() && artifact.is_none() {
            return Err(usage(
                "pin what the attestation must cover: `--expect-model-digest sha256:HEX` (VOUCH_EXPECT_MODEL_DIGEST), `--image REF@sha256:HEX` and/or `--model-artifact REF@sha256:HEX`; without a pin any validly signed model would pass",
            ));
        }
        Ok(Self {
            model_dir: a.model_dir,
            attestation,
            image_digest,
            artifact,
            registry,
            trust,
            pin: a.expect_model_digest.map(|p| p.to_ascii_lowercase()),
            threads: a.threads,
        })
    }
}
