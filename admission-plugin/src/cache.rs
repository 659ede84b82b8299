//! Verified results per (pinned image, policy digest), with a TTL, a size bound, and one
//! fetch shared by every concurrent request for the same image (single flight).
//!
//! Failures ("could not verify") are kept only briefly so a registry hiccup does not deny
//! for long; verdicts (verified, or rejected bundles) are kept for the full TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::OnceCell;
use vouch_policy::{ImageRef, Lookup, Policy};

use crate::metrics::Metrics;
use crate::source::{AttestationSource, SourceError};

type Key = (String, [u8; 32]);
type Slot = Arc<OnceCell<(Lookup, Instant)>>;

#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    pub ttl: Duration,
    pub failure_ttl: Duration,
    pub max_entries: usize,
}

pub struct Cache {
    config: CacheConfig,
    slots: Mutex<HashMap<Key, Slot>>,
    source: Arc<dyn AttestationSource>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Cache {
    pub fn new(
        config: CacheConfig,
        source: Arc<dyn AttestationSource>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            config,
            slots: Mutex::new(HashMap::new()),
            source,
            metrics,
        }
    }

    /// The verified lookup for `image`, fetched at most once per TTL, answered by
    /// `deadline` at the latest ("could not verify" after it).
    pub async fn lookup(&self, policy: &Policy, image: &ImageRef, deadline: Instant) -> Lookup {
        let Some(pinned) = image.pinned() else {
            return Lookup::Unavailable("the image is not pinned by digest".into());
        };
        let key = (pinned, policy.digest.bytes);
        let slot = self.slot(&key);
        if let Some((value, _)) = slot.get() {
            self.metrics
                .cache_hits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return value.clone();
        }
        self.metrics
            .cache_misses
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fetch = slot.get_or_init(|| async {
            let value = self.fetch_and_verify(policy, image, deadline).await;
            let ttl = match &value {
                Lookup::Checked(_) => self.config.ttl,
                Lookup::Unavailable(_) => self.config.failure_ttl,
            };
            (value, Instant::now() + ttl)
        });
        match tokio::time::timeout_at(deadline.into(), fetch).await {
            Ok((value, _)) => value.clone(),
            Err(_) => Lookup::Unavailable(format!(
                "the attestation store did not answer in time for {image}"
            )),
        }
    }

    fn slot(&self, key: &Key) -> Slot {
        let now = Instant::now();
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(s) = slots.get(key) {
            let expired = s.get().is_some_and(|(_, exp)| *exp <= now);
            if !expired {
                return s.clone();
            }
        }
        if slots.len() >= self.config.max_entries {
            slots.retain(|_, s| s.get().is_none_or(|(_, exp)| *exp > now));
            while slots.len() >= self.config.max_entries {
                let oldest = slots
                    .iter()
                    .filter_map(|(k, s)| s.get().map(|(_, exp)| (k.clone(), *exp)))
                    .min_by_key(|(_, exp)| *exp)
                    .map(|(k, _)| k);
                match oldest.or_else(|| slots.keys().next().cloned()) {
                    Some(k) => {
                        slots.remove(&k);
                    }
                    None => break,
                }
            }
        }
        let s: Slot = Arc::new(OnceCell::new());
        slots.insert(key.clone(), s.clone());
        s
    }

    async fn fetch_and_verify(
        &self,
        policy: &Policy,
        image: &ImageRef,
        deadline: Instant,
    ) -> Lookup {
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.registry_fetches.fetch_add(1, Relaxed);
        let fetched = tokio::time::timeout_at(deadline.into(), self.source.fetch(image)).await;
        let blobs = match fetched {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                self.metrics.registry_errors.fetch_add(1, Relaxed);
                tracing::warn!(image = %image, error = %e, "attestation fetch failed");
                return Lookup::Unavailable(match e {
                    SourceError::Unreachable(m) => format!("the registry is unreachable: {m}"),
                    other => other.to_string(),
                });
            }
            Err(_) => {
                self.metrics.registry_errors.fetch_add(1, Relaxed);
                tracing::warn!(image = %image, "attestation fetch timed out");
                return Lookup::Unavailable(format!(
                    "the registry did not answer in time for {image}"
                ));
            }
        };
        Lookup::Checked(vouch_policy::verify_for_admission(
            policy,
            image,
            &blobs,
            SystemTime::now(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::source::Fetch;

    struct Counting {
        calls: AtomicUsize,
        delay: Duration,
    }

    impl AttestationSource for Counting {
        fn fetch<'a>(&'a self, _image: &'a ImageRef) -> Fetch<'a> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(self.delay).await;
                Ok(Vec::new())
            })
        }
    }

    fn policy() -> Policy {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/policy/enforce.yaml"
        );
        Policy::load(std::path::Path::new(p)).unwrap()
    }

    fn image() -> ImageRef {
        ImageRef::parse(&format!(
            "registry.example.com/models/x@sha256:{}",
            "ab".repeat(32)
        ))
        .unwrap()
    }

    fn cache(delay: Duration) -> (Arc<Counting>, Cache) {
        let src = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            delay,
        });
        let c = Cache::new(
            CacheConfig {
                ttl: Duration::from_secs(60),
                failure_ttl: Duration::from_secs(1),
                max_entries: 2,
            },
            src.clone(),
            Arc::new(Metrics::default()),
        );
        (src, c)
    }

    #[tokio::test]
    async fn concurrent_lookups_share_one_fetch() {
        let (src, c) = cache(Duration::from_millis(50));
        let c = Arc::new(c);
        let p = Arc::new(policy());
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (c, p) = (c.clone(), p.clone());
            tasks.push(tokio::spawn(async move {
                c.lookup(&p, &image(), Instant::now() + Duration::from_secs(5))
                    .await
            }));
        }
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Lookup::Checked(_)));
        }
        assert_eq!(src.calls.load(Ordering::SeqCst), 1);
        c.lookup(&p, &image(), Instant::now() + Duration::from_secs(5))
            .await;
        assert_eq!(src.calls.load(Ordering::SeqCst), 1, "served from the cache");
    }

    #[tokio::test]
    async fn a_slow_store_is_could_not_verify_by_the_deadline() {
        let (_, c) = cache(Duration::from_secs(30));
        let started = Instant::now();
        let r = c
            .lookup(
                &policy(),
                &image(),
                Instant::now() + Duration::from_millis(100),
            )
            .await;
        assert!(started.elapsed() < Duration::from_secs(2));
        match r {
            Lookup::Unavailable(m) => assert!(m.contains("in time"), "{m}"),
            Lookup::Checked(_) => panic!("a timeout must not be a verdict"),
        }
    }

    #[tokio::test]
    async fn the_size_is_bounded() {
        let (_, c) = cache(Duration::ZERO);
        let p = policy();
        for b in 0..10u8 {
            let img = ImageRef::parse(&format!(
                "registry.example.com/models/x@sha256:{}",
                format!("{b:02x}").repeat(32)
            ))
            .unwrap();
            c.lookup(&p, &img, Instant::now() + Duration::from_secs(5))
                .await;
        }
        assert!(c.slots.lock().unwrap().len() <= 2);
    }
}
