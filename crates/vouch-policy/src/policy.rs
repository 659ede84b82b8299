//! The trust policy file: parsing (strict), then validation into typed values.
//!
//! Two steps, like the command lines: `Raw*` structs mirror the YAML exactly (with
//! `deny_unknown_fields`, so a misspelt `requireDigests` is an error, not a silently
//! weaker policy); [`Policy`] is what the rest of vouch uses, with keys loaded, globs
//! compiled and every cross-reference checked.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vouch_model::Digest;
use vouch_trust::PublicKey;

use crate::glob::Glob;
use crate::image::ImageRef;

/// The only `apiVersion` this build reads.
pub const API_VERSION: &str = "vouch.dev/v1alpha1";
/// The `kind` of a trust policy.
pub const KIND: &str = "TrustPolicy";
/// The annotation that carries a Pod's model pin unless the policy names another.
pub const DEFAULT_MODEL_PIN_ANNOTATION: &str = "vouch.dev/model-digest";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPolicy {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: Option<RawMetadata>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    authorities: Vec<RawAuthority>,
    #[serde(default)]
    images: Vec<RawImageRule>,
    #[serde(default)]
    require_digest: Option<bool>,
    #[serde(default)]
    model_pin_annotation: Option<String>,
    #[serde(default)]
    init_verifier_image: Option<String>,
    #[serde(default)]
    exempt_namespaces: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAuthority {
    name: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    key_data: Option<String>,
    #[serde(default)]
    keyless: Option<RawKeyless>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawKeyless {
    issuer: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    subject_reg_exp: Option<String>,
    #[serde(default)]
    trusted_root: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImageRule {
    glob: String,
    authorities: Vec<String>,
}

/// What happens to a request the policy would deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny it.
    #[default]
    Enforce,
    /// Allow it, with warnings (`kubectl` prints them).
    Warn,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Enforce => "enforce",
            Self::Warn => "warn",
        })
    }
}

/// How a keyless identity's subject is matched.
#[derive(Debug, Clone)]
pub enum SubjectMatch {
    /// Exactly this subject.
    Exact(String),
    /// A regular expression (anchored as written).
    RegExp(regex_lite::Regex),
}

/// What an authority trusts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AuthorityKind {
    /// A public key (ECDSA P-256 or P-384).
    Key(PublicKey),
    /// A keyless (Fulcio certificate) identity: the OIDC issuer and the subject (SAN), with
    /// the Sigstore trusted root its certificates and log entries are checked against.
    Keyless {
        /// OIDC issuer URL.
        issuer: String,
        /// Subject match.
        subject: SubjectMatch,
        /// Trusted root file, resolved against the policy's directory (`None`: the embedded
        /// public-good production root).
        trusted_root: Option<PathBuf>,
        /// That trusted root, loaded and checked when the policy is loaded.
        root: std::sync::Arc<vouch_trust::sigstore::TrustedRoot>,
    },
}

/// A named signer the policy trusts.
#[derive(Debug, Clone)]
pub struct Authority {
    /// The name rules refer to.
    pub name: String,
    /// What it trusts.
    pub kind: AuthorityKind,
}

/// Images that need a combined attestation, and who may sign it.
#[derive(Debug, Clone)]
pub struct ImageRule {
    /// Which repositories.
    pub glob: Glob,
    /// Names of the authorities, any of which may sign.
    pub authorities: Vec<String>,
}

/// A validated trust policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `metadata.name`, when given.
    pub name: Option<String>,
    /// Enforce or warn.
    pub mode: Mode,
    /// The signers.
    pub authorities: Vec<Authority>,
    /// The image rules, in file order. Every rule that matches an image applies.
    pub rules: Vec<ImageRule>,
    /// Every image must be pinned by digest.
    pub require_digest: bool,
    /// The annotation that carries the model pin.
    pub model_pin_annotation: String,
    /// The `vouch-init` image (by digest) Pods must run as an init container when their
    /// model is on a volume other than an image volume. `None`: such Pods are denied.
    pub init_verifier_image: Option<ImageRef>,
    /// The `vouch-init` image as written in the policy.
    pub init_verifier_image_text: Option<String>,
    /// Namespaces the policy does not apply to.
    pub exempt_namespaces: Vec<String>,
    /// SHA-256 over the policy file and every key it loads: a cache key.
    pub digest: Digest,
}

/// Why a policy cannot decide who may sign an image. Both are rejections: the image is
/// not admitted on this policy's word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Undecidable {
    /// No `images` rule covers the repository.
    #[error(
        "no rule of the policy covers `{repository}`, so it names no authority that may sign it"
    )]
    NotCovered { repository: String },
}

impl Undecidable {
    /// How to fix the policy.
    #[must_use]
    pub fn hint(&self) -> String {
        match self {
            Self::NotCovered { repository } => format!(
                "add an `images` rule whose glob matches `{repository}`, e.g. `- glob: {repository}` with `authorities: [NAME]`"
            ),
        }
    }
}

/// Why a policy file is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read the policy file `{path}`: {err}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The YAML does not parse into the policy's shape (includes unknown fields, with the
    /// line and column).
    #[error("the policy is not a valid TrustPolicy:\n{0}")]
    Syntax(String),
    /// A field has a value that is not allowed.
    #[error("the policy is invalid: `{field}`: {message}")]
    Invalid {
        /// Path of the field, e.g. `images[0].authorities[1]`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A key file named by the policy could not be read or parsed.
    #[error("the policy is invalid: `{field}`: cannot use the key `{path}`: {message}")]
    Key {
        /// The field.
        field: String,
        /// The key file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

impl Policy {
    /// Read and validate the policy file at `path`; key paths are relative to its directory.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|err| PolicyError::Read {
            path: path.to_owned(),
            err,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, Some(base))
    }

    /// Parse and validate policy text. `base` is where relative key paths are read from;
    /// without it, only inline `keyData` keys are accepted.
    pub fn parse(text: &str, base: Option<&Path>) -> Result<Self, PolicyError> {
        let raw: RawPolicy =
            serde_saphyr::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        let mut digest_input = text.as_bytes().to_vec();
        if raw.api_version != API_VERSION {
            return Err(invalid(
                "apiVersion",
                format!(
                    "`{}` is not supported; use `{API_VERSION}`",
                    raw.api_version
                ),
            ));
        }
        if raw.kind != KIND {
            return Err(invalid(
                "kind",
                format!("`{}` is not a trust policy; use `{KIND}`", raw.kind),
            ));
        }
        let mut authorities: Vec<Authority> = Vec::new();
        for (i, a) in raw.authorities.iter().enumerate() {
            let field = format!("authorities[{i}]");
            if a.name.trim().is_empty() {
                return Err(invalid(format!("{field}.name"), "must not be empty"));
            }
            if authorities.iter().any(|b| b.name == a.name) {
                return Err(invalid(
                    format!("{field}.name"),
                    format!("`{}` is defined twice", a.name),
                ));
            }
            let kind = match (&a.key, &a.key_data, &a.keyless) {
                (Some(path), None, None) => {
                    let Some(base) = base else {
                        return Err(invalid(
                            format!("{field}.key"),
                            "key files need a policy file to be relative to; use `keyData`",
                        ));
                    };
                    let p = base.join(path);
                    let pem = std::fs::read(&p).map_err(|e| PolicyError::Key {
                        field: format!("{field}.key"),
                        path: PathBuf::from(path),
                        message: e.to_string(),
                    })?;
                    digest_input.extend_from_slice(&pem);
                    AuthorityKind::Key(PublicKey::from_pem(&pem).map_err(|e| PolicyError::Key {
                        field: format!("{field}.key"),
                        path: PathBuf::from(path),
                        message: e.to_string(),
                    })?)
                }
                (None, Some(pem), None) => AuthorityKind::Key(
                    PublicKey::from_pem(pem.as_bytes())
                        .map_err(|e| invalid(format!("{field}.keyData"), e.to_string()))?,
                ),
                (None, None, Some(k)) => keyless(&field, k, base)?,
                _ => {
                    return Err(invalid(
                        field,
                        "give exactly one of `key` (a file), `keyData` (inline PEM) or `keyless`",
                    ));
                }
            };
            authorities.push(Authority {
                name: a.name.clone(),
                kind,
            });
        }
        let mut rules = Vec::new();
        for (i, r) in raw.images.iter().enumerate() {
            let glob = Glob::new(&r.glob).map_err(|m| invalid(format!("images[{i}].glob"), m))?;
            if r.authorities.is_empty() {
                return Err(invalid(
                    format!("images[{i}].authorities"),
                    "name at least one authority that may sign these images",
                ));
            }
            for (j, name) in r.authorities.iter().enumerate() {
                if !authorities.iter().any(|a| &a.name == name) {
                    return Err(invalid(
                        format!("images[{i}].authorities[{j}]"),
                        format!(
                            "no authority is named `{name}` (defined: {})",
                            names(&authorities)
                        ),
                    ));
                }
            }
            rules.push(ImageRule {
                glob,
                authorities: r.authorities.clone(),
            });
        }
        // Optional: a policy whose models all arrive as image volumes needs no vouch-init;
        // a Pod that keeps its model on another volume is then denied (decide.rs).
        let init_verifier_image = match &raw.init_verifier_image {
            None => None,
            Some(s) => {
                let r = ImageRef::parse(s).map_err(|m| invalid("initVerifierImage", m))?;
                if r.digest.is_none() {
                    return Err(invalid(
                        "initVerifierImage",
                        format!(
                            "`{s}` must be pinned by digest: `{}@sha256:<hex>`",
                            r.repository
                        ),
                    ));
                }
                Some(r)
            }
        };
        let model_pin_annotation = raw
            .model_pin_annotation
            .clone()
            .unwrap_or_else(|| DEFAULT_MODEL_PIN_ANNOTATION.to_owned());
        if model_pin_annotation.is_empty()
            || model_pin_annotation.len() > 316
            || model_pin_annotation.chars().any(char::is_whitespace)
        {
            return Err(invalid(
                "modelPinAnnotation",
                "must be an annotation key such as `vouch.dev/model-digest`",
            ));
        }
        for (i, ns) in raw.exempt_namespaces.iter().enumerate() {
            if ns.is_empty() || ns.contains('*') {
                return Err(invalid(
                    format!("exemptNamespaces[{i}]"),
                    "must be a namespace name (no globs)",
                ));
            }
        }
        Ok(Self {
            name: raw.metadata.and_then(|m| m.name),
            mode: raw.mode.unwrap_or_default(),
            authorities,
            rules,
            require_digest: raw.require_digest.unwrap_or(true),
            model_pin_annotation,
            init_verifier_image,
            init_verifier_image_text: raw.init_verifier_image,
            exempt_namespaces: raw.exempt_namespaces,
            digest: Digest::sha256(&digest_input),
        })
    }

    /// The rules that apply to `repository`.
    pub fn rules_for<'a>(&'a self, repository: &'a str) -> impl Iterator<Item = &'a ImageRule> {
        self.rules
            .iter()
            .filter(move |r| r.glob.matches(repository))
    }

    /// Whether any rule applies to `repository`.
    pub fn covers(&self, repository: &str) -> bool {
        self.rules_for(repository).next().is_some()
    }

    /// The authorities of every rule that applies to `repository`, each once, in rule order:
    /// the signers whose attestations are accepted for it. Empty when no rule applies.
    pub fn authorities_for(&self, repository: &str) -> Vec<&Authority> {
        let mut out: Vec<&Authority> = Vec::new();
        for rule in self.rules_for(repository) {
            for name in &rule.authorities {
                if let Some(a) = self.authority(name)
                    && !out.iter().any(|b| b.name == a.name)
                {
                    out.push(a);
                }
            }
        }
        out
    }

    /// The names of [`Policy::authorities_for`] `repository`, for messages: `` `a`, `b` ``.
    pub fn authority_names_for(&self, repository: &str) -> String {
        self.authorities_for(repository)
            .iter()
            .map(|a| format!("`{}`", a.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The authorities that may sign attestations for `repository`: [`Undecidable`] when no
    /// rule covers it.
    pub fn signers_for(&self, repository: &str) -> Result<Vec<&Authority>, Undecidable> {
        let authorities = self.authorities_for(repository);
        if authorities.is_empty() {
            return Err(Undecidable::NotCovered {
                repository: repository.to_owned(),
            });
        }
        Ok(authorities)
    }

    /// The authority with this name.
    pub fn authority(&self, name: &str) -> Option<&Authority> {
        self.authorities.iter().find(|a| a.name == name)
    }

    /// Whether the policy does not apply to this namespace.
    pub fn is_exempt(&self, namespace: &str) -> bool {
        self.exempt_namespaces.iter().any(|n| n == namespace)
    }
}

fn names(authorities: &[Authority]) -> String {
    if authorities.is_empty() {
        return "none".into();
    }
    authorities
        .iter()
        .map(|a| format!("`{}`", a.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn keyless(field: &str, k: &RawKeyless, base: Option<&Path>) -> Result<AuthorityKind, PolicyError> {
    if !k.issuer.starts_with("https://") {
        return Err(invalid(
            format!("{field}.keyless.issuer"),
            "must be an https:// URL",
        ));
    }
    let subject = match (&k.subject, &k.subject_reg_exp) {
        (Some(s), None) if !s.is_empty() => SubjectMatch::Exact(s.clone()),
        (None, Some(r)) => SubjectMatch::RegExp(regex_lite::Regex::new(r).map_err(|e| {
            invalid(
                format!("{field}.keyless.subjectRegExp"),
                format!("not a regular expression: {e}"),
            )
        })?),
        _ => {
            return Err(invalid(
                format!("{field}.keyless"),
                "give exactly one of `subject` or `subjectRegExp`",
            ));
        }
    };
    let trusted_root = k
        .trusted_root
        .as_ref()
        .map(|t| base.map_or_else(|| PathBuf::from(t), |b| b.join(t)));
    let root = match &trusted_root {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                invalid(
                    format!("{field}.keyless.trustedRoot"),
                    format!("cannot read `{}`: {e}", path.display()),
                )
            })?;
            vouch_trust::sigstore::TrustedRoot::from_json(&bytes)
        }
        None => vouch_trust::sigstore::TrustedRoot::embedded(
            vouch_trust::sigstore::Instance::Production,
        ),
    }
    .map_err(|e| invalid(format!("{field}.keyless.trustedRoot"), e.to_string()))?;
    Ok(AuthorityKind::Keyless {
        issuer: k.issuer.clone(),
        subject,
        trusted_root,
        root: std::sync::Arc::new(root),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn base() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/policy"
        ))
    }

    fn minimal(extra: &str) -> String {
        format!(
            "apiVersion: vouch.dev/v1alpha1\nkind: TrustPolicy\nauthorities:\n  - name: release-ci\n    key: ../keys/release.pub\nimages:\n  - glob: registry.example.com/models/*\n    authorities: [release-ci]\ninitVerifierImage: registry.example.com/vouch/vouch-init@{D}\n{extra}"
        )
    }

    #[test]
    fn defaults_are_strict() {
        let p = Policy::parse(&minimal(""), Some(&base())).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert!(p.require_digest);
        assert_eq!(p.model_pin_annotation, DEFAULT_MODEL_PIN_ANNOTATION);
        assert!(p.covers("registry.example.com/models/llm"));
        assert!(!p.covers("registry.example.com/tools/x"));
    }

    #[test]
    fn unknown_fields_are_named_with_their_line() {
        let e = Policy::parse(&minimal("requireDigests: false\n"), Some(&base()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("requireDigests"), "{e}");
        assert!(e.contains("10"), "line number expected: {e}");
    }

    #[test]
    fn references_and_kinds_are_checked() {
        let text = minimal("").replace("authorities: [release-ci]", "authorities: [nobody]");
        let e = Policy::parse(&text, Some(&base())).unwrap_err().to_string();
        assert!(e.contains("images[0].authorities[0]"), "{e}");
        let text = minimal("").replace("v1alpha1", "v2");
        assert!(Policy::parse(&text, Some(&base())).is_err());
        let text = minimal("").replace(&format!("@{D}"), ":latest");
        let e = Policy::parse(&text, Some(&base())).unwrap_err().to_string();
        assert!(e.contains("initVerifierImage"), "{e}");
        let without = minimal("").replace(
            &format!("initVerifierImage: registry.example.com/vouch/vouch-init@{D}\n"),
            "",
        );
        assert!(!without.contains("initVerifierImage"));
        let p = Policy::parse(&without, Some(&base())).unwrap();
        assert!(p.init_verifier_image.is_none());
        let e = Policy::parse(&minimal("mode: audit\n"), Some(&base()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("audit"), "{e}");
    }

    #[test]
    fn authorities_for_merges_matching_rules_once() {
        let text = minimal("").replace(
            "images:\n",
            "  - name: other\n    key: ../keys/other.pub\nimages:\n  - glob: registry.example.com/models/llm\n    authorities: [other, release-ci]\n",
        );
        let p = Policy::parse(&text, Some(&base())).unwrap();
        let names: Vec<&str> = p
            .authorities_for("registry.example.com/models/llm")
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(names, ["other", "release-ci"]);
        let names: Vec<&str> = p
            .authorities_for("registry.example.com/models/x")
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(names, ["release-ci"]);
        assert!(p.authorities_for("docker.io/library/nginx").is_empty());
    }

    #[test]
    fn keyless_is_validated() {
        let text = minimal("").replace(
            "    key: ../keys/release.pub\n",
            "    keyless:\n      issuer: https://token.actions.githubusercontent.com\n      subjectRegExp: '^https://github.com/acme/(unclosed$'\n",
        );
        let e = Policy::parse(&text, Some(&base())).unwrap_err().to_string();
        assert!(e.contains("subjectRegExp"), "{e}");
    }
}
