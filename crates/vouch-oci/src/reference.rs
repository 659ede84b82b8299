//! Image references: `registry/repository[:tag][@sha256:hex]`, normalised the docker way
//! (`nginx` is `docker.io/library/nginx`).

use std::fmt;

use oci_client::Reference;

use crate::error::{Error, Result};

/// A parsed image reference.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageReference {
    inner: Reference,
}

impl fmt::Debug for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageReference({})", self.inner.whole())
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.whole())
    }
}

impl ImageReference {
    /// Parse a reference. A digest, when present, must be `sha256:` + 64 hex digits.
    pub fn parse(reference: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidReference {
            reference: reference.to_owned(),
            reason,
        };
        if reference.trim() != reference || reference.is_empty() {
            return Err(invalid("empty or surrounded by spaces".to_owned()));
        }
        let inner: Reference = reference.parse().map_err(|e| invalid(format!("{e}")))?;
        if let Some(d) = inner.digest()
            && !crate::is_sha256_digest(d)
        {
            return Err(invalid(format!(
                "`{d}` is not a sha256 digest (`sha256:` + 64 lower-case hex digits)"
            )));
        }
        Ok(Self { inner })
    }

    /// Parse a reference that must carry a digest.
    pub fn parse_pinned(reference: &str) -> Result<Self> {
        let r = Self::parse(reference)?;
        if r.digest().is_none() {
            return Err(Error::DigestRequired {
                reference: reference.to_owned(),
            });
        }
        Ok(r)
    }

    /// The registry host (with port), e.g. `127.0.0.1:5000` or `docker.io`.
    #[must_use]
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository path, e.g. `models/llm` or `library/nginx`.
    #[must_use]
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// `registry/repository`: the name recorded in attestations.
    #[must_use]
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// The tag, if any.
    #[must_use]
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The digest, if any.
    #[must_use]
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The same repository, pinned to `digest` (any tag dropped).
    #[must_use]
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            inner: Reference::with_digest(
                self.registry().to_owned(),
                self.repository().to_owned(),
                digest.to_owned(),
            ),
        }
    }

    /// The same repository with `tag`.
    #[must_use]
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            inner: Reference::with_tag(
                self.registry().to_owned(),
                self.repository().to_owned(),
                tag.to_owned(),
            ),
        }
    }

    /// Whether the registry host is a loopback address (`localhost`, `127.0.0.0/8`, `[::1]`).
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(self.registry())
    }

    pub(crate) fn as_oci(&self) -> &Reference {
        &self.inner
    }
}

/// Whether a `host[:port]` names the loopback interface.
#[must_use]
pub fn is_loopback_host(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(h, _)| h)
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_docker_hub_names() {
        let r = ImageReference::parse("nginx:1.27").unwrap();
        assert_eq!(r.name(), "docker.io/library/nginx");
        assert_eq!(r.tag(), Some("1.27"));
    }

    #[test]
    fn keeps_registry_port_and_digest() {
        let r = ImageReference::parse(&format!("127.0.0.1:5000/models/llm@{D}")).unwrap();
        assert_eq!(r.name(), "127.0.0.1:5000/models/llm");
        assert_eq!(r.digest(), Some(D));
        assert!(r.is_loopback());
    }

    #[test]
    fn refuses_a_tag_where_a_digest_is_required() {
        let e = ImageReference::parse_pinned("registry.example.com/llm:v1").unwrap_err();
        assert!(matches!(e, Error::DigestRequired { .. }));
        assert!(
            e.hint()
                .unwrap()
                .contains("registry.example.com/llm@sha256:")
        );
    }

    #[test]
    fn refuses_bad_digests_and_garbage() {
        assert!(ImageReference::parse("r.example/x@sha256:abc").is_err());
        assert!(ImageReference::parse("r.example/x@md5:0123").is_err());
        assert!(ImageReference::parse("").is_err());
        assert!(ImageReference::parse(" x").is_err());
        assert!(ImageReference::parse("UPPER/Case").is_err());
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost:5000",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "registry.example.com",
            "10.0.0.1:5000",
            "localhost.evil.com",
            "[::2]:1",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
