//! Errors: every one names the registry, repository or file it is about.

/// What went wrong talking to a registry or reading an image layout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference does not parse.
    #[error("`{reference}` is not an image reference: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// A digest was required and the reference has only a tag.
    #[error("`{reference}` names the image by tag; a digest is required")]
    DigestRequired { reference: String },
    /// Plain HTTP to a registry that is not on the loopback interface was not allowed.
    #[error("refusing plain HTTP to `{registry}`, which is not a loopback address")]
    InsecureRefused { registry: String },
    /// The registry could not be reached (connection refused, DNS, TLS, timeout).
    #[error("registry `{registry}` is unreachable: {reason}")]
    Unreachable { registry: String, reason: String },
    /// The registry's TLS certificate was refused (unknown CA, wrong host name, expired).
    #[error("registry `{registry}`: its TLS certificate is not trusted: {reason}")]
    Untrusted { registry: String, reason: String },
    /// There are no CA certificates to set up a registry client with.
    #[error(
        "no CA certificates were loaded from the system trust store (SSL_CERT_FILE, SSL_CERT_DIR, else /etc/ssl/certs): cannot set up the client for registry `{registry}`"
    )]
    NoTrustStore { registry: String },
    /// The `--registry-ca` file cannot be used.
    #[error("registry CA file `{path}`: {reason}")]
    RegistryCa { path: String, reason: String },
    /// The registry answered that the manifest or blob does not exist.
    #[error("`{reference}` was not found in the registry")]
    NotFound { reference: String },
    /// The registry refused the credentials or the operation.
    #[error("registry `{registry}` refused access: {reason}")]
    Denied { registry: String, reason: String },
    /// Any other registry error.
    #[error("registry `{registry}`: {what} failed: {reason}")]
    Registry {
        registry: String,
        what: &'static str,
        reason: String,
    },
    /// Content that does not match its descriptor, or that is not what it claims to be.
    #[error("{what} from `{origin}` is malformed: {reason}")]
    Malformed {
        what: &'static str,
        origin: String,
        reason: String,
    },
    /// A blob whose bytes are not the ones its descriptor names: another digest, or another
    /// size (`expected` and `found` say which).
    #[error(
        "`{file}` ({origin}): the registry returned other bytes: expected {expected}, found {found}"
    )]
    BlobDiffers {
        origin: String,
        file: String,
        expected: String,
        found: String,
    },
    /// An image layout that cannot be used.
    #[error("image layout `{path}`: {reason}")]
    Layout { path: String, reason: String },
    /// The docker config file is unreadable or malformed.
    #[error("docker config `{path}`: {reason}")]
    DockerConfig { path: String, reason: String },
    /// The async runtime could not be started.
    #[error("cannot start the network runtime: {0}")]
    Runtime(String),
}

impl Error {
    /// Whether the registry was unreachable (or timed out, or could not be spoken to over
    /// TLS): "could not decide", never "absent".
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Untrusted { .. } | Self::NoTrustStore { .. }
        )
    }

    /// A short instruction that usually fixes the problem.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::InvalidReference { reference, .. } if reference.contains('<') => Some(format!(
                "replace every `<...>` with a real value: an image digest comes from the registry (`skopeo inspect --format '{{{{.Digest}}}}' docker://{}`)",
                without_digest(reference)
            )),
            Self::DigestRequired { reference } => Some(format!(
                "use the digest form `{}@sha256:<64 hex digits>` (`skopeo inspect docker://{reference}` prints it)",
                without_tag(reference)
            )),
            Self::InsecureRefused { .. } => Some(
                "serve the registry over HTTPS, or pass `--allow-insecure-registry` if you accept plain HTTP"
                    .to_owned(),
            ),
            Self::Unreachable { registry, .. } => Some(format!(
                "check that `{registry}` is up and reachable from here; nothing was verified"
            )),
            Self::Untrusted { .. } => Some(
                "pass the CA certificate that signed the registry's certificate with `--registry-ca FILE` (vouch-init: VOUCH_REGISTRY_CA), or add it to the system trust store; nothing was verified"
                    .to_owned(),
            ),
            Self::NoTrustStore { .. } => Some(
                "install CA certificates (Debian: `ca-certificates`, /etc/ssl/certs/ca-certificates.crt; vouch's images ship them), or point SSL_CERT_FILE at a PEM file of CA certificates (the registry's CA will do)"
                    .to_owned(),
            ),
            Self::RegistryCa { .. } => Some(
                "`--registry-ca` takes a PEM file with the CA certificate(s) that signed the registry's TLS certificate (`-----BEGIN CERTIFICATE-----` blocks)"
                    .to_owned(),
            ),
            Self::BlobDiffers { .. } => Some(
                "the registry holds other bytes than the artifact's manifest names (its storage was changed, or something between rewrote them); push the model again from the release"
                    .to_owned(),
            ),
            Self::Denied { .. } => Some(
                "log in (`docker login` / `skopeo login`, read from ~/.docker/config.json or $DOCKER_CONFIG) or pass --registry-username and VOUCH_REGISTRY_PASSWORD; vouch-init and the webhook read only `auths` entries (a `kubectl create secret docker-registry` Secret), never credential helpers"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// `reference` without its `@digest` and placeholders after it.
fn without_digest(reference: &str) -> &str {
    reference.split('@').next().unwrap_or(reference)
}

/// `reference` without its `:tag` (a `:` after the last `/`; a registry port stays).
fn without_tag(reference: &str) -> &str {
    let last_slash = reference.rfind('/').unwrap_or(0);
    match reference.rfind(':') {
        Some(colon) if colon > last_slash => reference.get(..colon).unwrap_or(reference),
        _ => reference,
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
