//! Single-thread, in-memory hashing throughput: the baseline `scripts/bench-hash` compares
//! directory hashing against. Prints one line per algorithm: `name GB/s` (median of runs).
//!
//! Usage: cargo run --release -p vouch-model --example hash-limit [MIB] [RUNS]
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Instant;

use sha2::Digest as _;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(1024, |s| s.parse().unwrap());
    let runs: usize = args.next().map_or(5, |s| s.parse().unwrap());
    let mut data = vec![0u8; mib << 20];
    // Cheap pseudo-random fill so no hasher sees a special pattern.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let bytes = data.len() as f64;
    let sha: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(sha2::Sha256::digest(&data));
            bytes / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    let b3: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(blake3::hash(&data));
            bytes / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    println!("sha256 {:.3}", median(sha));
    println!("blake3 {:.3}", median(b3));
}
