use std::path::PathBuf;

use crate::path::InvalidPath;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while reading or hashing a model directory.
///
/// Every variant names the path it is about, relative to the model root where one exists.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model root could not be opened or is not a directory.
    #[error("cannot read model directory `{path}`: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The model root is not a directory.
    #[error("`{path}` is not a directory")]
    RootNotDirectory { path: PathBuf },
    /// A single-file model path that is a directory.
    #[error("`{path}` is a directory, not a single-file model")]
    RootNotFile { path: PathBuf },
    /// A file or directory inside the model could not be read.
    #[error("cannot read `{path}` in the model: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A symbolic link inside the model. Links are never followed.
    #[error("`{path}` is a symbolic link; vouch never follows links inside a model")]
    Symlink { path: String },
    /// A FIFO, socket or device inside the model.
    #[error("`{path}` is a {kind}, not a regular file")]
    SpecialFile { path: String, kind: &'static str },
    /// A regular file with more than one hard link.
    #[error("`{path}` has {links} hard links; a linked file can be changed through another name")]
    HardLink { path: String, links: u64 },
    /// A file name that is not valid UTF-8 (it cannot be recorded faithfully).
    #[error("a file name under `{parent}` is not valid UTF-8: {name:?}")]
    NonUtf8Name {
        parent: String,
        name: std::ffi::OsString,
    },
    /// A path that cannot be a model path.
    #[error(transparent)]
    InvalidPath(#[from] InvalidPath),
    /// A file changed size or type between the directory scan and hashing.
    #[error(
        "`{path}` changed while it was being hashed (expected {expected} bytes, found {actual})"
    )]
    Changed {
        path: String,
        expected: u64,
        actual: u64,
    },
    /// No regular file left in the model once ignored paths are left out (OMS v1.0 section
    /// 6.1: "an empty model MUST be rejected", when signing and when verifying).
    #[error("`{}` holds no file to sign or verify{}", .path.display(), if *.ignored { " once ignored paths are left out" } else { "" })]
    EmptyModel {
        /// The model directory.
        path: PathBuf,
        /// True when it has files, all of them ignored.
        ignored: bool,
    },
    /// A shard size of zero.
    #[error("shard size must be at least 1 byte")]
    ZeroShardSize,
}
