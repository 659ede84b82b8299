use std::path::PathBuf;

use crate::args::KeyCommand;
use crate::failure::{Failure, Result};
use crate::files::write_atomic;

pub fn run(cmd: KeyCommand) -> Result {
    match cmd {
        KeyCommand::Generate {
            output_prefix,
            force,
        } => generate(output_prefix, force),
    }
}

fn with_ext(prefix: &std::path::Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

fn generate(prefix: PathBuf, force: bool) -> Result {
    let private = with_ext(&prefix, ".key");
    let public = with_ext(&prefix, ".pub");
    if !force {
        for p in [&private, &public] {
            if p.exists() {
                return Err(
                    Failure::undecided(format!("`{}` already exists", p.display())).hint(
                        "pass `--force` to overwrite it, or choose another `--output-prefix`",
                    ),
                );
            }
        }
    }
    let key = vouch_sign::generate_p256()?;
    write_atomic(&private, key.private_pem.as_bytes(), 0o600)?;
    write_atomic(&public, key.public_pem.as_bytes(), 0o644)?;
    eprintln!(
        "wrote private key `{}` (keep it secret) and public key `{}`",
        private.display(),
        public.display()
    );
    Ok(())
}
