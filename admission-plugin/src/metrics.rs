//! Prometheus text metrics with atomics: no metrics crate needed for a handful of series.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Latency bucket upper bounds, seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    pub warned: AtomicU64,
    pub invalid: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub registry_fetches: AtomicU64,
    pub registry_errors: AtomicU64,
    pub tls_reloads: AtomicU64,
    /// Lookups waiting for a turn at their registry (a gauge).
    pub registry_waiting: AtomicU64,
    pub policy_reloads: AtomicU64,
    pub policy_reload_errors: AtomicU64,
    /// The digest of the policy in force.
    policy_digest: std::sync::Mutex<String>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Metrics {
    pub fn set_policy_digest(&self, digest: &str) {
        let mut d = self
            .policy_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        digest.clone_into(&mut d);
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            if s <= le {
                b.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP vouch_admission_reviews_total AdmissionReviews answered, by decision."
        );
        let _ = writeln!(o, "# TYPE vouch_admission_reviews_total counter");
        for (d, v) in [
            ("allowed", &self.allowed),
            ("denied", &self.denied),
            ("warned", &self.warned),
            ("invalid", &self.invalid),
        ] {
            let _ = writeln!(
                o,
                "vouch_admission_reviews_total{{decision=\"{d}\"}} {}",
                v.load(Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP vouch_admission_review_duration_seconds Time to answer a review."
        );
        let _ = writeln!(
            o,
            "# TYPE vouch_admission_review_duration_seconds histogram"
        );
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                o,
                "vouch_admission_review_duration_seconds_bucket{{le=\"{le}\"}} {}",
                b.load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(
            o,
            "vouch_admission_review_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(o, "vouch_admission_review_duration_seconds_sum {sum}");
        let _ = writeln!(o, "vouch_admission_review_duration_seconds_count {count}");
        for (name, help, v) in [
            (
                "vouch_admission_cache_hits_total",
                "Verified results served from the cache.",
                &self.cache_hits,
            ),
            (
                "vouch_admission_cache_misses_total",
                "Lookups that had to fetch and verify.",
                &self.cache_misses,
            ),
            (
                "vouch_admission_registry_fetches_total",
                "Attestation fetches from the source.",
                &self.registry_fetches,
            ),
            (
                "vouch_admission_registry_errors_total",
                "Fetches that failed or timed out.",
                &self.registry_errors,
            ),
            (
                "vouch_admission_tls_reloads_total",
                "Serving certificate reloads.",
                &self.tls_reloads,
            ),
            (
                "vouch_admission_policy_reloads_total",
                "Changed policies put in force.",
                &self.policy_reloads,
            ),
            (
                "vouch_admission_policy_reload_errors_total",
                "Policy reloads refused (the policy in force stayed).",
                &self.policy_reload_errors,
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} counter");
            let _ = writeln!(o, "{name} {}", v.load(Relaxed));
        }
        let _ = writeln!(
            o,
            "# HELP vouch_admission_registry_waiting Lookups waiting for a turn at their registry (--registry-concurrency)."
        );
        let _ = writeln!(o, "# TYPE vouch_admission_registry_waiting gauge");
        let _ = writeln!(
            o,
            "vouch_admission_registry_waiting {}",
            self.registry_waiting.load(Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP vouch_admission_policy_info The policy in force (digest over its file and keys)."
        );
        let _ = writeln!(o, "# TYPE vouch_admission_policy_info gauge");
        let digest = self
            .policy_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let _ = writeln!(o, "vouch_admission_policy_info{{digest=\"{digest}\"}} 1");
        o
    }
}
