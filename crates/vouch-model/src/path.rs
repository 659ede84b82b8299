//! [`ModelPath`]: the only way a path inside a model is named.

use std::cmp::Ordering;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// A path relative to a model root, checked before it is used.
///
/// Invariants: not empty; `/`-separated; no empty, `.` or `..` component; not absolute;
/// no NUL byte. Joining it to a root can therefore never leave that root lexically
/// (links are handled by the walker, which never follows them).
///
/// One exception, which [`ModelPath::parse`] never produces: [`ModelPath::single_file`],
/// the name `.` that model-signing gives the one file of a single-file model (the model
/// path itself). It names the root, and only ever appears alone in a manifest.
///
/// Ordering is by path *components*, as Python's `PurePosixPath` orders them, which is the
/// order OMS signatures list their resources in: `a/b` sorts before `a b`, `a-b` and `a.b`
/// because the component `a` is a prefix of the others.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ModelPath(String);

/// Why a string is not a valid [`ModelPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path `{path}` in model: {reason}")]
pub struct InvalidPath {
    /// The offending path, as given.
    pub path: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ModelPath {
    /// Check an untrusted string (for example, a name read from a signature).
    pub fn parse(s: &str) -> Result<Self, InvalidPath> {
        let bad = |reason| InvalidPath {
            path: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("the path is empty"));
        }
        if s.starts_with('/') {
            return Err(bad("absolute paths are not allowed"));
        }
        if s.contains('\0') {
            return Err(bad("the path contains a NUL byte"));
        }
        for component in s.split('/') {
            match component {
                "" => {
                    return Err(bad(
                        "the path has an empty component (`//` or a trailing `/`)",
                    ));
                }
                "." => return Err(bad("the path has a `.` component")),
                ".." => {
                    return Err(bad(
                        "the path has a `..` component, which could leave the model",
                    ));
                }
                _ => {}
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// The name of the one file of a single-file model: `.`, the model path itself, as
    /// model-signing records it (`path.relative_to(model_path)`). [`ModelPath::parse`]
    /// refuses `.`; callers that accept it from untrusted input must check that it is the
    /// only name in the manifest and that the model is a single file.
    pub fn single_file() -> Self {
        Self(".".to_owned())
    }

    /// True for [`ModelPath::single_file`].
    pub fn is_single_file(&self) -> bool {
        self.0 == "."
    }

    /// Build from a relative filesystem path made of normal components only.
    pub fn from_relative(path: &Path) -> Result<Self, InvalidPath> {
        let mut out = String::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => {
                    let part = part.to_str().ok_or_else(|| InvalidPath {
                        path: path.to_string_lossy().into_owned(),
                        reason: "the path is not valid UTF-8",
                    })?;
                    if !out.is_empty() {
                        out.push('/');
                    }
                    out.push_str(part);
                }
                Component::CurDir => {}
                _ => {
                    return Err(InvalidPath {
                        path: path.to_string_lossy().into_owned(),
                        reason: "only plain relative paths inside the model are allowed",
                    });
                }
            }
        }
        Self::parse(&out)
    }

    /// Extend with one more component (a name read from a directory).
    pub(crate) fn child(parent: Option<&ModelPath>, name: &str) -> Result<Self, InvalidPath> {
        match parent {
            Some(p) => Self::parse(&format!("{}/{name}", p.0)),
            None => Self::parse(name),
        }
    }

    /// The path as a `/`-separated string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components of the path.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// True when `self` equals `prefix` or lies below it (component-wise).
    pub fn starts_with(&self, prefix: &ModelPath) -> bool {
        let mut mine = self.components();
        prefix.components().all(|p| mine.next() == Some(p))
    }

    /// The path below `root` on the local filesystem; `root` itself for
    /// [`ModelPath::single_file`] (then `root` is the model file).
    pub fn to_path(&self, root: &Path) -> PathBuf {
        let mut out = root.to_path_buf();
        if self.is_single_file() {
            return out;
        }
        out.extend(self.components());
        out
    }
}

impl Ord for ModelPath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.components().cmp(other.components())
    }
}

impl PartialOrd for ModelPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ModelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ModelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_components_like_oms() {
        let mut paths: Vec<_> = ["a.b", "a b", "a-b", "a/b", "config.json", "a/a/z", "B"]
            .iter()
            .map(|s| ModelPath::parse(s).unwrap())
            .collect();
        paths.sort();
        let got: Vec<_> = paths.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            got,
            ["B", "a/a/z", "a/b", "a b", "a-b", "a.b", "config.json"]
        );
    }

    #[test]
    fn rejects_hostile_paths() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\0b",
            ".",
            "..",
        ] {
            assert!(ModelPath::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(ModelPath::from_relative(Path::new("/abs")).is_err());
        assert!(ModelPath::from_relative(Path::new("a/../b")).is_err());
        assert_eq!(
            ModelPath::from_relative(Path::new("./a/b"))
                .unwrap()
                .as_str(),
            "a/b"
        );
    }

    #[test]
    fn single_file_name_is_the_root_and_never_parsed() {
        let p = ModelPath::single_file();
        assert!(p.is_single_file());
        assert_eq!(p.as_str(), ".");
        assert_eq!(p.to_path(Path::new("/m/w.bin")), Path::new("/m/w.bin"));
        assert!(ModelPath::parse(".").is_err());
        assert!(!ModelPath::parse("a").unwrap().is_single_file());
        assert!(!p.starts_with(&ModelPath::parse(".git").unwrap()));
    }

    #[test]
    fn prefix_is_component_wise() {
        let p = ModelPath::parse(".git/HEAD").unwrap();
        assert!(p.starts_with(&ModelPath::parse(".git").unwrap()));
        assert!(
            !ModelPath::parse(".gitignore")
                .unwrap()
                .starts_with(&ModelPath::parse(".git").unwrap())
        );
    }
}
