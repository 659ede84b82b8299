//! The hashing engine: jobs (whole files or shards) spread over one worker per core.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use sha2::Digest as _;
use vouch_mmap::Outcome;

use crate::error::{Error, Result};
use crate::manifest::Resource;
use crate::walk::FileEntry;

/// A hash function vouch can record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256 (FIPS 180-4). The default, and what model-signing uses.
    Sha256,
    /// BLAKE3, 256-bit output.
    Blake3,
}

impl HashAlgorithm {
    /// The name recorded in signatures (`sha256`, `blake3`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Blake3 => "blake3",
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sha256" => Ok(Self::Sha256),
            "blake3" => Ok(Self::Blake3),
            other => Err(format!(
                "unsupported hash algorithm `{other}` (supported: sha256, blake3)"
            )),
        }
    }
}

/// A 256-bit digest together with the function that made it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    /// The hash function.
    pub algorithm: HashAlgorithm,
    /// The raw digest.
    pub bytes: [u8; 32],
}

impl Digest {
    /// Lower-case hex of the raw digest.
    pub fn hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(algorithm: HashAlgorithm, s: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).ok()?;
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        Some(Self { algorithm, bytes })
    }

    /// SHA-256 of a byte string.
    pub fn sha256(data: &[u8]) -> Self {
        Self {
            algorithm: HashAlgorithm::Sha256,
            bytes: sha2::Sha256::digest(data).into(),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How files are cut into hashed resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One resource per file.
    Files,
    /// Files cut into shards of `size` bytes (the last one shorter); one resource per shard.
    Shards {
        /// Shard size in bytes.
        size: u64,
    },
}

/// Options for [`hash_files`].
#[derive(Debug, Clone)]
pub struct HashOptions {
    /// The hash function.
    pub algorithm: HashAlgorithm,
    /// Files or shards.
    pub method: Method,
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
    /// Read buffer per worker, in bytes (for files read with `read(2)`).
    pub buffer_size: usize,
    /// Hash jobs of at least [`MAP_MIN`] bytes straight from the page cache, through
    /// read-only mappings of at most [`MAP_WINDOW`] bytes (`vouch-mmap`), instead of copying
    /// them into the buffer. A file the kernel cannot map is read as before.
    pub map_files: bool,
}

/// The smallest job [`HashOptions::map_files`] maps: below it, a mapping costs more than the
/// copy it saves.
pub const MAP_MIN: u64 = 1 << 20;
/// The largest window mapped at a time, per worker: what bounds the resident file pages
/// hashing adds (8 MiB x workers).
pub const MAP_WINDOW: usize = 8 << 20;

impl Default for HashOptions {
    fn default() -> Self {
        Self {
            algorithm: HashAlgorithm::Sha256,
            method: Method::Files,
            threads: 0,
            buffer_size: 1 << 20,
            map_files: true,
        }
    }
}

/// A byte counter that hashing advances, for progress bars.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes hashed so far.
    pub bytes: AtomicU64,
}

#[derive(Debug)]
struct Job<'a> {
    file: &'a FileEntry,
    start: u64,
    end: u64,
    sharded: bool,
}

/// Hash `files` (found below `root` by [`crate::scan`]) and return one resource per file or
/// shard, in manifest order.
///
/// Every file is opened without following links and must still be the regular file of the
/// size [`crate::scan`] saw; otherwise [`Error::Changed`] or [`Error::Symlink`].
pub fn hash_files(
    root: &Path,
    files: &[FileEntry],
    options: &HashOptions,
    progress: Option<&Progress>,
) -> Result<Vec<Resource>> {
    let mut jobs = Vec::new();
    for file in files {
        match options.method {
            Method::Files => jobs.push(Job {
                file,
                start: 0,
                end: file.size,
                sharded: false,
            }),
            Method::Shards { size: 0 } => return Err(Error::ZeroShardSize),
            Method::Shards { size } => {
                let mut start: u64 = 0;
                loop {
                    let end = file.size.min(start.saturating_add(size));
                    jobs.push(Job {
                        file,
                        start,
                        end,
                        sharded: true,
                    });
                    if end >= file.size {
                        break;
                    }
                    start = end;
                }
            }
        }
    }
    // Largest first, so the last job to finish is a small one.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs.get(i).map_or(0, |j| j.end - j.start)));

    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Resource>>> = Mutex::new(vec![None; jobs.len()]);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);

    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut buffer = vec![0u8; options.buffer_size.max(4096)];
                while !failed.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some((&index, job)) = order
                        .get(n)
                        .and_then(|&i| Some((order.get(n)?, jobs.get(i)?)))
                    else {
                        break;
                    };
                    match hash_job(root, job, options, &mut buffer, progress) {
                        Ok(resource) => {
                            if let Ok(mut r) = results.lock()
                                && let Some(slot) = r.get_mut(index)
                            {
                                *slot = Some(resource);
                            }
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            if let Ok(mut slot) = first_error.lock()
                                && slot.is_none()
                            {
                                *slot = Some(e);
                            }
                        }
                    }
                }
            });
        }
    });

    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    // Every slot is filled when no worker failed; a hole would be a bug, reported as I/O.
    results
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::Io {
            path: ".".into(),
            source: std::io::Error::other("a hashing worker stopped early"),
        })
}

enum Hasher {
    Sha256(sha2::Sha256),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    fn new(algorithm: HashAlgorithm) -> Self {
        match algorithm {
            HashAlgorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Blake3 => Self::Blake3(Box::new(blake3::Hasher::new())),
        }
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Blake3(h) => {
                h.update(data);
            }
        }
    }
    fn finish(self) -> [u8; 32] {
        match self {
            Self::Sha256(h) => h.finalize().into(),
            Self::Blake3(h) => *h.finalize().as_bytes(),
        }
    }
}

fn open_no_follow(root: &Path, entry: &FileEntry) -> Result<File> {
    let path = entry.path.to_path(root);
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                Error::Symlink {
                    path: entry.path.to_string(),
                }
            } else {
                Error::Io {
                    path: entry.path.to_string(),
                    source,
                }
            }
        })
}

/// Open a file [`scan`](crate::scan) listed, as hashing does: never through a link
/// (`O_NOFOLLOW`), and only if it is still a regular file of the size that was listed.
/// Whoever reads it should check the size again at the end ([`Error::Changed`]).
pub fn open_file(root: &Path, entry: &FileEntry) -> Result<File> {
    let file = open_no_follow(root, entry)?;
    let meta = file.metadata().map_err(|source| Error::Io {
        path: entry.path.to_string(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(Error::SpecialFile {
            path: entry.path.to_string(),
            kind: crate::walk::special_kind(&meta.file_type()),
        });
    }
    if meta.len() != entry.size {
        return Err(Error::Changed {
            path: entry.path.to_string(),
            expected: entry.size,
            actual: meta.len(),
        });
    }
    Ok(file)
}

fn hash_job(
    root: &Path,
    job: &Job<'_>,
    options: &HashOptions,
    buffer: &mut [u8],
    progress: Option<&Progress>,
) -> Result<Resource> {
    let entry = job.file;
    let file = open_file(root, entry)?;
    let io_err = |source| Error::Io {
        path: entry.path.to_string(),
        source,
    };
    let algorithm = options.algorithm;
    let mut hasher = Hasher::new(algorithm);
    let mut offset = job.start;
    if options.map_files && job.end - job.start >= MAP_MIN {
        let hash = |bytes: &[u8]| {
            hasher.update(bytes);
            if let Some(p) = progress {
                p.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
        };
        match vouch_mmap::read_mapped(&file, job.start, job.end, MAP_WINDOW, hash) {
            Outcome::Done => offset = job.end,
            Outcome::Truncated { len } => {
                return Err(Error::Changed {
                    path: entry.path.to_string(),
                    expected: entry.size,
                    actual: len,
                });
            }
            // Not mappable here: the rest goes through the buffer.
            Outcome::Unmapped { at, .. } => offset = at,
        }
    }
    while offset < job.end {
        let want = usize::try_from(job.end - offset)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let chunk = buffer.get_mut(..want).unwrap_or_default();
        let n = match file.read_at(chunk, offset) {
            Ok(0) => {
                return Err(Error::Changed {
                    path: entry.path.to_string(),
                    expected: entry.size,
                    actual: offset,
                });
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        hasher.update(chunk.get(..n).unwrap_or_default());
        offset += n as u64;
        if let Some(p) = progress {
            p.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    // A file that grew while we read it is not the file we listed.
    let after = file.metadata().map_err(io_err)?.len();
    if after != entry.size {
        return Err(Error::Changed {
            path: entry.path.to_string(),
            expected: entry.size,
            actual: after,
        });
    }
    Ok(Resource {
        path: entry.path.clone(),
        shard: job.sharded.then_some((job.start, job.end)),
        size: Some(job.end - job.start),
        digest: Digest {
            algorithm,
            bytes: hasher.finish(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::{ScanOptions, scan};

    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn model() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("abc"), "abc").unwrap();
        std::fs::write(dir.path().join("empty"), "").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/big"), vec![7u8; 10_000]).unwrap();
        dir
    }

    #[test]
    fn sha256_files_known_answer() {
        let dir = model();
        let files = scan(dir.path(), &ScanOptions::default()).unwrap();
        let out = hash_files(dir.path(), &files, &HashOptions::default(), None).unwrap();
        let names: Vec<_> = out.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(names, ["abc", "d/big", "empty"]);
        assert_eq!(out[0].digest.hex(), ABC_SHA256);
        assert_eq!(
            out[2].digest.hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn blake3_known_answer() {
        let dir = model();
        let files = scan(dir.path(), &ScanOptions::default()).unwrap();
        let options = HashOptions {
            algorithm: HashAlgorithm::Blake3,
            ..Default::default()
        };
        let out = hash_files(dir.path(), &files, &options, None).unwrap();
        assert_eq!(
            out[0].digest.hex(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
    }

    #[test]
    fn shards_cover_every_byte_once_and_match_whole_file_digests() {
        let dir = model();
        let files = scan(dir.path(), &ScanOptions::default()).unwrap();
        let options = HashOptions {
            method: Method::Shards { size: 4096 },
            buffer_size: 1000,
            threads: 3,
            ..Default::default()
        };
        let out = hash_files(dir.path(), &files, &options, None).unwrap();
        let got: Vec<_> = out
            .iter()
            .map(|r| (r.path.as_str(), r.shard.unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("abc", (0, 3)),
                ("d/big", (0, 4096)),
                ("d/big", (4096, 8192)),
                ("d/big", (8192, 10_000)),
                ("empty", (0, 0))
            ]
        );
        assert_eq!(out[0].digest.hex(), ABC_SHA256);
        assert_eq!(out[3].digest, Digest::sha256(&[7u8; 1808]));
    }

    #[test]
    fn single_file_model_is_one_resource_named_dot() {
        let dir = model();
        let f = dir.path().join("d/big");
        let m = crate::hash_file(&f, &HashOptions::default(), None).unwrap();
        let names: Vec<_> = m.resources().iter().map(|r| r.name()).collect();
        assert_eq!(names, ["."]);
        assert_eq!(m.resources()[0].digest, Digest::sha256(&[7u8; 10_000]));
        assert_eq!(m.file_count(), 1);
        let options = HashOptions {
            method: Method::Shards { size: 4096 },
            ..Default::default()
        };
        let m = crate::hash_file(&f, &options, None).unwrap();
        let names: Vec<_> = m.resources().iter().map(|r| r.name()).collect();
        assert_eq!(names, [".:0:4096", ".:4096:8192", ".:8192:10000"]);
    }

    #[test]
    fn mapped_and_read_give_the_same_digests() {
        let dir = model();
        let big: Vec<u8> = (0..(3 << 20) + 5).map(|i: u32| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("d/weights"), &big).unwrap();
        let files = scan(dir.path(), &ScanOptions::default()).unwrap();
        for method in [
            Method::Files,
            Method::Shards {
                size: (1 << 20) + 7,
            },
        ] {
            let hash = |map_files| {
                let options = HashOptions {
                    method,
                    map_files,
                    ..Default::default()
                };
                let progress = Progress::default();
                let out = hash_files(dir.path(), &files, &options, Some(&progress)).unwrap();
                (out, progress.bytes.load(Ordering::Relaxed))
            };
            let (mapped, mapped_bytes) = hash(true);
            let (read, read_bytes) = hash(false);
            assert_eq!(mapped, read);
            assert_eq!(mapped_bytes, read_bytes);
            assert_eq!(mapped_bytes, 10_003 + big.len() as u64);
        }
        let options = HashOptions::default();
        let out = hash_files(dir.path(), &files, &options, None).unwrap();
        let weights = out.iter().find(|r| r.path.as_str() == "d/weights").unwrap();
        assert_eq!(weights.digest, Digest::sha256(&big));
    }

    #[test]
    fn progress_counts_every_byte() {
        let dir = model();
        let files = scan(dir.path(), &ScanOptions::default()).unwrap();
        let progress = Progress::default();
        hash_files(dir.path(), &files, &HashOptions::default(), Some(&progress)).unwrap();
        assert_eq!(progress.bytes.load(Ordering::Relaxed), 10_003);
    }

    #[test]
    fn file_changed_after_scan_is_an_error() {
        let dir = model();
        let files = scan(dir.path(), &ScanOptions::default()).unwrap();
        std::fs::write(dir.path().join("abc"), "abcd").unwrap();
        let err = hash_files(dir.path(), &files, &HashOptions::default(), None).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Changed {
                    expected: 3,
                    actual: 4,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn file_swapped_for_symlink_after_scan_is_refused() {
        let dir = model();
        let files = scan(dir.path(), &ScanOptions::default()).unwrap();
        std::fs::remove_file(dir.path().join("abc")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("abc")).unwrap();
        let err = hash_files(dir.path(), &files, &HashOptions::default(), None).unwrap_err();
        assert!(matches!(err, Error::Symlink { .. }), "{err}");
    }

    #[test]
    fn zero_shard_size_is_refused() {
        let dir = model();
        let files = scan(dir.path(), &ScanOptions::default()).unwrap();
        let options = HashOptions {
            method: Method::Shards { size: 0 },
            ..Default::default()
        };
        assert!(matches!(
            hash_files(dir.path(), &files, &options, None),
            Err(Error::ZeroShardSize)
        ));
    }
}
