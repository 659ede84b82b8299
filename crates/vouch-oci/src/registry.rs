//! The registry client: resolve an image, push an attestation next to it, fetch the
//! attestations stored for it. Async (the webhook); see `blocking` for the CLI.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};

use crate::auth::Credentials;
use crate::error::{Error, Result};
use crate::reference::ImageReference;
use crate::referrers::{self, Descriptor};
use crate::{
    BUNDLE_MEDIA_TYPE, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_BUNDLE_BYTES, MAX_MANIFEST_BYTES,
    OCI_INDEX, OCI_MANIFEST,
};

/// How to talk to registries.
#[derive(Debug, Clone)]
pub struct Options {
    /// Allow plain HTTP to registries that are not on the loopback interface. Loopback
    /// registries (`localhost`, `127.0.0.0/8`, `[::1]`) always use plain HTTP.
    pub allow_insecure: bool,
    /// Credentials to use; `None` reads the docker config for each registry.
    pub credentials: Option<Credentials>,
    /// Whether the docker config's credential helpers may be run (never by default).
    pub credential_helpers: crate::auth::Helpers,
    /// Deadline for each whole operation (resolve, push, fetch).
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allow_insecure: false,
            credentials: None,
            credential_helpers: crate::auth::Helpers::Never,
            timeout: Duration::from_secs(30),
        }
    }
}

/// An image resolved in its registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The repository pinned to the digest.
    pub reference: ImageReference,
    /// The manifest (or index) digest, `sha256:<hex>`.
    pub digest: String,
    /// The manifest media type.
    pub media_type: String,
    /// The manifest size in bytes.
    pub size: u64,
    /// The tag the caller gave, if it was a tag.
    pub tag: Option<String>,
}

/// Where a pushed attestation went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedAttestation {
    /// `registry/repository@sha256:<artifact manifest digest>`.
    pub reference: String,
    /// The artifact manifest digest.
    pub manifest_digest: String,
    /// The referrers tag-schema tag that lists it (`sha256-<hex>`).
    pub referrers_tag: String,
}

/// One attestation found for an image: the bundle bytes, re-hashed against their descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedAttestation {
    /// The artifact manifest digest.
    pub manifest_digest: String,
    /// The bundle JSON.
    pub bundle: Vec<u8>,
    /// The artifact's annotations (informative only).
    pub annotations: BTreeMap<String, String>,
}

/// A client for one registry host.
pub struct Registry {
    client: oci_client::Client,
    registry: String,
    auth: oci_client::secrets::RegistryAuth,
    timeout: Duration,
    /// Anonymous manifest reads, made without oci-client (see [`Registry::manifest`]); built
    /// on first use (at once for plain HTTP, where it loads no roots).
    direct: OnceLock<reqwest::Client>,
    plain: bool,
    /// The registry answered an anonymous read with 401: it wants a token handshake, so
    /// every later read goes through oci-client.
    wants_token: AtomicBool,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// A self-signed CA certificate whose key no longer exists (see `Registry::for_reference`).
const NO_TRUST_ANCHOR: &[u8] = include_bytes!("no-trust-anchor.pem");

const IMAGE_TYPES: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

impl Registry {
    /// A client for the registry of `reference`. No network traffic yet.
    pub fn for_reference(reference: &ImageReference, options: &Options) -> Result<Self> {
        let registry = reference.registry().to_owned();
        let plain = reference.is_loopback() || options.allow_insecure;
        let protocol = if plain {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        // A plain-HTTP client never speaks TLS, so it needs no roots: give it one anchor whose
        // private key was discarded when it was made. That keeps reqwest from loading every
        // certificate under /etc/ssl/certs (about 300 files, most of the run time of
        // `vouch verify --image` against a loopback registry), and a TLS connection it might
        // make anyway could never be trusted.
        let tls_certs_only = if plain {
            vec![Certificate {
                encoding: CertificateEncoding::Pem,
                data: NO_TRUST_ANCHOR.to_vec(),
            }]
        } else {
            Vec::new()
        };
        let config = ClientConfig {
            protocol,
            tls_certs_only,
            connect_timeout: Some(options.timeout.min(Duration::from_secs(10))),
            read_timeout: Some(options.timeout),
            user_agent: concat!("vouch/", env!("CARGO_PKG_VERSION")),
            // Never pick a platform behind the caller's back: indexes are signed as indexes.
            platform_resolver: None,
            ..ClientConfig::default()
        };
        let client =
            oci_client::Client::try_from(config).map_err(|e| setup_error(&registry, &e))?;
        let credentials = match &options.credentials {
            Some(c) => c.clone(),
            None => Credentials::from_docker_config(&registry, options.credential_helpers)?,
        };
        let this = Self {
            client,
            auth: credentials.to_auth(),
            registry,
            timeout: options.timeout,
            direct: OnceLock::new(),
            plain,
            wants_token: AtomicBool::new(false),
        };
        // Cheap without roots: made now rather than by the first burst of lookups at once.
        if plain && this.anonymous() {
            let _ = this.direct.set(this.direct_client()?);
        }
        Ok(this)
    }

    fn anonymous(&self) -> bool {
        matches!(self.auth, oci_client::secrets::RegistryAuth::Anonymous)
    }

    /// The manifest (or index) at `reference`, at most [`MAX_MANIFEST_BYTES`].
    ///
    /// Anonymous reads skip oci-client: once it holds any auth for a registry, even anonymous,
    /// it asks `GET /v2/` before every request, because an open registry hands out no token
    /// to remember. That doubled the requests of every lookup. A registry that wants a token
    /// answers the direct read with 401, and from then on oci-client does the handshake.
    async fn manifest(
        &self,
        reference: &ImageReference,
        accept: &[&str],
        what: &'static str,
    ) -> Result<Vec<u8>> {
        if self.anonymous() && !self.wants_token.load(Ordering::Relaxed) {
            match self.direct_manifest(reference, accept, what).await? {
                Some(bytes) => return Ok(bytes),
                None => self.wants_token.store(true, Ordering::Relaxed),
            }
        }
        let (bytes, _) = self
            .client
            .pull_manifest_raw(reference.as_oci(), &self.auth, accept)
            .await
            .map_err(|e| self.error(what, &reference.to_string(), e))?;
        Self::small(&bytes, &reference.to_string())?;
        Ok(bytes.to_vec())
    }

    /// A direct anonymous `GET .../manifests/<tag or digest>`; `None` on 401.
    async fn direct_manifest(
        &self,
        reference: &ImageReference,
        accept: &[&str],
        what: &'static str,
    ) -> Result<Option<Vec<u8>>> {
        let client = match self.direct.get() {
            Some(c) => c,
            None => {
                let c = self.direct_client()?;
                self.direct.get_or_init(|| c)
            }
        };
        let oci = reference.as_oci();
        let at = reference
            .digest()
            .or_else(|| reference.tag())
            .unwrap_or("latest");
        let url = format!(
            "{}://{}/v2/{}/manifests/{at}",
            if self.plain { "http" } else { "https" },
            oci.resolve_registry(),
            oci.repository(),
        );
        let origin = reference.to_string();
        let unreachable = |e: reqwest::Error| Error::Unreachable {
            registry: self.registry.clone(),
            reason: request_error_text(&e),
        };
        let mut response = client
            .get(&url)
            .header(http::header::ACCEPT, accept.join(", "))
            .send()
            .await
            .map_err(unreachable)?;
        match response.status().as_u16() {
            200 => {}
            401 => return Ok(None),
            404 => return Err(Error::NotFound { reference: origin }),
            403 => {
                return Err(Error::Denied {
                    registry: self.registry.clone(),
                    reason: format!("{what}: 403 Forbidden"),
                });
            }
            code => {
                return Err(Error::Registry {
                    registry: self.registry.clone(),
                    what,
                    reason: format!("HTTP {code} for {origin}"),
                });
            }
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            bytes.extend_from_slice(&chunk);
            Self::small(&bytes, &origin)?;
        }
        Ok(Some(bytes))
    }

    fn direct_client(&self) -> Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .read_timeout(self.timeout)
            .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")));
        if self.plain {
            // As in `for_reference`: no roots for a client that never speaks TLS.
            let anchor = reqwest::Certificate::from_pem(NO_TRUST_ANCHOR)
                .map_err(|e| setup_error(&self.registry, &e))?;
            b = b.tls_certs_only([anchor]);
        }
        b.build().map_err(|e| setup_error(&self.registry, &e))
    }

    /// The manifest at `reference` (tag or digest): digest, media type, size. A digest in
    /// the reference is checked against the bytes the registry returns.
    pub async fn resolve(&self, reference: &ImageReference) -> Result<ResolvedImage> {
        self.deadline(async {
            let bytes = self
                .manifest(reference, IMAGE_TYPES, "manifest fetch")
                .await?;
            let digest = self.checked(&bytes, reference.digest(), &reference.to_string())?;
            let media_type = manifest_media_type(&bytes).map_err(|reason| Error::Malformed {
                what: "image manifest",
                origin: reference.to_string(),
                reason,
            })?;
            Ok(ResolvedImage {
                reference: reference.with_digest(&digest),
                size: bytes.len() as u64,
                tag: reference.tag().map(str::to_owned),
                digest,
                media_type,
            })
        })
        .await
    }

    /// Store `bundle` as an OCI artifact attached to `image` and list it in the referrers
    /// tag-schema index (so that registries without a referrers API, and tools that copy
    /// tags, find it too).
    pub async fn push_attestation(
        &self,
        image: &ResolvedImage,
        bundle: &[u8],
        annotations: &BTreeMap<String, String>,
    ) -> Result<PushedAttestation> {
        self.deadline(async {
            let r = image.reference.as_oci();
            let what = image.reference.to_string();
            // The bundle rides inline in the manifest, and the manifest inline in the index
            // entry (see `referrers`); the blob and the manifest are pushed all the same.
            let layer = Descriptor::embedding(BUNDLE_MEDIA_TYPE, bundle);
            let subject = Descriptor {
                media_type: image.media_type.clone(),
                digest: image.digest.clone(),
                size: image.size,
                artifact_type: None,
                annotations: BTreeMap::new(),
                data: None,
            };
            let manifest = referrers::artifact_manifest(&layer, &subject, annotations);
            let manifest_digest = crate::sha256_digest(&manifest);

            // Blobs before the manifest that names them.
            self.client
                .store_auth_if_needed(&self.registry, &self.auth)
                .await;
            let config = referrers::EMPTY_CONFIG;
            self.client
                .push_blob(r, config.to_vec(), &crate::sha256_digest(config))
                .await
                .map_err(|e| self.error("config blob push", &what, e))?;
            self.client
                .push_blob(r, bundle.to_vec(), &layer.digest)
                .await
                .map_err(|e| self.error("bundle blob push", &what, e))?;
            let at = image.reference.with_digest(&manifest_digest);
            self.client
                .push_manifest_raw(at.as_oci(), manifest.clone(), content_type(OCI_MANIFEST)?)
                .await
                .map_err(|e| self.error("artifact manifest push", &at.to_string(), e))?;

            // The referrers tag schema: read, merge, write back.
            let tag = image.digest.replace(':', "-");
            let tagged = image.reference.with_tag(&tag);
            let existing = match self
                .client
                .pull_manifest_raw(tagged.as_oci(), &self.auth, &[OCI_INDEX])
                .await
            {
                Ok((bytes, _)) => Some(bytes),
                Err(e) => match self.error("referrers index fetch", &tagged.to_string(), e) {
                    Error::NotFound { .. } => None,
                    other => return Err(other),
                },
            };
            let entry = Descriptor {
                artifact_type: Some(BUNDLE_MEDIA_TYPE.to_owned()),
                annotations: annotations.clone(),
                ..Descriptor::embedding(OCI_MANIFEST, &manifest)
            };
            let index =
                referrers::merge_into_index(existing.as_deref(), &entry).map_err(|reason| {
                    Error::Malformed {
                        what: "referrers index",
                        origin: tagged.to_string(),
                        reason,
                    }
                })?;
            self.client
                .push_manifest_raw(tagged.as_oci(), index, content_type(OCI_INDEX)?)
                .await
                .map_err(|e| self.error("referrers index push", &tagged.to_string(), e))?;
            Ok(PushedAttestation {
                reference: at.to_string(),
                manifest_digest,
                referrers_tag: tag,
            })
        })
        .await
    }

    /// The attestations stored for `image` (which must be pinned by digest). The referrers
    /// tag schema first: vouch always writes it, and its entries carry the manifests and
    /// bundles inline, so a lookup is one request. The referrers API only when the tag lists
    /// no attestation (say, one copied by a tool that only knows the API). Entries that are
    /// not vouch attestations for this exact digest are skipped; content that does not match
    /// its descriptor is an error.
    pub async fn fetch_attestations(
        &self,
        image: &ImageReference,
    ) -> Result<Vec<FetchedAttestation>> {
        let Some(subject) = image.digest().map(str::to_owned) else {
            return Err(Error::DigestRequired {
                reference: image.to_string(),
            });
        };
        self.deadline(async {
            if !self.anonymous() {
                self.client
                    .store_auth_if_needed(&self.registry, &self.auth)
                    .await;
            }
            let tagged = image.with_tag(&subject.replace(':', "-"));
            let found = match self
                .manifest(&tagged, &[OCI_INDEX], "referrers index fetch")
                .await
            {
                Ok(index) => self.collect(image, &subject, &tagged, &index).await?,
                Err(Error::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
            if !found.is_empty() {
                return Ok(found);
            }
            let index = match self.referrers_api(image).await {
                Err(Error::Denied { .. }) if self.anonymous() => {
                    // An (anonymous) token is wanted: let oci-client do the handshake.
                    self.client
                        .store_auth_if_needed(&self.registry, &self.auth)
                        .await;
                    self.wants_token.store(true, Ordering::Relaxed);
                    self.referrers_api(image).await?
                }
                other => other?,
            };
            self.collect(image, &subject, image, &index).await
        })
        .await
    }

    /// The referrers API's index (oci-client reads the tag schema itself on a 404).
    async fn referrers_api(&self, image: &ImageReference) -> Result<Vec<u8>> {
        let index = self
            .client
            .pull_referrers(image.as_oci(), Some(BUNDLE_MEDIA_TYPE))
            .await
            .map_err(|e| self.error("referrers lookup", &image.to_string(), e))?;
        serde_json::to_vec(&index).map_err(|e| Error::Malformed {
            what: "referrers index",
            origin: image.to_string(),
            reason: e.to_string(),
        })
    }

    /// The attestations a referrers index lists: each entry's manifest (inline, or fetched)
    /// and its bundle (inline, or fetched), every one checked against its descriptor.
    async fn collect(
        &self,
        image: &ImageReference,
        subject: &str,
        origin: &ImageReference,
        index: &[u8],
    ) -> Result<Vec<FetchedAttestation>> {
        let malformed = |what: &'static str, origin: String, reason: String| Error::Malformed {
            what,
            origin,
            reason,
        };
        let listed = referrers::select_attestations(index)
            .map_err(|reason| malformed("referrers index", origin.to_string(), reason))?;
        let mut out = Vec::with_capacity(listed.len());
        for entry in listed {
            let at = image.with_digest(&entry.digest);
            let manifest = match entry
                .embedded(MAX_MANIFEST_BYTES as u64)
                .map_err(|reason| malformed("referrers index entry", at.to_string(), reason))?
            {
                Some(m) => m,
                None => {
                    let m = self
                        .manifest(&at, &[OCI_MANIFEST], "artifact manifest fetch")
                        .await?;
                    self.checked(&m, Some(&entry.digest), &at.to_string())?;
                    m
                }
            };
            // Listed for this image but attached to another: not ours to use.
            let Ok((layer, annotations)) = referrers::bundle_layer(&manifest, subject) else {
                continue;
            };
            let bundle = match layer
                .embedded(MAX_BUNDLE_BYTES)
                .map_err(|reason| malformed("bundle layer", at.to_string(), reason))?
            {
                Some(b) => b,
                None => self.blob(image, &layer).await?,
            };
            out.push(FetchedAttestation {
                manifest_digest: entry.digest,
                bundle,
                annotations,
            });
        }
        Ok(out)
    }

    async fn blob(&self, image: &ImageReference, layer: &Descriptor) -> Result<Vec<u8>> {
        let origin = image.with_digest(&layer.digest).to_string();
        let descriptor = layer.digest.as_str();
        let mut stream = self
            .client
            .pull_blob_stream(image.as_oci(), &descriptor)
            .await
            .map_err(|e| self.error("bundle fetch", &origin, e))?
            .stream;
        let mut bytes = Vec::with_capacity(usize::try_from(layer.size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::Unreachable {
                registry: self.registry.clone(),
                reason: format!("reading {origin}: {e}"),
            })?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > layer.size.min(MAX_BUNDLE_BYTES) {
                return Err(Error::Malformed {
                    what: "bundle",
                    origin,
                    reason: format!("longer than the {} bytes its descriptor says", layer.size),
                });
            }
        }
        if bytes.len() as u64 != layer.size {
            return Err(Error::Malformed {
                what: "bundle",
                origin,
                reason: format!("{} bytes, descriptor says {}", bytes.len(), layer.size),
            });
        }
        self.checked(&bytes, Some(&layer.digest), &origin)?;
        Ok(bytes)
    }

    /// The sha256 digest of `bytes`, which must equal `expected` when given.
    fn checked(&self, bytes: &[u8], expected: Option<&str>, origin: &str) -> Result<String> {
        let actual = crate::sha256_digest(bytes);
        match expected {
            Some(e) if e != actual => Err(Error::Malformed {
                what: "content",
                origin: origin.to_owned(),
                reason: format!(
                    "its digest is {actual}, not {e}: the registry returned other bytes"
                ),
            }),
            _ => Ok(actual),
        }
    }

    /// Manifests larger than any real one are refused before parsing.
    fn small(bytes: &[u8], origin: &str) -> Result<()> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(Error::Malformed {
                what: "manifest",
                origin: origin.to_owned(),
                reason: format!(
                    "{} bytes is more than the {MAX_MANIFEST_BYTES} allowed",
                    bytes.len()
                ),
            });
        }
        Ok(())
    }

    async fn deadline<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unreachable {
                registry: self.registry.clone(),
                reason: format!("no answer within {} s", self.timeout.as_secs_f32()),
            }),
        }
    }

    fn error(&self, what: &'static str, reference: &str, e: OciDistributionError) -> Error {
        let registry = self.registry.clone();
        match e {
            OciDistributionError::RequestError(re) => Error::Unreachable {
                registry,
                reason: request_error_text(&re),
            },
            OciDistributionError::ImageManifestNotFoundError(_)
            | OciDistributionError::ServerError { code: 404, .. } => Error::NotFound {
                reference: reference.to_owned(),
            },
            OciDistributionError::ServerError {
                code: 401 | 403, ..
            }
            | OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => Error::Denied {
                registry,
                reason: format!("{what}: {e}"),
            },
            OciDistributionError::RegistryError { ref envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|x| &x.code).collect();
                let not_found = codes.iter().all(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                });
                let denied = codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied));
                if denied {
                    Error::Denied {
                        registry,
                        reason: format!("{what}: {e}"),
                    }
                } else if not_found && !codes.is_empty() {
                    Error::NotFound {
                        reference: reference.to_owned(),
                    }
                } else {
                    Error::Registry {
                        registry,
                        what,
                        reason: e.to_string(),
                    }
                }
            }
            other => Error::Registry {
                registry,
                what,
                reason: other.to_string(),
            },
        }
    }
}

fn setup_error(registry: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Registry {
        registry: registry.to_owned(),
        what: "client setup",
        reason: e.to_string(),
    }
}

/// reqwest's top-level message hides the cause ("error sending request"); add its sources.
fn request_error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn content_type(media_type: &str) -> Result<http::HeaderValue> {
    http::HeaderValue::from_str(media_type).map_err(|e| Error::Registry {
        registry: String::new(),
        what: "content type",
        reason: e.to_string(),
    })
}

/// The media type a manifest declares; older manifests without one are recognised by shape.
pub(crate) fn manifest_media_type(bytes: &[u8]) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(m) = v.get("mediaType").and_then(serde_json::Value::as_str) {
        return Ok(m.to_owned());
    }
    if v.get("manifests").is_some() {
        Ok(OCI_INDEX.to_owned())
    } else if v.get("layers").is_some() || v.get("config").is_some() {
        Ok(OCI_MANIFEST.to_owned())
    } else {
        Err("neither an image manifest nor an index".to_owned())
    }
}
