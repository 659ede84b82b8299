//! The registry client: resolve an image, push an attestation next to it, fetch the
//! attestations stored for it. Async (the webhook); see `blocking` for the CLI.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use oci_client::RegistryOperation;
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
    /// registries (`localhost`, `127.0.0.0/8`, `[::1]`) use plain HTTP unless `registry_ca`
    /// is given.
    pub allow_insecure: bool,
    /// CA certificates trusted for registries besides the system store (`--registry-ca`).
    /// Given, every registry is spoken to over HTTPS, loopback ones too (unless
    /// `allow_insecure`).
    pub registry_ca: Option<RegistryCa>,
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
            registry_ca: None,
            credentials: None,
            credential_helpers: crate::auth::Helpers::Never,
            timeout: Duration::from_secs(30),
        }
    }
}

/// CA certificates from a PEM file (`--registry-ca FILE`), checked when read.
#[derive(Clone)]
pub struct RegistryCa {
    path: String,
    der: Vec<Vec<u8>>,
}

impl std::fmt::Debug for RegistryCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RegistryCa({}, {} certificates)",
            self.path,
            self.der.len()
        )
    }
}

impl RegistryCa {
    /// The certificates of the PEM file at `path`: at least one, each one parsing as X.509.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let shown = path.display().to_string();
        let fail = |reason: String| Error::RegistryCa {
            path: shown.clone(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        if !meta.is_file() || meta.len() > 4 << 20 {
            return Err(fail("not a regular file of at most 4 MiB".to_owned()));
        }
        let pem = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        Self::from_pem(&shown, &pem)
    }

    /// The certificates of PEM text (`origin` names it in errors).
    pub fn from_pem(origin: &str, pem: &[u8]) -> Result<Self> {
        use rustls_pki_types::pem::PemObject as _;
        let fail = |reason: String| Error::RegistryCa {
            path: origin.to_owned(),
            reason,
        };
        let mut der = Vec::new();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| fail(format!("not PEM: {e}")))?;
            // What rustls does with a root: refuse here what it would refuse later.
            webpki::anchor_from_trusted_cert(&cert).map_err(|e| {
                fail(format!(
                    "certificate {} is not a usable CA certificate: {e}",
                    der.len() + 1
                ))
            })?;
            der.push(cert.as_ref().to_vec());
        }
        if der.is_empty() {
            return Err(fail(
                "no `-----BEGIN CERTIFICATE-----` block in it".to_owned(),
            ));
        }
        Ok(Self {
            path: origin.to_owned(),
            der,
        })
    }

    fn reqwest(&self, registry: &str) -> Result<Vec<reqwest::Certificate>> {
        self.der
            .iter()
            .map(|d| reqwest::Certificate::from_der(d).map_err(|e| setup_error(registry, &e)))
            .collect()
    }

    fn oci(&self) -> Vec<Certificate> {
        self.der
            .iter()
            .map(|d| Certificate {
                encoding: CertificateEncoding::Der,
                data: d.clone(),
            })
            .collect()
    }
}

/// Whether a default reqwest client can be built, that is, whether the system trust store
/// holds any certificate; checked once per process.
///
/// oci-client builds one such client whatever its configuration says (`..Default::default()`
/// in its `TryFrom<ClientConfig>`), through reqwest's `Client::new()`, which panics when
/// there are no system roots. Checking first turns that abort into a typed error.
fn system_roots(registry: &str) -> Result<()> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        reqwest::Client::builder()
            .build()
            .map(drop)
            .map_err(|e| request_error_text(&e))
    });
    match checked {
        Ok(()) => Ok(()),
        Err(text) => Err(setup_text_error(registry, text)),
    }
}

/// A reqwest client that could not be built: no system roots, or another reason.
fn build_error(registry: &str, e: &reqwest::Error) -> Error {
    setup_text_error(registry, &request_error_text(e))
}

fn setup_text_error(registry: &str, text: &str) -> Error {
    if text.contains("No CA certificates") {
        Error::NoTrustStore {
            registry: registry.to_owned(),
        }
    } else {
        setup_error(registry, &text)
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
    /// The referrers tag-schema tag that lists it (`sha256-<hex>`); `None` when the registry
    /// keeps the referrers list itself (it answered the push with `OCI-Subject`).
    pub referrers_tag: Option<String>,
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
    /// oci-client, built on first use (see [`Registry::oci`]).
    client: OnceLock<oci_client::Client>,
    registry: String,
    auth: oci_client::secrets::RegistryAuth,
    timeout: Duration,
    /// Anonymous manifest reads, made without oci-client (see [`Registry::manifest`]); built
    /// on first use (at once for plain HTTP, where it loads no roots).
    direct: OnceLock<reqwest::Client>,
    plain: bool,
    registry_ca: Option<RegistryCa>,
    /// The registry answered an anonymous read with 401: it wants a token handshake, so
    /// every later read goes through oci-client.
    wants_token: AtomicBool,
    /// Whether the registry has the referrers API, as learned from its answers
    /// ([`API_UNKNOWN`], [`API_YES`], [`API_NO`]).
    referrers_api: AtomicU8,
    /// The `Authorization` of direct requests, by (repository, push), with when it was made.
    tokens: Mutex<HashMap<AuthKey, (Option<String>, Instant)>>,
}

/// (repository, for a push).
type AuthKey = (String, bool);

const API_UNKNOWN: u8 = 0;
const API_YES: u8 = 1;
const API_NO: u8 = 2;

/// How long an authorization is reused for direct requests: registries issue bearer tokens
/// for at least 60 s (the token specification's default), and a stale one costs one retry.
const AUTH_REUSE: Duration = Duration::from_secs(50);

/// Most pages of one referrers list vouch reads (an image with that many referrers is refused,
/// never admitted by mistake).
const MAX_REFERRER_PAGES: usize = 16;

/// What the referrers API answered.
enum Api {
    /// The registry's referrers index.
    Listed(Vec<u8>),
    /// No referrers API here; `remember` unless the answer was about an unknown repository.
    Absent { remember: bool },
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// A self-signed CA certificate whose key no longer exists (see `Registry::oci`).
const NO_TRUST_ANCHOR: &[u8] = include_bytes!("no-trust-anchor.pem");

const IMAGE_TYPES: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

impl Registry {
    /// Whether registry clients can be set up here: the system trust store must hold at
    /// least one CA certificate (see [`Error::NoTrustStore`]), even for plain HTTP.
    pub fn check_system_roots() -> Result<()> {
        system_roots("*")
    }

    /// A client for the registry of `reference`. No network traffic yet.
    pub fn for_reference(reference: &ImageReference, options: &Options) -> Result<Self> {
        let registry = reference.registry().to_owned();
        let plain =
            options.allow_insecure || (reference.is_loopback() && options.registry_ca.is_none());
        let credentials = match &options.credentials {
            Some(c) => c.clone(),
            None => Credentials::from_docker_config(&registry, options.credential_helpers)?,
        };
        let this = Self {
            client: OnceLock::new(),
            auth: credentials.to_auth(),
            registry,
            timeout: options.timeout,
            direct: OnceLock::new(),
            plain,
            registry_ca: options.registry_ca.clone(),
            wants_token: AtomicBool::new(false),
            referrers_api: AtomicU8::new(API_UNKNOWN),
            tokens: Mutex::new(HashMap::new()),
        };
        // Cheap without roots: made now rather than by the first burst of lookups at once.
        if plain && this.anonymous() {
            let _ = this.direct.set(this.direct_client()?);
        }
        Ok(this)
    }

    /// The oci-client client, built on first use: anonymous reads of inline attestations
    /// (the common case) never need it, and building it loads the system trust store.
    fn oci(&self) -> Result<&oci_client::Client> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let registry = &self.registry;
        let protocol = if self.plain {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        // A plain-HTTP client never speaks TLS, so it needs no roots: give it one anchor whose
        // private key was discarded when it was made. That keeps reqwest from loading every
        // certificate under /etc/ssl/certs for it, and a TLS connection it might make anyway
        // could never be trusted.
        let tls_certs_only = if self.plain {
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
            extra_root_certificates: match (&self.registry_ca, self.plain) {
                (Some(ca), false) => ca.oci(),
                _ => Vec::new(),
            },
            connect_timeout: Some(self.timeout.min(Duration::from_secs(10))),
            read_timeout: Some(self.timeout),
            user_agent: concat!("vouch/", env!("CARGO_PKG_VERSION")),
            // Never pick a platform behind the caller's back: indexes are signed as indexes.
            platform_resolver: None,
            ..ClientConfig::default()
        };
        system_roots(registry)?;
        let client = oci_client::Client::try_from(config).map_err(|e| match e {
            OciDistributionError::RequestError(re) => build_error(registry, &re),
            other => setup_error(registry, &other),
        })?;
        Ok(self.client.get_or_init(|| client))
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
            .oci()?
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
        let client = self.direct()?;
        let at = reference
            .digest()
            .or_else(|| reference.tag())
            .unwrap_or("latest");
        let url = format!("{}/manifests/{at}", self.repository_url(reference));
        let origin = reference.to_string();
        let unreachable = |e: reqwest::Error| unreachable(&self.registry, &e);
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
                // What an HTTPS-only server answers a plain-HTTP request with.
                let https = if code == 400 && self.plain {
                    "; if the registry speaks HTTPS, pass `--registry-ca FILE` (its CA) to use HTTPS"
                } else {
                    ""
                };
                return Err(Error::Registry {
                    registry: self.registry.clone(),
                    what,
                    reason: format!("HTTP {code} for {origin}{https}"),
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

    /// The client for direct requests, made on first use.
    fn direct(&self) -> Result<&reqwest::Client> {
        Ok(match self.direct.get() {
            Some(c) => c,
            None => {
                let c = self.direct_client()?;
                self.direct.get_or_init(|| c)
            }
        })
    }

    /// `http(s)://HOST/v2/REPOSITORY` of `reference`.
    fn repository_url(&self, reference: &ImageReference) -> String {
        format!(
            "{}/v2/{}",
            self.origin_url(reference),
            reference.as_oci().repository()
        )
    }

    /// `http(s)://host[:port]` of `reference`'s registry, as requests are made to it.
    fn origin_url(&self, reference: &ImageReference) -> String {
        format!(
            "{}://{}",
            if self.plain { "http" } else { "https" },
            reference.as_oci().resolve_registry()
        )
    }

    /// A direct request (one oci-client has no call for, or whose answer's headers matter),
    /// authorised as oci-client would: anonymous until the registry answers 401, then with
    /// the credentials (HTTP basic, or the bearer token they are exchanged for).
    async fn send(
        &self,
        reference: &ImageReference,
        operation: RegistryOperation,
        request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let client = self.direct()?;
        let unreachable = |e: reqwest::Error| unreachable(&self.registry, &e);
        if self.anonymous() && !self.wants_token.load(Ordering::Relaxed) {
            let response = request(client).send().await.map_err(unreachable)?;
            if response.status() != http::StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            self.wants_token.store(true, Ordering::Relaxed);
        }
        let (value, reused) = self.authorization(reference, operation, false).await?;
        let mut builder = request(client);
        if let Some(value) = value {
            builder = builder.header(http::header::AUTHORIZATION, value);
        }
        let response = builder.send().await.map_err(unreachable)?;
        if !(reused && response.status() == http::StatusCode::UNAUTHORIZED) {
            return Ok(response);
        }
        // The reused authorization went stale (a token expired early): ask again, once.
        let (value, _) = self.authorization(reference, operation, true).await?;
        let mut builder = request(client);
        if let Some(value) = value {
            builder = builder.header(http::header::AUTHORIZATION, value);
        }
        builder.send().await.map_err(unreachable)
    }

    /// The `Authorization` value for a direct request, if the registry wants one, and
    /// whether it was reused from an earlier request. What the registry's challenge asked
    /// for (a bearer token, HTTP basic, nothing) is kept for [`AUTH_REUSE`] per repository
    /// and operation, so that a lookup does not begin with the handshake every time.
    async fn authorization(
        &self,
        reference: &ImageReference,
        operation: RegistryOperation,
        fresh: bool,
    ) -> Result<(Option<http::HeaderValue>, bool)> {
        let key = (
            reference.as_oci().repository().to_owned(),
            matches!(operation, RegistryOperation::Push),
        );
        if !fresh
            && let Some((value, at)) = self.tokens.lock().ok().and_then(|t| t.get(&key).cloned())
            && at.elapsed() < AUTH_REUSE
        {
            return Ok((value.as_deref().and_then(header_value), true));
        }
        let asked = Instant::now();
        let value = match self
            .oci()?
            .auth(reference.as_oci(), &self.auth, operation)
            .await
        {
            Ok(Some(token)) => Some(format!("Bearer {token}")),
            Ok(None) => match &self.auth {
                oci_client::secrets::RegistryAuth::Basic(user, password) => {
                    use base64::Engine as _;
                    let pair = base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{password}"));
                    Some(format!("Basic {pair}"))
                }
                _ => None,
            },
            Err(e) => return Err(self.error("authentication", &reference.to_string(), e)),
        };
        let header = value.as_deref().and_then(header_value);
        if let Ok(mut t) = self.tokens.lock() {
            t.insert(key, (value, asked));
        }
        Ok((header, false))
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
        } else if let Some(ca) = &self.registry_ca {
            b = b.tls_certs_merge(ca.reqwest(&self.registry)?);
        }
        b.build().map_err(|e| build_error(&self.registry, &e))
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

    /// Store `bundle` as an OCI artifact attached to `image`, in cosign v3's layout for
    /// Sigstore bundles (see `referrers`), with `annotations` and the bundle annotations
    /// added. A registry that answers the manifest push with `OCI-Subject` (it has the
    /// referrers API) keeps the list of referrers itself; for any other, the referrers
    /// tag-schema index is updated, as the OCI distribution spec requires of clients
    /// ("Pushing Manifests with Subject").
    pub async fn push_attestation(
        &self,
        image: &ResolvedImage,
        bundle: &[u8],
        annotations: &BTreeMap<String, String>,
    ) -> Result<PushedAttestation> {
        self.deadline(async {
            let r = image.reference.as_oci();
            let what = image.reference.to_string();
            let annotations = referrers::attestation_annotations(annotations);
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
            let manifest = referrers::artifact_manifest(&layer, &subject, &annotations);
            let manifest_digest = crate::sha256_digest(&manifest);

            // Blobs before the manifest that names them.
            self.oci()?
                .store_auth_if_needed(&self.registry, &self.auth)
                .await;
            let config = referrers::EMPTY_CONFIG;
            self.oci()?
                .push_blob(r, config.to_vec(), &crate::sha256_digest(config))
                .await
                .map_err(|e| self.error("config blob push", &what, e))?;
            self.oci()?
                .push_blob(r, bundle.to_vec(), &layer.digest)
                .await
                .map_err(|e| self.error("bundle blob push", &what, e))?;
            let at = image.reference.with_digest(&manifest_digest);
            let oci_subject = self.put_manifest(&at, &manifest, OCI_MANIFEST).await?;
            if oci_subject.as_deref() == Some(image.digest.as_str()) {
                self.referrers_api.store(API_YES, Ordering::Relaxed);
                return Ok(PushedAttestation {
                    reference: at.to_string(),
                    manifest_digest,
                    referrers_tag: None,
                });
            }

            // The referrers tag schema: read, merge, write back.
            let tag = image.digest.replace(':', "-");
            let tagged = image.reference.with_tag(&tag);
            let existing = match self
                .manifest(&tagged, &[OCI_INDEX], "referrers index fetch")
                .await
            {
                Ok(bytes) => Some(bytes),
                Err(Error::NotFound { .. }) => None,
                Err(other) => return Err(other),
            };
            let entry = Descriptor {
                artifact_type: Some(BUNDLE_MEDIA_TYPE.to_owned()),
                annotations,
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
            self.put_manifest(&tagged, &index, OCI_INDEX).await?;
            Ok(PushedAttestation {
                reference: at.to_string(),
                manifest_digest,
                referrers_tag: Some(tag),
            })
        })
        .await
    }

    /// `PUT` a manifest (or index) at `at`; the registry's `OCI-Subject` answer, if any.
    /// Direct rather than through oci-client, which does not show the answer's headers.
    pub(crate) async fn put_manifest(
        &self,
        at: &ImageReference,
        body: &[u8],
        media_type: &str,
    ) -> Result<Option<String>> {
        let url = format!(
            "{}/manifests/{}",
            self.repository_url(at),
            at.digest().or_else(|| at.tag()).unwrap_or("latest")
        );
        let body = bytes::Bytes::copy_from_slice(body);
        let kind = content_type(media_type)?;
        let response = self
            .send(at, RegistryOperation::Push, |c| {
                c.put(&url)
                    .header(http::header::CONTENT_TYPE, kind.clone())
                    .body(body.clone())
            })
            .await?;
        let status = response.status();
        let subject = response
            .headers()
            .get("OCI-Subject")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status.is_success() {
            return Ok(subject);
        }
        let what = if media_type == OCI_INDEX {
            "referrers index push"
        } else {
            "artifact manifest push"
        };
        let text = response.text().await.unwrap_or_default();
        let text: String = text.trim().chars().take(300).collect();
        let reason = format!("HTTP {} for {at}: {text}", status.as_u16());
        Err(match status.as_u16() {
            401 | 403 => Error::Denied {
                registry: self.registry.clone(),
                reason: format!("{what}: {reason}"),
            },
            _ => Error::Registry {
                registry: self.registry.clone(),
                what,
                reason,
            },
        })
    }

    /// The attestations stored for `image` (which must be pinned by digest), found as the
    /// OCI distribution spec says: the referrers API, and the referrers tag schema when the
    /// registry does not have the API (404). A client remembers which it is, so a long-lived
    /// one (the webhook's) asks a registry without the API one request per lookup: the tag,
    /// whose entries carry the manifests and bundles inline. The API's list has no inline
    /// manifests; vouch's manifests carry their bundle inline, so each costs one more request.
    /// Entries that are not vouch attestations for this exact digest are skipped; content
    /// that does not match its descriptor is an error.
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
                self.oci()?
                    .store_auth_if_needed(&self.registry, &self.auth)
                    .await;
            }
            if self.referrers_api.load(Ordering::Relaxed) != API_NO {
                match self.referrers_api(image).await? {
                    Api::Listed(index) => {
                        self.referrers_api.store(API_YES, Ordering::Relaxed);
                        return self.collect(image, &subject, image, &index).await;
                    }
                    Api::Absent { remember } => {
                        if remember {
                            self.referrers_api.store(API_NO, Ordering::Relaxed);
                        }
                    }
                }
            }
            let tagged = image.with_tag(&subject.replace(':', "-"));
            match self
                .manifest(&tagged, &[OCI_INDEX], "referrers index fetch")
                .await
            {
                Ok(index) => self.collect(image, &subject, &tagged, &index).await,
                Err(Error::NotFound { .. }) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// `GET /v2/<name>/referrers/<digest>`, asking for bundles only (registries may or may not
    /// filter; `select_attestations` does anyway), and the pages that follow (`Link`), at
    /// most [`MAX_REFERRER_PAGES`].
    async fn referrers_api(&self, image: &ImageReference) -> Result<Api> {
        let origin = image.to_string();
        let mut url = format!(
            "{}/referrers/{}?artifactType={}",
            self.repository_url(image),
            image.digest().unwrap_or_default(),
            BUNDLE_MEDIA_TYPE.replace('+', "%2B"),
        );
        let host = self.origin_url(image);
        let mut pages = Vec::new();
        loop {
            let mut response = self
                .send(image, RegistryOperation::Pull, |c| {
                    c.get(&url).header(http::header::ACCEPT, OCI_INDEX)
                })
                .await?;
            let status = response.status().as_u16();
            let is_index = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(';').next().map(str::trim) == Some(OCI_INDEX));
            match status {
                200 if is_index => {}
                // No referrers API (what the spec says a client must take 404 for; 400 and
                // 406 are what some registries answer for a path they do not know, and a 200
                // that is not an index is a catch-all page). An unknown repository is no
                // reason to stop asking the API for the others.
                200 | 400 | 404 | 406 if pages.is_empty() => {
                    let body = response.bytes().await.unwrap_or_default();
                    let unknown_repository =
                        String::from_utf8_lossy(&body).contains("NAME_UNKNOWN");
                    return Ok(Api::Absent {
                        remember: !unknown_repository,
                    });
                }
                401 | 403 => {
                    return Err(Error::Denied {
                        registry: self.registry.clone(),
                        reason: format!("referrers lookup: HTTP {status} for {origin}"),
                    });
                }
                code => {
                    return Err(Error::Registry {
                        registry: self.registry.clone(),
                        what: "referrers lookup",
                        reason: format!("HTTP {code} for {origin} (page {})", pages.len() + 1),
                    });
                }
            }
            let next = response
                .headers()
                .get(http::header::LINK)
                .and_then(|v| v.to_str().ok())
                .map(|link| referrers::next_page(link, &host))
                .transpose()
                .map_err(|reason| Error::Malformed {
                    what: "referrers list",
                    origin: origin.clone(),
                    reason,
                })?
                .flatten();
            let mut bytes = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| unreachable(&self.registry, &e))?
            {
                bytes.extend_from_slice(&chunk);
                Self::small(&bytes, &origin)?;
            }
            pages.push(bytes);
            match next {
                None => break,
                Some(_) if pages.len() >= MAX_REFERRER_PAGES => {
                    return Err(Error::Malformed {
                        what: "referrers list",
                        origin,
                        reason: format!("it has more than {MAX_REFERRER_PAGES} pages"),
                    });
                }
                Some(n) => url = n,
            }
        }
        if pages.len() == 1 {
            return Ok(Api::Listed(pages.remove(0)));
        }
        referrers::join_pages(&pages)
            .map(Api::Listed)
            .map_err(|reason| Error::Malformed {
                what: "referrers list",
                origin,
                reason,
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
            // A tag-schema entry written by another tool has no annotations; its manifest does.
            if referrers::foreign(&annotations) {
                continue;
            }
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
            .oci()?
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
        check_digest(bytes, expected, "content", origin)
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
            OciDistributionError::RequestError(re) => unreachable(&registry, &re),
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

/// What `modelpack` needs of a registry: manifests and blobs by name, nothing about
/// attestations.
impl Registry {
    pub(crate) async fn store_auth(&self) -> Result<()> {
        self.oci()?
            .store_auth_if_needed(&self.registry, &self.auth)
            .await;
        Ok(())
    }

    /// The manifest at `reference` (at most [`MAX_MANIFEST_BYTES`]), within the deadline.
    pub(crate) async fn manifest_at(
        &self,
        reference: &ImageReference,
        accept: &[&str],
    ) -> Result<Vec<u8>> {
        self.deadline(self.manifest(reference, accept, "manifest fetch"))
            .await
    }

    pub(crate) async fn has_blob(&self, at: &ImageReference, digest: &str) -> Result<bool> {
        self.oci()?
            .blob_exists(at.as_oci(), digest)
            .await
            .map_err(|e| self.error("blob lookup", &at.with_digest(digest).to_string(), e))
    }

    pub(crate) async fn put_blob(
        &self,
        at: &ImageReference,
        bytes: Vec<u8>,
        digest: &str,
    ) -> Result<()> {
        self.oci()?
            .push_blob(at.as_oci(), bytes, digest)
            .await
            .map(drop)
            .map_err(|e| self.error("blob push", &at.with_digest(digest).to_string(), e))
    }

    /// Upload a blob whose digest is computed from the bytes as they are sent; returns the
    /// digest and the size.
    pub(crate) async fn put_blob_stream(
        &self,
        at: &ImageReference,
        stream: impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
        what: &str,
    ) -> Result<(String, u64)> {
        let stream =
            stream.map(|r| r.map_err(|e| OciDistributionError::GenericError(Some(e.to_string()))));
        self.oci()?
            .push_blob_stream_chunked(at.as_oci(), stream)
            .await
            .map(|r| (r.blob_digest, r.size))
            .map_err(|e| self.error("blob push", &format!("{at} ({what})"), e))
    }

    /// Upload a blob of `size` bytes in one streamed `PATCH` (then `PUT ?digest=`), with the
    /// digest known only when `stream` has ended (`digest` resolves then). For anonymous
    /// registries only (the direct client carries no credentials); `Ok(None)` when the
    /// registry wants a login, before anything was sent: then use [`Self::put_blob_stream`].
    pub(crate) async fn put_blob_streamed(
        &self,
        at: &ImageReference,
        stream: impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
        size: u64,
        digest: impl Future<Output = Result<String>>,
    ) -> Result<Option<String>> {
        if !self.anonymous() || self.wants_token.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let client = self.direct()?;
        let base = self.origin_url(at);
        let origin = at.to_string();
        let unreachable = |e: reqwest::Error| unreachable(&self.registry, &e);
        let failed = |what: &'static str, code: u16| Error::Registry {
            registry: self.registry.clone(),
            what,
            reason: format!("HTTP {code} for {origin}"),
        };
        let location = |r: &reqwest::Response| -> Result<String> {
            let l = r
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| Error::Registry {
                    registry: self.registry.clone(),
                    what: "blob upload",
                    reason: "no Location header".to_owned(),
                })?;
            Ok(if l.starts_with('/') {
                format!("{base}{l}")
            } else {
                l.to_owned()
            })
        };
        let started = client
            .post(format!("{}/blobs/uploads/", self.repository_url(at)))
            .header(http::header::CONTENT_LENGTH, 0)
            .send()
            .await
            .map_err(unreachable)?;
        match started.status().as_u16() {
            202 => {}
            401 => {
                self.wants_token.store(true, Ordering::Relaxed);
                return Ok(None);
            }
            403 => {
                return Err(Error::Denied {
                    registry: self.registry.clone(),
                    reason: "blob upload: 403 Forbidden".to_owned(),
                });
            }
            code => return Err(failed("blob upload", code)),
        }
        let upload = location(&started)?;
        let sent = client
            .patch(&upload)
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .header(http::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(unreachable)?;
        if sent.status().as_u16() != 202 {
            return Err(failed("blob upload", sent.status().as_u16()));
        }
        let upload = location(&sent)?;
        let digest = digest.await?;
        let sep = if upload.contains('?') { '&' } else { '?' };
        let done = client
            .put(format!("{upload}{sep}digest={digest}"))
            .header(http::header::CONTENT_LENGTH, 0)
            .send()
            .await
            .map_err(unreachable)?;
        if done.status().as_u16() != 201 {
            return Err(failed("blob upload commit", done.status().as_u16()));
        }
        Ok(Some(digest))
    }
}

/// Blobs by digest, streamed (`modelpack::pull`).
impl Registry {
    /// `GET` the blob `digest` of `at`'s repository, authorised as every direct request is;
    /// the answer once its status is 200, its body not read yet (read it with
    /// [`Self::next_chunk`]). Redirects (to a storage backend) are followed.
    pub(crate) async fn blob_response(
        &self,
        at: &ImageReference,
        digest: &str,
    ) -> Result<reqwest::Response> {
        let url = format!("{}/blobs/{digest}", self.repository_url(at));
        let origin = at.with_digest(digest).to_string();
        let response = self
            .send(at, RegistryOperation::Pull, |c| c.get(&url))
            .await?;
        match response.status().as_u16() {
            200 => Ok(response),
            404 => Err(Error::NotFound { reference: origin }),
            code @ (401 | 403) => Err(Error::Denied {
                registry: self.registry.clone(),
                reason: format!("blob fetch: HTTP {code} for {origin}"),
            }),
            code => Err(Error::Registry {
                registry: self.registry.clone(),
                what: "blob fetch",
                reason: format!("HTTP {code} for {origin}"),
            }),
        }
    }

    /// The next piece of a blob's body; `None` at its end.
    pub(crate) async fn next_chunk(
        &self,
        response: &mut reqwest::Response,
    ) -> Result<Option<bytes::Bytes>> {
        response
            .chunk()
            .await
            .map_err(|e| unreachable(&self.registry, &e))
    }
}

/// The SHA-256 digest of `bytes`, which must be `expected` when one is given (what the
/// registry named them by): anything else is other bytes than were asked for.
pub(crate) fn check_digest(
    bytes: &[u8],
    expected: Option<&str>,
    what: &'static str,
    origin: &str,
) -> Result<String> {
    let actual = crate::sha256_digest(bytes);
    match expected {
        Some(e) if e != actual => Err(Error::Malformed {
            what,
            origin: origin.to_owned(),
            reason: format!("its digest is {actual}, not {e}: the registry returned other bytes"),
        }),
        _ => Ok(actual),
    }
}

fn setup_error(registry: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Registry {
        registry: registry.to_owned(),
        what: "client setup",
        reason: e.to_string(),
    }
}

/// A failed request: a refused TLS certificate, or an unreachable registry.
fn unreachable(registry: &str, e: &reqwest::Error) -> Error {
    let reason = request_error_text(e);
    if reason.contains("invalid peer certificate") {
        Error::Untrusted {
            registry: registry.to_owned(),
            reason,
        }
    } else {
        Error::Unreachable {
            registry: registry.to_owned(),
            reason,
        }
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

/// A header value from text vouch made (never fails for the values used here; `None` if it did).
fn header_value(text: &str) -> Option<http::HeaderValue> {
    http::HeaderValue::from_str(text).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_ca_reads_pem_certificates() {
        let ca = RegistryCa::from_pem("ca.pem", NO_TRUST_ANCHOR);
        assert!(matches!(ca, Ok(ref c) if c.der.len() == 1), "{ca:?}");
    }

    #[test]
    fn registry_ca_refuses_files_without_certificates() {
        for bad in [
            &b""[..],
            b"not pem at all",
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            let e = RegistryCa::from_pem("ca.pem", bad);
            assert!(matches!(e, Err(Error::RegistryCa { .. })), "{e:?}");
        }
    }

    #[test]
    fn registry_ca_refuses_a_certificate_that_does_not_parse() {
        let e = RegistryCa::from_pem(
            "ca.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        assert!(matches!(e, Err(Error::RegistryCa { .. })), "{e:?}");
    }

    #[test]
    fn refused_certificates_are_untrusted_not_unreachable() {
        let e = Error::Untrusted {
            registry: "r".to_owned(),
            reason: "invalid peer certificate: UnknownIssuer".to_owned(),
        };
        assert!(e.is_unreachable());
        assert!(e.hint().is_some_and(|h| h.contains("--registry-ca")));
    }
}
