//! Hash a directory with the library alone (no CLI): for profiling the engine.
//!
//! Usage: cargo run --release -p vouch-model --example hash-dir DIR [sha256|blake3] [SHARD] [BUF_KIB] [THREADS] [mapped|read]
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use vouch_model::{HashOptions, Method, ScanOptions, hash_dir};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap();
    let algorithm = args.next().map_or("sha256".into(), |s| s).parse().unwrap();
    let shard: u64 = args.next().map_or(0, |s| s.parse().unwrap());
    let buf_kib: usize = args.next().map_or(1024, |s| s.parse().unwrap());
    let threads: usize = args.next().map_or(0, |s| s.parse().unwrap());
    let map_files = args.next().is_none_or(|s| s == "mapped");
    let method = if shard == 0 {
        Method::Files
    } else {
        Method::Shards { size: shard }
    };
    let options = HashOptions {
        algorithm,
        method,
        threads,
        buffer_size: buf_kib << 10,
        map_files,
    };
    let t = Instant::now();
    let m = hash_dir(dir.as_ref(), &ScanOptions::default(), &options, None).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "{} bytes in {s:.3}s = {:.3} GB/s",
        m.total_bytes(),
        m.total_bytes() as f64 / s / 1e9
    );
}
