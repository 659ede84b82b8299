//! Registry credentials: explicit ones first, then the standard docker config
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), else anonymous.
//!
//! Credential helpers (`credsStore`, `credHelpers`) are not run: vouch never executes
//! programs named by a config file. Use `docker login` with a plain store, or pass credentials.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// No credentials.
    #[default]
    Anonymous,
    /// User name and password (or token used as a password).
    Basic { username: String, password: String },
    /// An identity token (bearer).
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    pub(crate) fn to_auth(&self) -> RegistryAuth {
        match self {
            Self::Anonymous => RegistryAuth::Anonymous,
            Self::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Self::Bearer(t) => RegistryAuth::Bearer(t.clone()),
        }
    }

    /// The credentials the docker config holds for `registry` (`host[:port]`), or anonymous
    /// when there is no config or no entry.
    pub fn from_docker_config(registry: &str) -> Result<Self> {
        match docker_config_path() {
            Some(path) => Self::from_docker_config_file(&path, registry),
            None => Ok(Self::Anonymous),
        }
    }

    /// Like [`Credentials::from_docker_config`], from a given file.
    pub fn from_docker_config_file(path: &Path, registry: &str) -> Result<Self> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::Anonymous),
            Err(e) => {
                return Err(Error::DockerConfig {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                });
            }
        };
        parse_docker_config(&text, registry).map_err(|reason| Error::DockerConfig {
            path: path.display().to_string(),
            reason,
        })
    }
}

/// Where the docker config lives: `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
#[must_use]
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

#[derive(Debug, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The docker config's key for a registry: Docker Hub is stored under its v1 URL, others
/// under `host[:port]`, sometimes with a scheme and path.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn same_registry(key: &str, registry: &str) -> bool {
    let host = key_host(key);
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    host == registry || (hub(host) && hub(registry))
}

fn parse_docker_config(text: &[u8], registry: &str) -> Result<Credentials, String> {
    let config: DockerConfig =
        serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Some(entry) = config
        .auths
        .iter()
        .find(|(k, _)| same_registry(k, registry))
        .map(|(_, v)| v)
    else {
        return Ok(Credentials::Anonymous);
    };
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::Bearer(token.to_owned()));
    }
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        });
    }
    let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(Credentials::Anonymous);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| format!("the `auth` of `{registry}` is not base64: {e}"))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| format!("the `auth` of `{registry}` is not UTF-8"))?;
    let Some((username, password)) = decoded.split_once(':') else {
        return Err(format!("the `auth` of `{registry}` is not `user:password`"));
    };
    Ok(Credentials::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_auth_for_the_matching_registry() {
        let cfg = br#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYTpzcw=="},
                        "other.example":{"auth":"eDp5"}}}"#;
        assert_eq!(
            parse_docker_config(cfg, "127.0.0.1:5000").unwrap(),
            Credentials::Basic {
                username: "user".into(),
                password: "pa:ss".into()
            }
        );
        assert_eq!(
            parse_docker_config(cfg, "third.example").unwrap(),
            Credentials::Anonymous
        );
    }

    #[test]
    fn docker_hub_is_stored_under_its_v1_url() {
        let cfg = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"YTpi"}}}"#;
        assert!(matches!(
            parse_docker_config(cfg, "docker.io").unwrap(),
            Credentials::Basic { .. }
        ));
    }

    #[test]
    fn identity_tokens_win_and_garbage_is_an_error() {
        let cfg = br#"{"auths":{"r.example":{"auth":"YTpi","identitytoken":"tok"}}}"#;
        assert_eq!(
            parse_docker_config(cfg, "r.example").unwrap(),
            Credentials::Bearer("tok".into())
        );
        assert!(parse_docker_config(b"{", "r.example").is_err());
        let bad = br#"{"auths":{"r.example":{"auth":"!!"}}}"#;
        assert!(parse_docker_config(bad, "r.example").is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
