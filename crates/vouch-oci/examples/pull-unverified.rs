//! The baseline of `scripts/bench-modelpack`: the pull `vouch-init --model-artifact` makes
//! (the same registry client, manifest by digest, the blobs 4 at once into files), with the
//! hashing left out. What it writes is not verified; never use it for anything else.
//!
//! Usage: cargo run --release -p vouch-oci --features dangerous-unverified-pull \
//!        --example pull-unverified REF@sha256:HEX EMPTY_DIR
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use vouch_oci::modelpack::{self, PullFile};
use vouch_oci::{ImageReference, Options};

fn main() -> ExitCode {
    match run() {
        Ok(bytes) => {
            println!("{bytes}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pull-unverified: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<u64, String> {
    let mut args = std::env::args().skip(1);
    let (Some(reference), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: pull-unverified REF@sha256:HEX EMPTY_DIR".to_owned());
    };
    let reference = ImageReference::parse_pinned(&reference).map_err(|e| e.to_string())?;
    let options = Options::default();
    let (_, layers) = modelpack::fetch_manifest(&reference, &options).map_err(|e| e.to_string())?;
    let dir = Path::new(&dir);
    let mut files = Vec::with_capacity(layers.len());
    for l in layers {
        // The benchmark's own artifact: plain names only.
        if l.path.contains('/') || l.path.starts_with('.') {
            return Err(format!("`{}`: only plain file names here", l.path));
        }
        let target = dir.join(&l.path);
        files.push(PullFile {
            path: l.path,
            digest: l.digest,
            size: l.size,
            create: Box::new(move || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| format!("cannot create `{}`: {e}", target.display()))
            }),
        });
    }
    modelpack::dangerous_pull_unverified(&reference, files, &options).map_err(|e| e.to_string())
}
