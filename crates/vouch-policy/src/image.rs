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
            && (t.is_empty() || t.len() > 128)
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
}
