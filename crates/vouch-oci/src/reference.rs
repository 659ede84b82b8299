//! Image references: `registry/repository[:tag][@sha256:hex]`, normalised the docker way
//! (`nginx` is `docker.io/library/nginx`).

use std::fmt;

use oci_client::Reference;

use crate::error::{Error, Result};

/// A parsed image reference.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageReference {
    inner: Reference,
    /// Whether the caller wrote a tag (`nginx` alone means `:latest`, but was not pinned).
    explicit_tag: bool,
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

/// The first `<...>` placeholder in `text` (as documentation templates write them), if any.
fn placeholder(text: &str) -> Option<&str> {
    let start = text.find('<')?;
    let rest = text.get(start..)?;
    Some(
        rest.find('>')
            .and_then(|end| rest.get(..=end))
            .unwrap_or(rest),
    )
}

impl ImageReference {
    /// Parse a reference. A digest, when present, must be `sha256:` + 64 hex digits.
    ///
    /// Parsed here rather than with `oci_spec`'s `Reference::from_str`: that one compiles a
    /// Unicode regex on first use, ~60 ms of CPU in every process that touches a registry.
    pub fn parse(reference: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidReference {
            reference: reference.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(placeholder) = placeholder(reference) {
            return Err(invalid(&format!(
                "it still holds the placeholder `{placeholder}`"
            )));
        }
        let parts = split(reference).map_err(invalid)?;
        if let Some(d) = parts.digest
            && !crate::is_sha256_digest(d)
        {
            return Err(invalid(&format!(
                "`{d}` is not a sha256 digest (`sha256:` + 64 lower-case hex digits)"
            )));
        }
        let inner = match (parts.tag, parts.digest) {
            (Some(t), Some(d)) => Reference::with_tag_and_digest(
                parts.registry.to_owned(),
                parts.repository,
                t.to_owned(),
                d.to_owned(),
            ),
            (None, Some(d)) => {
                Reference::with_digest(parts.registry.to_owned(), parts.repository, d.to_owned())
            }
            (Some(t), None) => {
                Reference::with_tag(parts.registry.to_owned(), parts.repository, t.to_owned())
            }
            (None, None) => Reference::with_tag(
                parts.registry.to_owned(),
                parts.repository,
                "latest".to_owned(),
            ),
        };
        Ok(Self {
            inner,
            explicit_tag: parts.tag.is_some(),
        })
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

    /// The tag, if any (`latest` when neither a tag nor a digest was written).
    #[must_use]
    pub fn tag(&self) -> Option<&str> {
        if self.explicit_tag || self.inner.digest().is_none() {
            self.inner.tag()
        } else {
            None
        }
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
            explicit_tag: false,
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
            explicit_tag: true,
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

struct Parts<'a> {
    registry: &'a str,
    repository: String,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// `[REGISTRY/]PATH[:TAG][@DIGEST]`, with the distribution grammar's rules, normalised the
/// docker way (no registry: `docker.io`; a one-component path there: `library/NAME`).
fn split(reference: &str) -> Result<Parts<'_>, &'static str> {
    if reference.is_empty() || reference.len() > 512 {
        return Err("empty or too long");
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(c) if last_slash.is_none_or(|s| c > s) => (
            rest.get(..c).unwrap_or_default(),
            Some(rest.get(c + 1..).unwrap_or_default()),
        ),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        let mut chars = t.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !first_ok
            || t.len() > 128
            || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err("the tag may only use letters, digits, `_`, `.`, `-` (at most 128)");
        }
    }
    let (registry, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            if !valid_host(first) {
                return Err("the registry is not a valid host[:port]");
            }
            (first, path)
        }
        _ => ("docker.io", name),
    };
    let registry = if registry == "index.docker.io" {
        "docker.io"
    } else {
        registry
    };
    if path.is_empty() || !path.split('/').all(valid_component) {
        return Err(
            "the repository path must be lower-case letters and digits separated by `/`, `.`, `_`, `__` or `-`",
        );
    }
    let repository = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    // On the normalised path, so that a reference that parses prints as one that parses.
    if repository.len() > 255 {
        return Err("the repository path is longer than 255 characters");
    }
    Ok(Parts {
        registry,
        repository,
        tag,
        digest,
    })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !b.first().is_some_and(alnum) || !b.last().is_some_and(alnum) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        match b.get(i) {
            Some(x) if alnum(x) => i += 1,
            Some(b'.') => {
                i += 1;
                if !b.get(i).is_some_and(alnum) {
                    return false;
                }
            }
            Some(b'_') => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
                if !b.get(i).is_some_and(alnum) {
                    return false;
                }
            }
            Some(b'-') => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
                if !b.get(i).is_some_and(alnum) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// A DNS name or IPv4 address with an optional port, or `[IPv6]` with an optional port.
fn valid_host(h: &str) -> bool {
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after.strip_prefix(':') {
            Some(p) => ("v6", Some(p)),
            None if after.is_empty() => ("v6", None),
            None => return false,
        }
    } else {
        match h.rsplit_once(':') {
            Some((host, p)) => (host, Some(p)),
            None => (h, None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = host == "v6"
        || (!host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    port_ok && host_ok
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
    fn grammar() {
        let ok = [
            ("nginx", "docker.io/library/nginx", Some("latest")),
            (
                "index.docker.io/acme/app:1",
                "docker.io/acme/app",
                Some("1"),
            ),
            ("localhost/a/b", "localhost/a/b", Some("latest")),
            (
                "localhost:5000/a__b/c-d.e",
                "localhost:5000/a__b/c-d.e",
                Some("latest"),
            ),
            ("[::1]:5000/m", "[::1]:5000/m", Some("latest")),
            ("ghcr.io/a/b:v1.2_x-3", "ghcr.io/a/b", Some("v1.2_x-3")),
        ];
        for (input, name, tag) in ok {
            let r = ImageReference::parse(input).unwrap();
            assert_eq!((r.name().as_str(), r.tag()), (name, tag), "{input}");
        }
        let r = ImageReference::parse(&format!("r.example/x:v1@{D}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (Some("v1"), Some(D)));
        let r = ImageReference::parse(&format!("r.example/x@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        for bad in [
            "a//b",
            "a/b/",
            "/a",
            "a:",
            "a:-x",
            "a_/b",
            "a..b",
            "-a",
            "r.example:port/x",
            "r.example/x:t@",
            "[::1/x",
            "a b",
            "r.example/X",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
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

    /// Found by the `image_reference` fuzz target: a one-component docker.io path of 255
    /// characters parsed, but its printed form (`docker.io/library/...`, 263 characters of
    /// path) did not.
    #[test]
    fn path_length_is_checked_after_normalisation() {
        let long = "n".repeat(250);
        assert!(ImageReference::parse(&long).is_err());
        let fits = "n".repeat(247);
        let r = ImageReference::parse(&fits).unwrap();
        let again = ImageReference::parse(&r.to_string()).unwrap();
        assert_eq!(again.to_string(), r.to_string());
        assert!(
            ImageReference::parse(&format!("registry.example.com/{}", "m".repeat(256))).is_err()
        );
    }
}
