//! Reading inputs with size limits and writing outputs atomically.

use std::io::{Read as _, Write as _};
use std::path::Path;

use crate::failure::{Failure, Result};

/// Largest signature, key or certificate file vouch reads.
pub const MAX_INPUT: u64 = 256 << 20;

/// Read a whole (small) input file. A regular file larger than [`MAX_INPUT`] is refused
/// before anything is read; for other files (pipes) reading stops just past the limit.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::undecided(format!("cannot open {what} `{}`: {e}", path.display())))?;
    let meta = file
        .metadata()
        .map_err(|e| Failure::undecided(format!("cannot read {what} `{}`: {e}", path.display())))?;
    if meta.is_file() && meta.len() > MAX_INPUT {
        return Err(too_large(path, what));
    }
    let capacity = if meta.is_file() {
        usize::try_from(meta.len()).unwrap_or(0)
    } else {
        0
    };
    let mut out = Vec::with_capacity(capacity);
    file.take(MAX_INPUT + 1)
        .read_to_end(&mut out)
        .map_err(|e| Failure::undecided(format!("cannot read {what} `{}`: {e}", path.display())))?;
    if out.len() as u64 > MAX_INPUT {
        return Err(too_large(path, what));
    }
    Ok(out)
}

fn too_large(path: &Path, what: &str) -> Failure {
    Failure::rejected(format!(
        "{what} `{}` is larger than {MAX_INPUT} bytes",
        path.display()
    ))
}

/// Write `data` to `path` atomically (a temporary file in the same directory, then rename),
/// with `mode` permissions.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail =
        |e: std::io::Error| Failure::undecided(format!("cannot write `{}`: {e}", path.display()));
    let mut tmp = tempfile::Builder::new()
        .prefix(".vouch-")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    tmp.write_all(data).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn oversized_regular_file_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.sig");
        // Sparse: refusing it from its size costs nothing; reading it would take 256 MiB.
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_INPUT + 1)
            .unwrap();
        let err = read(&big, "signature").unwrap_err();
        assert!(err.message.contains("larger than"), "{}", err.message);
        assert_eq!(err.kind, crate::failure::Kind::Rejected);
    }

    #[test]
    fn small_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.pem");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(read(&f, "key").unwrap(), b"abc");
        let err = read(&dir.path().join("nope"), "key").unwrap_err();
        assert!(err.message.contains("cannot open key"), "{}", err.message);
    }
}
