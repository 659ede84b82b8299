//! Keyless signing: an OIDC identity token buys a short-lived Fulcio certificate for a
//! fresh ECDSA P-256 key, the signature goes into the Rekor transparency log (and, when the
//! signing config names one, gets an RFC 3161 timestamp), and the result is a Sigstore
//! bundle v0.3. No long-lived key exists anywhere.
//!
//! A thin, blocking wrapper over the sigstore org's `sigstore-sign` (built with rustls over
//! aws-lc-rs, without TUF and without the browser flow). Linked by the `vouch` CLI only:
//! the init container and the admission webhook verify, and must not link an HTTP/OIDC
//! client or anything that can sign (`cargo tree -p vouch-init -e normal` shows this crate
//! absent).
//!
//! Where things come from:
//! - the services: a Sigstore `SigningConfig` JSON ([`Services::from_signing_config`]), the
//!   embedded public-good snapshot ([`Services::embedded`]), or explicit URLs
//!   ([`Services::from_urls`]);
//! - the identity token: given explicitly, the `SIGSTORE_ID_TOKEN` environment variable, or
//!   the CI's ambient credentials (GitHub Actions `ACTIONS_ID_TOKEN_REQUEST_URL` +
//!   `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, GitLab, Buildkite, CircleCI), see [`find_token`].
//!
//! What is signed: an artifact (a message-signature bundle, Rekor `hashedrekord`) or an
//! in-toto statement given as exact bytes (a DSSE bundle, Rekor `dsse` v0.0.1; the payload is
//! never re-serialised).

#![forbid(unsafe_code)]

use std::fmt;
use std::io::Read;

use sigstore_sign::crypto::parse_certificate_info;
use sigstore_sign::oidc::IdentityToken;
use sigstore_sign::rekor::RekorApiVersion;
use sigstore_sign::trust_root::SigningConfig;
use sigstore_sign::types::Bundle;
use sigstore_sign::{SigningContext, SigningServices, SigstoreInstance};

/// The environment variable an identity token is read from when none is given.
pub const TOKEN_ENV: &str = "SIGSTORE_ID_TOKEN";

/// GitHub Actions' token service URL, set in jobs with `permissions: id-token: write`.
pub const ACTIONS_URL_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// The bearer token for [`ACTIONS_URL_ENV`], set alongside it.
pub const ACTIONS_TOKEN_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// Why keyless signing failed. Every variant is "could not sign"; nothing here is a
/// verdict about an artifact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The signing config is not valid JSON, or names no usable Fulcio/Rekor/TSA.
    #[error("the signing config is unusable: {0}")]
    SigningConfig(String),
    /// A service URL is not an `http://` or `https://` URL.
    #[error("the {service} URL `{url}` is not an http(s) URL")]
    Url {
        /// Which service.
        service: &'static str,
        /// The URL given.
        url: String,
    },
    /// The identity token is not a JWT with `iss`, `sub` and `exp` claims.
    #[error("the identity token is unusable: {0}")]
    Token(String),
    /// The identity token has expired.
    #[error("the identity token expired at {0}")]
    TokenExpired(String),
    /// No token was given and none was found in the environment.
    #[error("no OIDC identity token: none given, `{TOKEN_ENV}` unset, no ambient CI credentials")]
    NoToken,
    /// Asking the CI for its ambient token failed.
    #[error("cannot get the ambient CI identity token: {0}")]
    Ambient(String),
    /// The GitHub Actions token service refused the request or answered something else than
    /// a token.
    #[error("the GitHub Actions token service ({url}) gave no identity token: {message}")]
    GitHubActions {
        /// `ACTIONS_ID_TOKEN_REQUEST_URL`, without its query.
        url: String,
        /// What went wrong (never the request token).
        message: String,
        /// The service refused the request token (HTTP 401 or 403).
        refused: bool,
    },
    /// The in-toto statement is not a statement.
    #[error("the statement is not a valid in-toto statement: {0}")]
    Statement(String),
    /// The artifact could not be read.
    #[error("cannot read the artifact: {0}")]
    ArtifactRead(#[source] std::io::Error),
    /// Fulcio refused or could not be reached.
    #[error("Fulcio ({url}) did not issue a certificate: {message}")]
    Fulcio {
        /// The Fulcio URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Rekor refused or could not be reached.
    #[error("Rekor ({url}) did not log the signature: {message}")]
    Rekor {
        /// The Rekor URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The timestamp authority refused or could not be reached.
    #[error("the timestamp authority ({url}) did not timestamp the signature: {message}")]
    Tsa {
        /// The TSA URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Anything else the signer reported (local crypto, bundle assembly, async runtime).
    #[error("keyless signing failed: {0}")]
    Other(String),
}

/// The services a signature is submitted to.
#[derive(Clone, PartialEq, Eq)]
pub struct Services(SigningServices);

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services")
            .field("fulcio", &self.fulcio_url())
            .field("rekor", &self.rekor_url())
            .field("rekor_api", &self.0.rekor_api_version().major())
            .field("tsa", &self.tsa_url())
            .finish()
    }
}

/// A public-good Sigstore instance whose signing config `sigstore-trust-root` embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instance {
    /// The production instance.
    Production,
    /// The staging instance.
    Staging,
}

fn check_url(service: &'static str, url: &str) -> Result<(), Error> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(Error::Url {
            service,
            url: url.to_owned(),
        })
    }
}

impl Services {
    /// The services a Sigstore `SigningConfig` (v0.2 JSON) selects: its Fulcio, its
    /// preferred Rekor log (v1 or v2) and its timestamp authority.
    pub fn from_signing_config(json: &[u8]) -> Result<Self, Error> {
        let text = std::str::from_utf8(json)
            .map_err(|e| Error::SigningConfig(format!("not UTF-8: {e}")))?;
        let config =
            SigningConfig::from_json(text).map_err(|e| Error::SigningConfig(e.to_string()))?;
        let services = if config.tsa_url().is_some() {
            SigningServices::from_signing_config(&config)
                .map_err(|e| Error::SigningConfig(e.to_string()))?
        } else {
            // `sigstore-sign` insists on a TSA; a Rekor v1 log's signed entry timestamp
            // proves the signing time without one, so a config without a TSA is usable.
            let fulcio = config
                .fulcio_url()
                .ok_or_else(|| Error::SigningConfig("it names no Fulcio".into()))?;
            let rekor = config
                .rekor_url(None)
                .ok_or_else(|| Error::SigningConfig("it names no Rekor log".into()))?;
            let version =
                RekorApiVersion::from_major(rekor.major_api_version).ok_or_else(|| {
                    Error::SigningConfig(format!(
                        "Rekor API version {} is not supported",
                        rekor.major_api_version
                    ))
                })?;
            SigningServices::new(fulcio.url.clone(), rekor.url.clone())
                .with_rekor(rekor.url.clone(), version)
        };
        services
            .validate()
            .map_err(|e| Error::SigningConfig(e.to_string()))?;
        Ok(Self(services))
    }

    /// The embedded snapshot of a public-good instance's signing config.
    pub fn embedded(instance: Instance) -> Result<Self, Error> {
        let instance = match instance {
            Instance::Production => SigstoreInstance::PublicGood,
            Instance::Staging => SigstoreInstance::Staging,
        };
        SigningServices::from_embedded(instance)
            .map(Self)
            .map_err(|e| Error::SigningConfig(e.to_string()))
    }

    /// Explicit services: a Fulcio base URL, a Rekor v1 base URL, and optionally the full URL
    /// of an RFC 3161 timestamp authority (e.g. `https://host/api/v1/timestamp`).
    pub fn from_urls(fulcio: &str, rekor: &str, tsa: Option<&str>) -> Result<Self, Error> {
        check_url("Fulcio", fulcio)?;
        check_url("Rekor", rekor)?;
        let mut services = SigningServices::new(trim(fulcio), trim(rekor));
        if let Some(tsa) = tsa {
            check_url("timestamp authority", tsa)?;
            services = services.with_tsa_url(tsa);
        }
        Ok(Self(services))
    }

    /// Replace some of the services (explicit flags over a signing config). A new Rekor URL
    /// is taken to speak the Rekor v1 API.
    pub fn with_overrides(
        self,
        fulcio: Option<&str>,
        rekor: Option<&str>,
        tsa: Option<&str>,
    ) -> Result<Self, Error> {
        let fulcio = match fulcio {
            Some(url) => {
                check_url("Fulcio", url)?;
                trim(url)
            }
            None => self.fulcio_url().to_owned(),
        };
        let mut services = SigningServices::new(fulcio, self.rekor_url());
        services = match rekor {
            Some(url) => {
                check_url("Rekor", url)?;
                services.with_rekor(trim(url), RekorApiVersion::V1)
            }
            None => services.with_rekor(self.rekor_url(), self.0.rekor_api_version()),
        };
        if let Some(url) = tsa.or(self.tsa_url()) {
            check_url("timestamp authority", url)?;
            services = services.with_tsa_url(url);
        }
        services
            .validate()
            .map_err(|e| Error::SigningConfig(e.to_string()))?;
        Ok(Self(services))
    }

    /// The Fulcio URL.
    pub fn fulcio_url(&self) -> &str {
        self.0.fulcio_url()
    }

    /// The Rekor URL.
    pub fn rekor_url(&self) -> &str {
        self.0.rekor_url()
    }

    /// The timestamp authority URL, when timestamps are requested.
    pub fn tsa_url(&self) -> Option<&str> {
        self.0.tsa_url()
    }
}

fn trim(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

/// An OIDC identity token (a JWT; its claims are read, not verified: Fulcio verifies it).
#[derive(Clone)]
pub struct Token(IdentityToken);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("issuer", &self.issuer())
            .field("identity", &self.identity())
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Parse a JWT. Refuses one that has expired.
    pub fn from_jwt(jwt: &str) -> Result<Self, Error> {
        let token = IdentityToken::from_jwt(jwt.trim()).map_err(|e| Error::Token(e.to_string()))?;
        if token.is_expired() {
            return Err(Error::TokenExpired(token.expiration().to_string()));
        }
        Ok(Self(token))
    }

    /// The token's issuer (`iss`): the certificate's OIDC issuer will be this.
    pub fn issuer(&self) -> &str {
        self.0.issuer()
    }

    /// The identity Fulcio will most likely certify (the email, or `sub`).
    pub fn identity(&self) -> &str {
        self.0.identity()
    }
}

/// Where [`find_token`] found the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// Given explicitly.
    Explicit,
    /// The `SIGSTORE_ID_TOKEN` environment variable.
    Environment,
    /// The CI's ambient credentials (e.g. GitHub Actions).
    Ambient,
}

/// The identity token: `explicit` if given, else `$SIGSTORE_ID_TOKEN` if set and not empty,
/// else the CI's ambient credentials. On GitHub Actions (`ACTIONS_ID_TOKEN_REQUEST_URL` and
/// `ACTIONS_ID_TOKEN_REQUEST_TOKEN` set, i.e. `permissions: id-token: write`) this requests
/// a token with audience `sigstore` from the runner's token service, as
/// `@actions/core`'s `getIDToken` does: `GET URL&audience=sigstore` with
/// `Authorization: bearer TOKEN`, answered by `{"value": JWT}`. Other CIs (GitLab, Buildkite,
/// CircleCI) go through `sigstore-oidc`'s ambient detection.
pub fn find_token(explicit: Option<&str>) -> Result<(Token, TokenSource), Error> {
    if let Some(jwt) = explicit {
        return Ok((Token::from_jwt(jwt)?, TokenSource::Explicit));
    }
    if let Some(jwt) = std::env::var(TOKEN_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return Ok((Token::from_jwt(&jwt)?, TokenSource::Environment));
    }
    let non_empty = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let (Some(url), Some(bearer)) = (non_empty(ACTIONS_URL_ENV), non_empty(ACTIONS_TOKEN_ENV)) {
        let jwt = runtime()?.block_on(github_actions_token(&url, &bearer))?;
        return Ok((Token::from_jwt(&jwt)?, TokenSource::Ambient));
    }
    let ambient = runtime()?
        .block_on(IdentityToken::detect_ambient())
        .map_err(|e| Error::Ambient(e.to_string()))?;
    match ambient {
        Some(token) => Ok((Token(token), TokenSource::Ambient)),
        None => Err(Error::NoToken),
    }
}

/// Ask the GitHub Actions token service for a token with audience `sigstore`.
async fn github_actions_token(url: &str, bearer: &str) -> Result<String, Error> {
    let shown = url.split('?').next().unwrap_or(url).to_owned();
    let fail = |message: String, refused: bool| Error::GitHubActions {
        url: shown.clone(),
        message,
        refused,
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| fail(format!("cannot build the HTTP client: {e}"), false))?;
    let response = client
        .get(url)
        .query(&[("audience", "sigstore")])
        .header(reqwest::header::AUTHORIZATION, format!("bearer {bearer}"))
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        // Without the URL: reqwest's text would repeat it, query included.
        .map_err(|e| fail(format!("cannot reach it: {}", e.without_url()), false))?;
    let status = response.status();
    if !status.is_success() {
        let refused = matches!(status.as_u16(), 401 | 403);
        return Err(fail(format!("HTTP {status}"), refused));
    }
    let body = response.bytes().await.map_err(|e| {
        fail(
            format!("cannot read the answer: {}", e.without_url()),
            false,
        )
    })?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| fail(format!("the answer is not JSON: {e}"), false))?;
    match value.get("value").and_then(serde_json::Value::as_str) {
        Some(jwt) if !jwt.trim().is_empty() => Ok(jwt.to_owned()),
        _ => Err(fail(
            "the answer has no `value` with the token".to_owned(),
            false,
        )),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))
}

/// A signed bundle and who it says signed.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The Sigstore bundle v0.3, JSON.
    pub bundle_json: String,
    /// The signing certificate's identity (SAN), as Fulcio issued it.
    pub identity: String,
    /// The signing certificate's OIDC issuer.
    pub issuer: String,
    /// The Rekor log index of the entry.
    pub log_index: Option<u64>,
}

/// Signs with one identity token against one set of services. Each signature gets its own
/// ephemeral key and certificate.
pub struct KeylessSigner {
    runtime: tokio::runtime::Runtime,
    signer: sigstore_sign::Signer,
    services: Services,
}

impl fmt::Debug for KeylessSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeylessSigner")
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl KeylessSigner {
    /// A signer for `token` submitting to `services`.
    pub fn new(services: &Services, token: Token) -> Result<Self, Error> {
        services
            .0
            .validate()
            .map_err(|e| Error::SigningConfig(e.to_string()))?;
        let signer = SigningContext::new(services.0.clone()).signer(token.0);
        Ok(Self {
            runtime: runtime()?,
            signer,
            services: services.clone(),
        })
    }

    /// Sign an artifact (read to its end, hashed in constant memory): a message-signature
    /// bundle with a `hashedrekord` log entry.
    pub fn sign_artifact(&self, artifact: impl Read) -> Result<Signed, Error> {
        let bundle = self
            .runtime
            .block_on(self.signer.sign_reader(artifact))
            .map_err(|e| self.error(e))?;
        finish(&bundle)
    }

    /// Sign an in-toto statement, exactly these bytes, as a DSSE envelope (payload type
    /// `application/vnd.in-toto+json`) with a `dsse` log entry.
    pub fn sign_in_toto(&self, statement: &[u8]) -> Result<Signed, Error> {
        let bundle = self
            .runtime
            .block_on(self.signer.sign_raw_statement(statement))
            .map_err(|e| self.error(e))?;
        finish(&bundle)
    }

    fn error(&self, e: sigstore_sign::Error) -> Error {
        use sigstore_sign::Error as E;
        let url = |u: &str| u.to_owned();
        match e {
            E::Fulcio(e) => Error::Fulcio {
                url: url(self.services.fulcio_url()),
                message: e.to_string(),
            },
            E::Rekor(e) => Error::Rekor {
                url: url(self.services.rekor_url()),
                message: e.to_string(),
            },
            E::Tsa(e) => Error::Tsa {
                url: self.services.tsa_url().map(url).unwrap_or_default(),
                message: e.to_string(),
            },
            E::Oidc(e) => Error::Token(e.to_string()),
            E::Config(e) => Error::SigningConfig(e.to_string()),
            E::InvalidStatement(e) => Error::Statement(e.to_string()),
            E::ArtifactRead(e) => Error::ArtifactRead(e),
            other => Error::Other(other.to_string()),
        }
    }
}

fn finish(bundle: &Bundle) -> Result<Signed, Error> {
    let bundle_json = bundle
        .to_json_pretty()
        .map_err(|e| Error::Other(format!("cannot serialise the bundle: {e}")))?;
    let cert = bundle
        .signing_certificate()
        .ok_or_else(|| Error::Other("the bundle has no signing certificate".into()))?;
    let info = parse_certificate_info(cert).map_err(|e| Error::Fulcio {
        url: String::new(),
        message: format!("the issued certificate is unusable: {e}"),
    })?;
    let identity = info
        .identity
        .map(|san| san.to_string())
        .ok_or_else(|| Error::Other("the certificate names no identity (SAN)".into()))?;
    let issuer = info
        .issuer
        .ok_or_else(|| Error::Other("the certificate names no OIDC issuer".into()))?;
    let log_index = bundle
        .verification_material
        .tlog_entries
        .first()
        .and_then(|e| u64::try_from(e.log_index.as_i64()).ok());
    Ok(Signed {
        bundle_json,
        identity,
        issuer,
        log_index,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn b64url(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in s.as_bytes().chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    fn jwt(exp: u64) -> String {
        let claims = format!(
            r#"{{"iss":"https://issuer.example","sub":"https://ci.example/release","aud":"sigstore","exp":{exp}}}"#
        );
        format!("{}.{}.c2ln", b64url(r#"{"alg":"none"}"#), b64url(&claims))
    }

    #[test]
    fn token_claims_and_expiry() {
        let t = Token::from_jwt(&jwt(4_102_444_800)).unwrap();
        assert_eq!(t.issuer(), "https://issuer.example");
        assert_eq!(t.identity(), "https://ci.example/release");
        assert!(matches!(
            Token::from_jwt(&jwt(1_000)),
            Err(Error::TokenExpired(_))
        ));
        assert!(matches!(Token::from_jwt("a.b"), Err(Error::Token(_))));
        let t = find_token(Some(&jwt(4_102_444_800))).unwrap();
        assert_eq!(t.1, TokenSource::Explicit);
    }

    #[test]
    fn services_from_urls_and_config() {
        let s = Services::from_urls(
            "http://127.0.0.1:1/",
            "http://127.0.0.1:1",
            Some("http://127.0.0.1:1/api/v1/timestamp"),
        )
        .unwrap();
        assert_eq!(s.fulcio_url(), "http://127.0.0.1:1");
        assert_eq!(s.tsa_url(), Some("http://127.0.0.1:1/api/v1/timestamp"));
        assert!(matches!(
            Services::from_urls("127.0.0.1", "http://x", None),
            Err(Error::Url { .. })
        ));
        let s = Services::embedded(Instance::Production)
            .unwrap()
            .with_overrides(Some("http://127.0.0.1:2"), None, None)
            .unwrap();
        assert_eq!(s.fulcio_url(), "http://127.0.0.1:2");
        assert!(matches!(
            Services::from_signing_config(b"{}"),
            Err(Error::SigningConfig(_))
        ));
    }
}
