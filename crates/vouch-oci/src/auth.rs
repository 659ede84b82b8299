//! Registry credentials: explicit ones first, then the standard docker config
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), else anonymous.
//!
//! Credential helpers (`credHelpers` for one registry, else `credsStore`), as docker runs
//! them: `docker-credential-NAME get` from `PATH`, the server on standard input, JSON out.
//! Only when the caller asks ([`Helpers::Run`]): the `vouch` command line does; the
//! verifiers in the cluster (`vouch-init`, the webhook) never execute a program named by a
//! config file, and say so when a login only a helper holds would be needed.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    pub fn from_docker_config(registry: &str, helpers: Helpers) -> Result<Self> {
        match docker_config_path() {
            Some(path) => Self::from_docker_config_file(&path, registry, helpers),
            None => Ok(Self::Anonymous),
        }
    }

    /// Like [`Credentials::from_docker_config`], from a given file.
    pub fn from_docker_config_file(path: &Path, registry: &str, helpers: Helpers) -> Result<Self> {
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
        let config = parse_docker_config(&text).map_err(|reason| Error::DockerConfig {
            path: path.display().to_string(),
            reason,
        })?;
        resolve(&config, registry, helpers, &run_helper).map_err(|reason| Error::DockerConfig {
            path: path.display().to_string(),
            reason,
        })
    }
}

/// Whether credential helpers named by the docker config may be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Helpers {
    /// Never execute them (the verifiers); a registry only a helper has a login for is read
    /// anonymously, and the refusal that follows says why.
    #[default]
    Never,
    /// Run them, as docker does (the command line).
    Run,
}

/// Where the docker config lives: `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
#[must_use]
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
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

pub(crate) fn parse_docker_config(text: &[u8]) -> Result<DockerConfig, String> {
    serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))
}

/// Runs helper NAME for SERVER: `Ok(None)` when it has no credentials for it.
pub(crate) type RunHelper<'a> = &'a dyn Fn(&str, &str) -> Result<Option<Credentials>, String>;

/// The credentials `config` gives for `registry`, in docker's order: the registry's
/// `credHelpers` entry, else `credsStore`, else `auths` (also when the store has none).
pub(crate) fn resolve(
    config: &DockerConfig,
    registry: &str,
    helpers: Helpers,
    run: RunHelper<'_>,
) -> Result<Credentials, String> {
    let helper = config
        .cred_helpers
        .iter()
        .find(|(k, _)| same_registry(k, registry))
        .map(|(_, v)| v)
        .or(config.creds_store.as_ref())
        .filter(|h| !h.is_empty());
    if let Some(name) = helper
        && helpers == Helpers::Run
    {
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(format!(
                "credential helper name `{name}` is not a plain name"
            ));
        }
        // Docker Hub's credentials are kept under its v1 URL.
        let server = if same_registry("docker.io", registry) {
            "https://index.docker.io/v1/"
        } else {
            registry
        };
        if let Some(c) = run(name, server)? {
            return Ok(c);
        }
    }
    auths_entry(config, registry)
}

fn auths_entry(config: &DockerConfig, registry: &str) -> Result<Credentials, String> {
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

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperOutput {
    username: String,
    secret: String,
}

/// How long a credential helper may take (it may ask a keychain or a cloud).
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// `docker-credential-NAME get`, SERVER on standard input.
fn run_helper(name: &str, server: &str) -> Result<Option<Credentials>, String> {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run credential helper `{program}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| format!("`{program}`: {e}"))?;
    }
    let until = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| format!("`{program}`: {e}"))? {
            Some(s) => break s,
            None if Instant::now() >= until => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "credential helper `{program}` did not answer within {} s",
                    HELPER_TIMEOUT.as_secs()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let mut out = Vec::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.by_ref().take(1 << 20).read_to_end(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(4096).read_to_string(&mut err);
    }
    if !status.success() {
        let said = format!("{}{err}", String::from_utf8_lossy(&out));
        // The helper protocol's way of saying "no login stored for this server".
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!(
            "credential helper `{program}` failed ({status}): {}",
            said.trim()
        ));
    }
    parse_helper_output(name, &out).map(Some)
}

/// What a credential helper `docker-credential-NAME get` printed on success.
pub(crate) fn parse_helper_output(name: &str, out: &[u8]) -> Result<Credentials, String> {
    let o: HelperOutput = serde_json::from_slice(out).map_err(|e| {
        format!("credential helper `docker-credential-{name}` printed no credentials: {e}")
    })?;
    Ok(if o.username == "<token>" {
        Credentials::Bearer(o.secret)
    } else {
        Credentials::Basic {
            username: o.username,
            password: o.secret,
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn creds(cfg: &[u8], registry: &str) -> Result<Credentials, String> {
        let never = |_: &str, _: &str| -> Result<Option<Credentials>, String> {
            panic!("no helper may run")
        };
        resolve(&parse_docker_config(cfg)?, registry, Helpers::Never, &never)
    }

    /// A recorded helper: (name, server) -> answer; every call is recorded.
    fn with_helpers(
        cfg: &[u8],
        registry: &str,
        answers: &[(&str, &str, Option<Credentials>)],
    ) -> (Result<Credentials, String>, Vec<(String, String)>) {
        let calls = std::cell::RefCell::new(Vec::new());
        let run = |name: &str, server: &str| {
            calls
                .borrow_mut()
                .push((name.to_owned(), server.to_owned()));
            answers
                .iter()
                .find(|(n, s, _)| *n == name && *s == server)
                .map(|(_, _, c)| c.clone())
                .ok_or_else(|| format!("unexpected helper call {name} {server}"))
        };
        let r = resolve(
            &parse_docker_config(cfg).unwrap(),
            registry,
            Helpers::Run,
            &run,
        );
        (r, calls.into_inner())
    }

    fn basic(u: &str) -> Credentials {
        Credentials::Basic {
            username: u.into(),
            password: "p".into(),
        }
    }

    #[test]
    fn helpers_in_docker_order_and_only_when_allowed() {
        let cfg = br#"{"credsStore":"store","credHelpers":{"ecr.example":"ecr"},
                       "auths":{"ecr.example":{},"plain.example":{"auth":"YTpi"}}}"#;
        // credHelpers for its registry, before credsStore.
        let (r, calls) = with_helpers(
            cfg,
            "ecr.example",
            &[("ecr", "ecr.example", Some(basic("AWS")))],
        );
        assert_eq!(r.unwrap(), basic("AWS"));
        assert_eq!(calls, vec![("ecr".to_owned(), "ecr.example".to_owned())]);
        // credsStore for the others; when it has nothing, the `auths` entry.
        let (r, _) = with_helpers(
            cfg,
            "other.example",
            &[("store", "other.example", Some(basic("s")))],
        );
        assert_eq!(r.unwrap(), basic("s"));
        let (r, _) = with_helpers(cfg, "plain.example", &[("store", "plain.example", None)]);
        assert_eq!(
            r.unwrap(),
            Credentials::Basic {
                username: "a".into(),
                password: "b".into()
            }
        );
        // Docker Hub is asked for under its v1 URL.
        let (_, calls) = with_helpers(
            cfg,
            "docker.io",
            &[("store", "https://index.docker.io/v1/", None)],
        );
        assert_eq!(calls[0].1, "https://index.docker.io/v1/");
        // The verifiers never run one: the `auths` entry (empty here) is all there is.
        assert_eq!(creds(cfg, "ecr.example").unwrap(), Credentials::Anonymous);
        // A helper "name" that would be a path is refused.
        let bad = br#"{"credsStore":"../../tmp/x"}"#;
        assert!(
            with_helpers(bad, "r.example", &[])
                .0
                .unwrap_err()
                .contains("plain name")
        );
    }

    #[test]
    fn reads_auth_for_the_matching_registry() {
        let cfg = br#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYTpzcw=="},
                        "other.example":{"auth":"eDp5"}}}"#;
        assert_eq!(
            creds(cfg, "127.0.0.1:5000").unwrap(),
            Credentials::Basic {
                username: "user".into(),
                password: "pa:ss".into()
            }
        );
        assert_eq!(creds(cfg, "third.example").unwrap(), Credentials::Anonymous);
    }

    #[test]
    fn docker_hub_is_stored_under_its_v1_url() {
        let cfg = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"YTpi"}}}"#;
        assert!(matches!(
            creds(cfg, "docker.io").unwrap(),
            Credentials::Basic { .. }
        ));
    }

    #[test]
    fn identity_tokens_win_and_garbage_is_an_error() {
        let cfg = br#"{"auths":{"r.example":{"auth":"YTpi","identitytoken":"tok"}}}"#;
        assert_eq!(
            creds(cfg, "r.example").unwrap(),
            Credentials::Bearer("tok".into())
        );
        assert!(creds(b"{", "r.example").is_err());
        let bad = br#"{"auths":{"r.example":{"auth":"!!"}}}"#;
        assert!(creds(bad, "r.example").is_err());
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
