//! Load generator: HTTPS keep-alive, N reviews in flight, prints reviews/s, p50/p99, errors.
//!
//! ```sh
//! cargo run --release -p vouch-admission --example loadgen -- \
//!   --addr 127.0.0.1:8443 --ca DIR/ca.pem --review testdata/admission/pod-allowed.json \
//!   [--requests 100000] [--concurrency 64] [--distinct N | --digests FILE] [--digest-from HEX]
//!   [--threads 1]
//! ```
//! It runs on one thread by default (`--threads N` for more): it stands in for kube-apiserver,
//! which does not share the webhook's cores, and one thread leaves the webhook the most CPU
//! (two threads took 38% more CPU for the same reviews, measured on the warm run).
//! Every request gets its own uid. `--distinct N` (N > 0) spreads requests over N made-up
//! image digests (cold-cache runs: each digest is fetched and verified once); `--digests
//! FILE` (one `sha256:<hex>` or `<hex>` per line) uses real ones instead: request i puts
//! digest i % lines in place of the `--digest-from` digest (default `a1` x 32, the server
//! image of `testdata/admission/pod-allowed.json`). The summary counts `allowed=` answers
//! (`"allowed":true` in the response body) among the ok ones; `errors=` counts every failed
//! request (not 200, connection error, or no answer within 10 s), `timeouts=` the last kind.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads").map_or(1, |s| s.parse().unwrap());
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    rt.unwrap().block_on(run(args));
}

async fn run(args: Vec<String>) {
    let addr: std::net::SocketAddr = arg(&args, "--addr")
        .unwrap_or("127.0.0.1:8443".into())
        .parse()
        .unwrap();
    let ca = arg(&args, "--ca").expect("--ca CA.pem");
    let review = std::fs::read_to_string(arg(&args, "--review").expect("--review FILE")).unwrap();
    let total: usize = arg(&args, "--requests").map_or(100_000, |s| s.parse().unwrap());
    let conc: usize = arg(&args, "--concurrency").map_or(64, |s| s.parse().unwrap());
    let distinct: usize = arg(&args, "--distinct").map_or(0, |s| s.parse().unwrap());
    let from = arg(&args, "--digest-from")
        .map(|s| s.trim_start_matches("sha256:").to_owned())
        .unwrap_or_else(|| "a1".repeat(32));
    let digests: Arc<Vec<String>> = Arc::new(arg(&args, "--digests").map_or_else(Vec::new, |f| {
        let list: Vec<String> = std::fs::read_to_string(&f)
            .unwrap()
            .lines()
            .map(|l| l.trim().trim_start_matches("sha256:").to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        for d in &list {
            assert!(
                d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()),
                "{f}: `{d}` is not a sha256 digest"
            );
        }
        assert!(!list.is_empty(), "{f}: no digests");
        list
    }));
    if !digests.is_empty() || distinct > 0 {
        assert!(
            review.contains(&from),
            "the review does not contain the digest `{from}` (--digest-from)"
        );
    }
    let tls = common::tls_config(std::path::Path::new(&ca));
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let allowed = Arc::new(AtomicUsize::new(0));
    let timeouts = Arc::new(AtomicUsize::new(0));
    let review = Arc::new(review);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (tls, next, errors, timeouts, allowed, review, from, digests) = (
            tls.clone(),
            next.clone(),
            errors.clone(),
            timeouts.clone(),
            allowed.clone(),
            review.clone(),
            from.clone(),
            digests.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut conn = common::Conn::open(addr, tls.clone()).await.unwrap();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let mut body = review.replace(
                    "11111111-0000-0000-0000-000000000001",
                    &format!("{i:08x}-0000-4000-8000-000000000000"),
                );
                if let Some(d) = digests.get(i % digests.len().max(1)) {
                    body = body.replace(&from, d);
                } else if distinct > 0 {
                    body = body.replace(&from, &format!("{:064x}", i % distinct + 1));
                }
                let t = Instant::now();
                match tokio::time::timeout(
                    Duration::from_secs(10),
                    conn.request("POST", "/validate", body.into_bytes()),
                )
                .await
                {
                    Ok(Ok((200, resp))) => {
                        lat.push(t.elapsed());
                        if contains(&resp, br#""allowed":true"#) {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    r => {
                        if r.is_err() {
                            timeouts.fetch_add(1, Ordering::Relaxed);
                        }
                        errors.fetch_add(1, Ordering::Relaxed);
                        conn = common::Conn::open(addr, tls.clone()).await.unwrap();
                    }
                }
            }
            lat
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "requests={} ok={} allowed={} errors={} timeouts={} concurrency={conc} elapsed={secs:.2}s reviews/s={:.0} p50={:.2}ms p99={:.2}ms max={:.2}ms",
        total,
        all.len(),
        allowed.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        timeouts.load(Ordering::Relaxed),
        all.len() as f64 / secs,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}
