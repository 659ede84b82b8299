//! Manifests (what was hashed) and the difference between two of them.

use std::collections::BTreeMap;
use std::fmt;

use sha2::Digest as _;

use crate::hash::{Digest, HashAlgorithm, Method};
use crate::path::ModelPath;

/// One hashed object: a whole file, or one shard of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The file.
    pub path: ModelPath,
    /// `Some((start, end))` for a shard: the byte range `start..end`.
    pub shard: Option<(u64, u64)>,
    /// Bytes covered, when known (OMS file resources carry no size).
    pub size: Option<u64>,
    /// Digest of those bytes.
    pub digest: Digest,
}

impl Resource {
    /// The OMS resource name: `path`, or `path:start:end` for a shard.
    pub fn name(&self) -> String {
        match self.shard {
            None => self.path.to_string(),
            Some((start, end)) => format!("{}:{start}:{end}", self.path),
        }
    }

    fn sort_key(&self) -> (&ModelPath, u64) {
        (&self.path, self.shard.map_or(0, |(s, _)| s))
    }
}

/// The hashed contents of a model: resources in canonical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The hash function used for every resource.
    pub algorithm: HashAlgorithm,
    /// Files or shards.
    pub method: Method,
    resources: Vec<Resource>,
}

impl Manifest {
    /// Build a manifest; resources are put in canonical order (path components, then offset).
    pub fn new(algorithm: HashAlgorithm, method: Method, mut resources: Vec<Resource>) -> Self {
        resources.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        Self {
            algorithm,
            method,
            resources,
        }
    }

    /// The resources, in canonical order.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// Total bytes covered by the resources whose size is known.
    pub fn total_bytes(&self) -> u64 {
        self.resources.iter().filter_map(|r| r.size).sum()
    }

    /// Number of distinct files.
    pub fn file_count(&self) -> usize {
        let mut n = 0;
        let mut last: Option<&ModelPath> = None;
        for r in &self.resources {
            if last != Some(&r.path) {
                n += 1;
                last = Some(&r.path);
            }
        }
        n
    }

    /// The vouch model digest (v1): binds every resource's name, byte range, size and digest,
    /// the hash function and the method. `None` when a resource's size is unknown (OMS file
    /// manifests do not record sizes).
    ///
    /// ```text
    /// SHA-256( "vouch.dev/model-digest/v1" 0x00
    ///          algorithm 0x00                      e.g. "sha256"
    ///          method 0x00                         "files" or "shards:<size>"
    ///          for each resource, in canonical order:
    ///            u64be(len(path)) path u64be(start) u64be(size) digest[32] )
    /// ```
    /// Canonical order: by path components, then by shard start. `start` is 0 for whole
    /// files. See `docs/model-digest.md` for the golden vector.
    pub fn model_digest(&self) -> Option<Digest> {
        let mut h = sha2::Sha256::new();
        h.update(b"vouch.dev/model-digest/v1\0");
        h.update(self.algorithm.name().as_bytes());
        h.update(b"\0");
        match self.method {
            Method::Files => h.update(b"files"),
            Method::Shards { size } => h.update(format!("shards:{size}").as_bytes()),
        }
        h.update(b"\0");
        for r in &self.resources {
            let path = r.path.as_str().as_bytes();
            h.update((path.len() as u64).to_be_bytes());
            h.update(path);
            h.update(r.shard.map_or(0, |(s, _)| s).to_be_bytes());
            h.update(r.size?.to_be_bytes());
            h.update(r.digest.bytes);
        }
        Some(Digest {
            algorithm: HashAlgorithm::Sha256,
            bytes: h.finalize().into(),
        })
    }

    /// The OMS subject digest: SHA-256 over the raw resource digests, concatenated in order.
    ///
    /// This is model-signing's definition; it binds contents and order but not names.
    pub fn oms_digest(&self) -> Digest {
        let mut all = Vec::with_capacity(self.resources.len() * 32);
        for r in &self.resources {
            all.extend_from_slice(&r.digest.bytes);
        }
        Digest::sha256(&all)
    }
}

/// One way in which a model on disk differs from what was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Difference {
    /// A signed file is not on disk.
    Missing {
        /// The file.
        path: ModelPath,
    },
    /// A file on disk was not signed.
    Extra {
        /// The file.
        path: ModelPath,
    },
    /// A signed file is on disk under another name.
    Renamed {
        /// The signed name.
        from: ModelPath,
        /// The name on disk.
        to: ModelPath,
    },
    /// A file's size differs.
    Size {
        /// The file.
        path: ModelPath,
        /// Signed size.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// A file's (or shard's) content differs.
    Content {
        /// The file.
        path: ModelPath,
        /// The shard, for sharded manifests.
        shard: Option<(u64, u64)>,
        /// Signed digest.
        expected: Digest,
        /// Digest of the bytes on disk.
        actual: Digest,
    },
}

impl Difference {
    /// A name for the kind of difference, for machine output (`vouch --json`, `vouch-init`):
    /// `missing-file`, `extra-file`, `renamed-file`, `size-differs` or `content-differs`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Missing { .. } => "missing-file",
            Self::Extra { .. } => "extra-file",
            Self::Renamed { .. } => "renamed-file",
            Self::Size { .. } => "size-differs",
            Self::Content { .. } => "content-differs",
        }
    }

    /// The file this difference is about (the signed name for a rename).
    pub fn path(&self) -> &ModelPath {
        match self {
            Self::Missing { path }
            | Self::Extra { path }
            | Self::Size { path, .. }
            | Self::Content { path, .. } => path,
            Self::Renamed { from, .. } => from,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { path } => write!(f, "`{path}`: signed, but missing on disk"),
            Self::Extra { path } => write!(f, "`{path}`: on disk, but not signed (extra file)"),
            Self::Renamed { from, to } => write!(
                f,
                "`{from}`: signed under this name, found as `{to}` (renamed)"
            ),
            Self::Size {
                path,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "`{path}`: size differs (signed {expected} bytes, found {actual} bytes)"
                )
            }
            Self::Content {
                path,
                shard,
                expected,
                actual,
            } => {
                write!(f, "`{path}`")?;
                if let Some((s, e)) = shard {
                    write!(f, " bytes {s}..{e}")?;
                }
                write!(f, ": content differs (signed {expected}, found {actual})")
            }
        }
    }
}

/// Compare what was signed (`expected`) with what is on disk (`actual`), file by file.
///
/// Returns the differences in path order; empty means the two match exactly (same files,
/// same shards, same digests).
pub fn diff(expected: &[Resource], actual: &[Resource]) -> Vec<Difference> {
    fn by_path(rs: &[Resource]) -> BTreeMap<&ModelPath, Vec<&Resource>> {
        let mut m: BTreeMap<&ModelPath, Vec<&Resource>> = BTreeMap::new();
        for r in rs {
            m.entry(&r.path).or_default().push(r);
        }
        m
    }
    let want = by_path(expected);
    let have = by_path(actual);
    let mut out = Vec::new();
    let mut missing = Vec::new();
    let mut extra = Vec::new();

    for (path, w) in &want {
        let Some(h) = have.get(path) else {
            missing.push((*path, w));
            continue;
        };
        let w_size: Option<u64> = w.iter().map(|r| r.size).sum();
        let h_size: Option<u64> = h.iter().map(|r| r.size).sum();
        if let (Some(e), Some(a)) = (w_size, h_size)
            && e != a
        {
            out.push(Difference::Size {
                path: (*path).clone(),
                expected: e,
                actual: a,
            });
            continue;
        }
        if w.len() != h.len() {
            // Same size, different sharding: only possible with inconsistent manifests.
            out.push(Difference::Size {
                path: (*path).clone(),
                expected: w.last().and_then(|r| r.shard).map_or(0, |s| s.1),
                actual: h.last().and_then(|r| r.shard).map_or(0, |s| s.1),
            });
            continue;
        }
        for (we, he) in w.iter().zip(h.iter()) {
            if we.digest != he.digest || we.shard != he.shard {
                out.push(Difference::Content {
                    path: (*path).clone(),
                    shard: we.shard,
                    expected: we.digest,
                    actual: he.digest,
                });
                break;
            }
        }
    }
    for (path, h) in &have {
        if !want.contains_key(path) {
            extra.push((*path, h));
        }
    }
    // A missing file whose exact content turns up as an extra file was renamed.
    let digests = |rs: &Vec<&Resource>| rs.iter().map(|r| (r.digest, r.shard)).collect::<Vec<_>>();
    let mut renamed_to = Vec::new();
    for (from, w) in missing {
        let target = extra
            .iter()
            .find(|(to, h)| !renamed_to.contains(to) && digests(h) == digests(w))
            .map(|(to, _)| *to);
        match target {
            Some(to) => {
                renamed_to.push(to);
                out.push(Difference::Renamed {
                    from: from.clone(),
                    to: to.clone(),
                });
            }
            None => out.push(Difference::Missing { path: from.clone() }),
        }
    }
    for (path, _) in extra {
        if !renamed_to.contains(&path) {
            out.push(Difference::Extra { path: path.clone() });
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(path: &str, content: &[u8]) -> Resource {
        Resource {
            path: ModelPath::parse(path).unwrap(),
            shard: None,
            size: Some(content.len() as u64),
            digest: Digest::sha256(content),
        }
    }

    #[test]
    fn identical_manifests_have_no_difference() {
        let a = [r("a", b"1"), r("b/c", b"2")];
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn names_every_kind_of_difference() {
        let signed = [
            r("config.json", b"{}"),
            r("gone", b"g"),
            r("old", b"o"),
            r("w.bin", b"1234"),
            r("tok", b"ab"),
        ];
        let disk = [
            r("config.json", b"{}"),
            r("new", b"o"),
            r("w.bin", b"12345"),
            r("tok", b"ac"),
            r("zz", b"z"),
        ];
        let got: Vec<String> = diff(&signed, &disk).iter().map(|d| d.to_string()).collect();
        assert_eq!(got.len(), 5, "{got:#?}");
        assert!(got[0].starts_with("`gone`: signed, but missing"));
        assert!(got[1].starts_with("`old`: signed under this name, found as `new`"));
        assert!(got[2].starts_with("`tok`: content differs (signed sha256:"));
        assert_eq!(
            got[3],
            "`w.bin`: size differs (signed 4 bytes, found 5 bytes)"
        );
        assert!(got[4].starts_with("`zz`: on disk, but not signed"));
    }

    #[test]
    fn unknown_sizes_compare_by_digest() {
        let mut signed = r("a", b"x");
        signed.size = None;
        let d = diff(&[signed], &[r("a", b"y")]);
        assert!(matches!(d.as_slice(), [Difference::Content { .. }]));
    }

    #[test]
    fn oms_digest_is_sha256_of_concatenated_digests() {
        let m = Manifest::new(
            HashAlgorithm::Sha256,
            Method::Files,
            vec![r("b", b"2"), r("a", b"1")],
        );
        let mut cat = Digest::sha256(b"1").bytes.to_vec();
        cat.extend_from_slice(&Digest::sha256(b"2").bytes);
        assert_eq!(m.oms_digest(), Digest::sha256(&cat));
        assert_eq!(m.file_count(), 2);
    }

    #[test]
    fn model_digest_golden_vector() {
        // The vector documented in docs/model-digest.md.
        let m = Manifest::new(
            HashAlgorithm::Sha256,
            Method::Files,
            vec![
                r("config.json", b"{}\n"),
                r("model.safetensors", b"weights"),
                r("tokenizer.json", b"{\"v\":1}\n"),
            ],
        );
        assert_eq!(
            m.model_digest().unwrap().hex(),
            "a6d210feacf1aff1214e237d2eca6d9e31ff1a0d3de6fff0cb49c81bffad5434"
        );
        // Renaming a file changes it (the OMS digest does not).
        let renamed = Manifest::new(
            HashAlgorithm::Sha256,
            Method::Files,
            vec![
                r("config.json", b"{}\n"),
                r("model2.safetensors", b"weights"),
                r("tokenizer.json", b"{\"v\":1}\n"),
            ],
        );
        assert_ne!(renamed.model_digest(), m.model_digest());
        assert_eq!(renamed.oms_digest(), m.oms_digest());
        let mut unknown = m.resources().to_vec();
        unknown[0].size = None;
        assert_eq!(
            Manifest::new(HashAlgorithm::Sha256, Method::Files, unknown).model_digest(),
            None
        );
    }
}
