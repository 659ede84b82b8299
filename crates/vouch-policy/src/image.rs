//! Container image references as Kubernetes writes them, normalized the way the container
//! runtime resolves them (`nginx` is `docker.io/library/nginx`).

use std::fmt;

use vouch_model::{Digest, HashAlgorithm};

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host and repository path, normalized (`docker.io/library/nginx`).
    pub repository: String,
    /// The tag, when given.
    pub tag: Option<String>,
    /// The manifest digest, when given.
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parse `[REGISTRY/]PATH[:TAG][@sha256:HEX]`.
    pub fn parse(reference: &str) -> Result<Self, String> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err("the image reference is empty".into());
        }
        if let Some(start) = reference.find('<') {
            let rest = reference.get(start..).unwrap_or_default();
            let placeholder = rest.find('>').and_then(|e| rest.get(..=e)).unwrap_or(rest);
            return Err(format!(
                "`{reference}` still holds the placeholder `{placeholder}`; replace it with the real value (an image digest: `skopeo inspect --format '{{{{.Digest}}}}' docker://REPOSITORY:TAG` prints it)"
            ));
        }
        if reference
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "`{reference}` contains spaces or control characters"
            ));
        }
        let (name, digest) = match reference.split_once('@') {
            None => (reference, None),
            Some((name, digest)) => {
                let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
                    format!("`{digest}` is not a sha256 digest (`sha256:` + 64 hex digits)")
                })?;
                if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(format!(
                        "`{digest}` is not a sha256 digest (`sha256:` + 64 lower-case hex digits)"
                    ));
                }
                let d = Digest::from_hex(HashAlgorithm::Sha256, hex)
                    .ok_or_else(|| format!("`{digest}` is not a sha256 digest"))?;
                (name, Some(d))
            }
        };
        let (path, tag) = match name.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => (path, Some(tag.to_owned())),
            _ => (name, None),
        };
        if path.is_empty() || path.starts_with('/') || path.ends_with('/') || path.contains("//") {
            return Err(format!("`{reference}` is not an image reference"));
        }
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(format!("`{reference}` has an invalid tag"));
        }
        let mut parts = path.splitn(2, '/');
        let first = parts.next().unwrap_or_default();
        let rest = parts.next();
        let repository = match rest {
            Some(rest) if first.contains('.') || first.contains(':') || first == "localhost" => {
                format!("{first}/{rest}")
            }
            Some(_) => format!("docker.io/{path}"),
            None => format!("docker.io/library/{path}"),
        };
        let repository = match repository.strip_prefix("index.docker.io/") {
            Some(r) => format!("docker.io/{r}"),
            None => repository,
        };
        // The path below the registry host: `[a-z0-9._-]` components, as the distribution
        // grammar (and so the container runtime) allows; anything else (a `:` or `]` left
        // over from a malformed tag or port) would not print back to the same reference.
        let below_host = repository.split_once('/').map_or("", |(_, p)| p);
        if !below_host
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/'))
        {
            return Err(format!(
                "`{reference}` is not an image reference (repository `{repository}`)"
            ));
        }
        Ok(Self {
            repository,
            tag,
            digest,
        })
    }

    /// `REPOSITORY@sha256:HEX`, when pinned.
    pub fn pinned(&self) -> Option<String> {
        self.digest.map(|d| format!("{}@{d}", self.repository))
    }
}

/// A tag as the distribution grammar allows: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() <= 128
        && b.first()
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ImageRef;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_like_the_runtime() {
        assert_eq!(
            ImageRef::parse("nginx").unwrap().repository,
            "docker.io/library/nginx"
        );
        assert_eq!(
            ImageRef::parse("acme/app:1").unwrap().repository,
            "docker.io/acme/app"
        );
        let r = ImageRef::parse(&format!("localhost:5000/m/llm:v1@{D}")).unwrap();
        assert_eq!(r.repository, "localhost:5000/m/llm");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.digest.unwrap().to_string(), D);
        assert_eq!(r.pinned().unwrap(), format!("localhost:5000/m/llm@{D}"));
    }

    #[test]
    fn bad_digests_are_refused() {
        assert!(ImageRef::parse("a/b@sha256:00").is_err());
        assert!(ImageRef::parse("a/b@md5:00").is_err());
        assert!(ImageRef::parse(&format!("a/b@{}", D.to_uppercase())).is_err());
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("a b").is_err());
    }

    /// Found by the `image_reference` fuzz target: `a/b:]:5000@sha256:...` parsed with the
    /// repository `docker.io/a/b:]`, whose pinned form `docker.io/a/b:]@sha256:...` then
    /// parsed to another repository (`docker.io/a/b`, tag `]`).
    #[test]
    fn characters_the_runtime_refuses_are_refused() {
        assert!(ImageRef::parse(&format!("a/b:]:5000@{D}")).is_err());
        assert!(ImageRef::parse("a/b:]").is_err());
        assert!(ImageRef::parse("a/B").is_err());
        assert!(ImageRef::parse("a/b:-tag").is_err());
        assert!(ImageRef::parse("a/b:.tag").is_err());
        assert!(ImageRef::parse(&format!("a/b:{}", "t".repeat(129))).is_err());
        for ok in [
            "a/b:_t",
            "a/b:V1.2-rc_3",
            "[::1]:5000/m:x",
            "Registry.Example.com/m",
            "a_b/c-d.e",
        ] {
            let r = ImageRef::parse(ok).unwrap();
            let again = ImageRef::parse(&r.to_string()).unwrap();
            assert_eq!(again, r, "{ok}");
        }
    }
}
