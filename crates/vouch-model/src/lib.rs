//! Model directories as data: which files a model has, and what their bytes hash to.
//!
//! Everything downstream (OMS signatures, the combined attestation, the init container)
//! stands on two promises this crate keeps:
//!
//! 1. **Only the model is read.** [`scan`] walks a directory without following symbolic
//!    links, refuses anything that is not a regular file or a directory, and names every
//!    file with a [`ModelPath`]: a relative, normalised path that cannot contain `..`, an
//!    absolute prefix or an empty component. Paths that come from untrusted metadata go
//!    through the same type before anything touches the disk.
//! 2. **Hashing runs at the speed of the machine.** [`hash_files`] splits the work into jobs
//!    (a whole file, or one shard of a file), hands them to one worker per core, largest
//!    first, and streams each through a small reused buffer: memory stays flat whatever the
//!    model size.
//!
//! The crate has no opinion on signatures or formats; it produces a [`Manifest`] and compares
//! two of them ([`diff`]).

#![forbid(unsafe_code)]

mod error;
mod hash;
mod manifest;
mod path;
mod walk;

pub use error::{Error, Result};
pub use hash::{Digest, HashAlgorithm, HashOptions, Method, Progress, hash_files, open_file};
pub use manifest::{Difference, Manifest, Resource, diff};
pub use path::{InvalidPath, ModelPath};
pub use walk::{FileEntry, IgnoreSet, ScanOptions, scan, scan_file};

/// Hash a single-file model: [`scan_file`] then [`hash_files`] with the file as the root.
/// The one resource is named `.` ([`ModelPath::single_file`]), as model-signing names it.
pub fn hash_file(
    path: &std::path::Path,
    hash_options: &HashOptions,
    progress: Option<&Progress>,
) -> Result<Manifest> {
    let files = scan_file(path)?;
    let resources = hash_files(path, &files, hash_options, progress)?;
    Ok(Manifest::new(
        hash_options.algorithm,
        hash_options.method,
        resources,
    ))
}

/// Hash a model directory: [`scan`] then [`hash_files`].
pub fn hash_dir(
    root: &std::path::Path,
    scan_options: &ScanOptions,
    hash_options: &HashOptions,
    progress: Option<&Progress>,
) -> Result<Manifest> {
    let files = scan(root, scan_options)?;
    let resources = hash_files(root, &files, hash_options, progress)?;
    Ok(Manifest::new(
        hash_options.algorithm,
        hash_options.method,
        resources,
    ))
}
