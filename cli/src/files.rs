//! Reading inputs with size limits and writing outputs atomically.

use std::io::{Read as _, Write as _};
use std::path::Path;

use crate::failure::{Failure, Result};

/// Largest signature, key or certificate file vouch reads.
pub const MAX_INPUT: u64 = 256 << 20;

/// Read a whole (small) input file.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::undecided(format!("cannot open {what} `{}`: {e}", path.display())))?;
    let mut out = Vec::new();
    file.take(MAX_INPUT + 1)
        .read_to_end(&mut out)
        .map_err(|e| Failure::undecided(format!("cannot read {what} `{}`: {e}", path.display())))?;
    if out.len() as u64 > MAX_INPUT {
        return Err(Failure::rejected(format!(
            "{what} `{}` is larger than {MAX_INPUT} bytes",
            path.display()
        )));
    }
    Ok(out)
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
