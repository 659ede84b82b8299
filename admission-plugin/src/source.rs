//! Where attestation bundles come from: a small trait, so the webhook does not care whether
//! they come from the registry (production) or from recorded files (tests, air-gapped).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use vouch_policy::ImageRef;

use crate::metrics::Metrics;

/// Why bundles could not be fetched. Never a verdict: the webhook answers "could not
/// verify" and denies.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The store did not answer (connection refused, DNS, timeout).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// It answered with an error.
    #[error("{0}")]
    Failed(String),
}

/// A boxed future, so the trait stays object-safe without extra crates.
pub type Fetch<'a> = Pin<Box<dyn Future<Output = Result<Vec<Vec<u8>>, SourceError>> + Send + 'a>>;

/// Fetches the combined-attestation bundles (JSON) stored for an image digest.
pub trait AttestationSource: Send + Sync + 'static {
    /// The bundles for `image` (pinned by digest). No bundles is `Ok(vec![])`.
    fn fetch<'a>(&'a self, image: &'a ImageRef) -> Fetch<'a>;
}

/// An attestation directory: `DIR/<sha256 hex of the image digest>/*.json`.
#[derive(Debug, Clone)]
pub struct DirSource {
    pub dir: PathBuf,
}

impl AttestationSource for DirSource {
    fn fetch<'a>(&'a self, image: &'a ImageRef) -> Fetch<'a> {
        Box::pin(async move {
            let Some(d) = image.digest else {
                return Ok(Vec::new());
            };
            let dir = self.dir.join(d.hex());
            tokio::task::spawn_blocking(move || read_dir_bundles(&dir))
                .await
                .map_err(|e| SourceError::Failed(format!("reader task failed: {e}")))?
        })
    }
}

fn read_dir_bundles(dir: &std::path::Path) -> Result<Vec<Vec<u8>>, SourceError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SourceError::Failed(format!("{}: {e}", dir.display()))),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| SourceError::Failed(format!("{}: {e}", p.display()))))
        .collect()
}

/// The registry, through `vouch-oci`: the referrers API, else the referrers tag schema.
/// One client per registry host, made on first use and kept (its token cache with it), and
/// at most `concurrency` lookups in flight to it. Waiting lookups get their turn first come,
/// first served (tokio's semaphore is fair): a registry flooded with requests answers some of
/// them far later than others (measured on the Debian registry: p99 123 ms at 64 requests in
/// flight, 13 ms at 8, for the same throughput), so the queue is kept here instead.
#[derive(Debug)]
pub struct RegistrySource {
    options: vouch_oci::Options,
    concurrency: usize,
    clients: std::sync::Mutex<HashMap<String, Client>>,
    metrics: Arc<Metrics>,
}

type Client = (Arc<vouch_oci::Registry>, Arc<tokio::sync::Semaphore>);

impl RegistrySource {
    /// A source using `options` for every registry (credentials from the docker config),
    /// with at most `concurrency` (at least 1) lookups in flight to each.
    #[must_use]
    pub fn new(options: vouch_oci::Options, concurrency: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            options,
            concurrency: concurrency.max(1),
            clients: std::sync::Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn client(&self, image: &vouch_oci::ImageReference) -> Result<Client, SourceError> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| SourceError::Failed("registry client table poisoned".into()))?;
        if let Some(c) = clients.get(image.registry()) {
            return Ok(c.clone());
        }
        let c = (
            Arc::new(
                vouch_oci::Registry::for_reference(image, &self.options)
                    .map_err(|e| SourceError::Failed(e.to_string()))?,
            ),
            Arc::new(tokio::sync::Semaphore::new(self.concurrency)),
        );
        clients.insert(image.registry().to_owned(), c.clone());
        Ok(c)
    }
}

impl AttestationSource for RegistrySource {
    fn fetch<'a>(&'a self, image: &'a ImageRef) -> Fetch<'a> {
        Box::pin(async move {
            let Some(d) = image.digest else {
                return Ok(Vec::new());
            };
            let pinned = vouch_oci::ImageReference::parse_pinned(&format!(
                "{}@sha256:{}",
                image.repository,
                d.hex()
            ))
            .map_err(|e| SourceError::Failed(e.to_string()))?;
            let (client, turns) = self.client(&pinned)?;
            let waiting = Waiting::start(&self.metrics);
            let _turn = turns
                .acquire()
                .await
                .map_err(|e| SourceError::Failed(format!("registry queue closed: {e}")))?;
            drop(waiting);
            match client.fetch_attestations(&pinned).await {
                Ok(found) => Ok(found.into_iter().map(|a| a.bundle).collect()),
                Err(e) if e.is_unreachable() => Err(SourceError::Unreachable(e.to_string())),
                Err(e) => Err(SourceError::Failed(e.to_string())),
            }
        })
    }
}

/// Counts a lookup in `vouch_admission_registry_waiting` until dropped (also when the
/// review's deadline cancels the wait).
struct Waiting<'a>(&'a Metrics);

impl<'a> Waiting<'a> {
    fn start(m: &'a Metrics) -> Self {
        m.registry_waiting
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(m)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0
            .registry_waiting
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_past_the_limit_wait_their_turn_and_are_counted() {
        // A "registry" that accepts connections and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                open.push(s);
            }
        });
        let metrics = Arc::new(Metrics::default());
        let source = Arc::new(RegistrySource::new(
            vouch_oci::Options::default(),
            1,
            metrics.clone(),
        ));
        let image = |b: char| {
            ImageRef::parse(&format!(
                "{addr}/models/x@sha256:{}",
                b.to_string().repeat(64)
            ))
            .unwrap()
        };
        let (first, second) = (image('a'), image('b'));
        let s = source.clone();
        let holding = tokio::spawn(async move { s.fetch(&first).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            metrics.registry_waiting.load(Relaxed),
            0,
            "the first has the turn"
        );

        let waiting = tokio::time::timeout(Duration::from_millis(300), source.fetch(&second));
        let probe = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            metrics.registry_waiting.load(Relaxed)
        };
        let (r, seen) = tokio::join!(waiting, probe);
        assert!(
            r.is_err(),
            "the second cannot run while the first holds the only turn"
        );
        assert_eq!(seen, 1, "and it is counted while it waits");
        assert_eq!(
            metrics.registry_waiting.load(Relaxed),
            0,
            "a cancelled wait is uncounted"
        );
        holding.abort();
    }
}
