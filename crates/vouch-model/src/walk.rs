//! Listing the files of a model without ever leaving it.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::{Error, Result};
use crate::path::ModelPath;

/// Paths left out of a model: a path is ignored when it equals an entry or lies below it.
/// The entries are kept sorted, so two sets with the same entries are equal whatever order
/// they were added in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreSet(Vec<ModelPath>);

/// The paths left out by default, matched at the top of the model only (`sub/.git` is a
/// model file): exactly the list of OMS v1.0 section 6.2 ("MUST be excluded by default"),
/// which is also model-signing's.
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

impl IgnoreSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a path (a file, or a directory and everything below it).
    pub fn insert(&mut self, path: ModelPath) {
        if let Err(at) = self.0.binary_search(&path) {
            self.0.insert(at, path);
        }
    }

    /// Add `.git`, `.gitattributes`, `.github` and `.gitignore`.
    pub fn insert_git_paths(&mut self) {
        for p in GIT_PATHS {
            if let Ok(p) = ModelPath::parse(p) {
                self.insert(p);
            }
        }
    }

    /// True when `path` is ignored.
    pub fn matches(&self, path: &ModelPath) -> bool {
        self.0.iter().any(|prefix| path.starts_with(prefix))
    }

    /// The entries, sorted.
    pub fn paths(&self) -> Vec<&ModelPath> {
        self.0.iter().collect()
    }

    /// True when nothing is ignored.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How to walk a model directory.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Paths to leave out.
    pub ignore: IgnoreSet,
    /// Refuse regular files that have more than one hard link.
    pub reject_hard_links: bool,
}

/// A regular file of the model, as found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Its path relative to the model root.
    pub path: ModelPath,
    /// Its size in bytes when it was listed.
    pub size: u64,
}

/// List every regular file below `root`, sorted by [`ModelPath`] order; none at all is an
/// error ([`Error::EmptyModel`]).
///
/// The root itself may be reached through a link (mount points often are); nothing
/// below it is: a symbolic link, FIFO, socket or device anywhere in the tree is an error,
/// as is a name that is not UTF-8. Ignored paths are skipped before they are looked at, so
/// an ignored `.git` directory may contain anything.
pub fn scan(root: &Path, options: &ScanOptions) -> Result<Vec<FileEntry>> {
    let meta = fs::metadata(root).map_err(|source| Error::Root {
        path: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(Error::RootNotDirectory {
            path: root.to_path_buf(),
        });
    }
    let mut files = Vec::new();
    let mut ignored = false;
    let mut pending: Vec<Option<ModelPath>> = vec![None];
    while let Some(dir) = pending.pop() {
        let fs_dir = match &dir {
            Some(d) => d.to_path(root),
            None => root.to_path_buf(),
        };
        let label =
            |d: &Option<ModelPath>| d.as_ref().map_or_else(|| ".".to_owned(), |d| d.to_string());
        let entries = fs::read_dir(&fs_dir).map_err(|source| Error::Io {
            path: label(&dir),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io {
                path: label(&dir),
                source,
            })?;
            let name = entry.file_name();
            let name_str = name.to_str().ok_or_else(|| Error::NonUtf8Name {
                parent: label(&dir),
                name: name.clone(),
            })?;
            let path = ModelPath::child(dir.as_ref(), name_str)?;
            if options.ignore.matches(&path) {
                ignored = true;
                continue;
            }
            // `DirEntry::metadata` does not follow links (lstat semantics).
            let meta = entry.metadata().map_err(|source| Error::Io {
                path: path.to_string(),
                source,
            })?;
            let kind = meta.file_type();
            if kind.is_symlink() {
                return Err(Error::Symlink {
                    path: path.to_string(),
                });
            } else if kind.is_dir() {
                pending.push(Some(path));
            } else if kind.is_file() {
                if options.reject_hard_links && meta.nlink() > 1 {
                    return Err(Error::HardLink {
                        path: path.to_string(),
                        links: meta.nlink(),
                    });
                }
                files.push(FileEntry {
                    path,
                    size: meta.len(),
                });
            } else {
                return Err(Error::SpecialFile {
                    path: path.to_string(),
                    kind: special_kind(&kind),
                });
            }
        }
    }
    if files.is_empty() {
        return Err(Error::EmptyModel {
            path: root.to_path_buf(),
            ignored,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// List a single-file model: the regular file `path` itself, named
/// [`ModelPath::single_file`] (`.`), as model-signing names it. Hash it with `path` as the
/// root.
///
/// `path` itself must not be a symbolic link (links to directories above it are fine, as
/// for [`scan`]'s root); a directory, FIFO, socket or device is an error.
pub fn scan_file(path: &Path) -> Result<Vec<FileEntry>> {
    let meta = fs::symlink_metadata(path).map_err(|source| Error::Root {
        path: path.to_path_buf(),
        source,
    })?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(Error::Symlink {
            path: path.display().to_string(),
        });
    }
    if kind.is_dir() {
        return Err(Error::RootNotFile {
            path: path.to_path_buf(),
        });
    }
    if !kind.is_file() {
        return Err(Error::SpecialFile {
            path: path.display().to_string(),
            kind: special_kind(&kind),
        });
    }
    Ok(vec![FileEntry {
        path: ModelPath::single_file(),
        size: meta.len(),
    }])
}

pub(crate) fn special_kind(kind: &fs::FileType) -> &'static str {
    if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(files: &[FileEntry]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn lists_files_in_component_order_and_skips_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("a/.git")).unwrap();
        fs::create_dir_all(r.join(".git/objects")).unwrap();
        fs::write(r.join("a/b"), "1").unwrap();
        fs::write(r.join("a b"), "22").unwrap();
        fs::write(r.join("a.b"), "").unwrap();
        fs::write(r.join(".git/objects/x"), "").unwrap();
        fs::write(r.join("a/.git/y"), "").unwrap();
        let mut options = ScanOptions::default();
        options.ignore.insert_git_paths();
        let files = scan(r, &options).unwrap();
        // Only the top-level `.git` is ignored, as in model-signing.
        assert_eq!(names(&files), ["a/.git/y", "a/b", "a b", "a.b"]);
        assert_eq!(files[2].size, 2);
    }

    /// Found by the `statement` fuzz target: an OMS statement whose `ignore_paths` were not
    /// sorted parsed to a set unequal to the same set written back by vouch.
    #[test]
    fn ignore_sets_with_the_same_paths_are_equal_whatever_the_order() {
        let p = |s: &str| ModelPath::parse(s).unwrap();
        let mut a = IgnoreSet::new();
        for s in [".gitignore", ".git", "b/c", ".gitattributes", ".git"] {
            a.insert(p(s));
        }
        let mut b = IgnoreSet::new();
        b.insert(p("b/c"));
        b.insert_git_paths();
        b.insert(p(".gitignore"));
        assert_eq!(a.paths().len(), 4, "`.git` is kept once");
        b.insert(p(".github"));
        a.insert(p(".github"));
        assert_eq!(a, b);
        assert_eq!(a.paths(), b.paths());
    }

    #[test]
    fn empty_model_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
        let err = scan(dir.path(), &ScanOptions::default()).unwrap_err();
        assert!(
            matches!(err, Error::EmptyModel { ignored: false, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("holds no file"), "{err}");
    }

    #[test]
    fn model_of_only_default_exclusions_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join(".git")).unwrap();
        fs::create_dir_all(r.join(".github/workflows")).unwrap();
        fs::write(r.join(".git/HEAD"), "x").unwrap();
        fs::write(r.join(".github/workflows/ci.yml"), "x").unwrap();
        fs::write(r.join(".gitignore"), "x").unwrap();
        fs::write(r.join(".gitattributes"), "x").unwrap();
        let mut options = ScanOptions::default();
        options.ignore.insert_git_paths();
        let err = scan(r, &options).unwrap_err();
        assert!(
            matches!(err, Error::EmptyModel { ignored: true, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("once ignored paths"), "{err}");
        // Without the default exclusions they are the model.
        let files = scan(r, &ScanOptions::default()).unwrap();
        assert_eq!(files.len(), 4);
    }

    #[test]
    fn default_exclusions_are_the_oms_v1_list() {
        // OMS v1.0 section 6.2; `.gitmodules` and the like are model files.
        assert_eq!(
            GIT_PATHS,
            [".git", ".gitattributes", ".github", ".gitignore"]
        );
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for name in [
            ".gitmodules",
            ".git-blame-ignore-revs",
            ".gitkeep",
            ".githubx",
        ] {
            fs::write(r.join(name), "x").unwrap();
        }
        fs::create_dir_all(r.join("sub/.github")).unwrap();
        fs::write(r.join("sub/.github/x"), "x").unwrap();
        fs::write(r.join("sub/.gitignore"), "x").unwrap();
        let mut options = ScanOptions::default();
        options.ignore.insert_git_paths();
        let files = scan(r, &options).unwrap();
        assert_eq!(
            names(&files),
            [
                ".git-blame-ignore-revs",
                ".githubx",
                ".gitkeep",
                ".gitmodules",
                "sub/.github/x",
                "sub/.gitignore"
            ]
        );
    }

    #[test]
    fn refuses_symlinks_even_to_inside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("w"), "x").unwrap();
        std::os::unix::fs::symlink("w", dir.path().join("link")).unwrap();
        let err = scan(dir.path(), &ScanOptions::default()).unwrap_err();
        assert!(
            matches!(err, Error::Symlink { ref path } if path == "link"),
            "{err}"
        );
    }

    #[test]
    fn refuses_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join("pipe"))
            .status()
            .unwrap();
        assert!(status.success());
        let err = scan(dir.path(), &ScanOptions::default()).unwrap_err();
        assert!(
            matches!(err, Error::SpecialFile { kind: "FIFO", .. }),
            "{err}"
        );
    }

    #[test]
    fn hard_links_refused_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "x").unwrap();
        fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        assert!(scan(dir.path(), &ScanOptions::default()).is_ok());
        let options = ScanOptions {
            reject_hard_links: true,
            ..Default::default()
        };
        assert!(matches!(
            scan(dir.path(), &options),
            Err(Error::HardLink { links: 2, .. })
        ));
    }

    #[test]
    fn single_file_is_listed_as_dot() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w.bin");
        fs::write(&f, "abc").unwrap();
        let files = scan_file(&f).unwrap();
        assert_eq!(names(&files), ["."]);
        assert_eq!(files[0].size, 3);
        assert!(files[0].path.is_single_file());
        assert!(matches!(
            scan_file(dir.path()),
            Err(Error::RootNotFile { .. })
        ));
        std::os::unix::fs::symlink("w.bin", dir.path().join("link")).unwrap();
        assert!(matches!(
            scan_file(&dir.path().join("link")),
            Err(Error::Symlink { .. })
        ));
        assert!(matches!(
            scan_file(&dir.path().join("nope")),
            Err(Error::Root { .. })
        ));
    }

    #[test]
    fn root_must_be_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "x").unwrap();
        assert!(matches!(
            scan(&dir.path().join("f"), &ScanOptions::default()),
            Err(Error::RootNotDirectory { .. })
        ));
        assert!(matches!(
            scan(&dir.path().join("nope"), &ScanOptions::default()),
            Err(Error::Root { .. })
        ));
    }
}
