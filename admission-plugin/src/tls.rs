//! The serving certificate, read from files and swapped in place when they change
//! (cert-manager rotates the Secret; the kubelet updates the mounted files).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::metrics::Metrics;

#[derive(Debug)]
pub struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, Stamp)>,
}

type Stamp = Option<(SystemTime, u64, SystemTime, u64)>;

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let c = std::fs::metadata(cert).ok()?;
    let k = std::fs::metadata(key).ok()?;
    Some((c.modified().ok()?, c.len(), k.modified().ok()?, k.len()))
}

pub fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("`{}`: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{}`: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("`{}` holds no PEM certificate", cert.display()));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("`{}`: {e}", key.display()))?;
    CertifiedKey::from_der(chain, der, provider).map_err(|e| {
        format!(
            "`{}` and `{}` do not make a usable pair: {e}",
            cert.display(),
            key.display()
        )
    })
}

impl Reloading {
    pub fn new(cert: PathBuf, key: PathBuf, provider: Arc<CryptoProvider>) -> Result<Self, String> {
        let s = stamp(&cert, &key);
        let ck = load(&cert, &key, &provider)?;
        Ok(Self {
            cert,
            key,
            provider,
            current: RwLock::new((Arc::new(ck), s)),
        })
    }

    /// Reload when the files changed; keep the current pair when the new one is unusable.
    pub fn poll(&self, metrics: &Metrics) {
        let s = stamp(&self.cert, &self.key);
        let unchanged = match self.current.read() {
            Ok(g) => g.1 == s,
            Err(_) => false,
        };
        if unchanged || s.is_none() {
            return;
        }
        match load(&self.cert, &self.key, &self.provider) {
            Ok(ck) => {
                if let Ok(mut g) = self.current.write() {
                    *g = (Arc::new(ck), s);
                    metrics.tls_reloads.fetch_add(1, Relaxed);
                    tracing::info!(cert = %self.cert.display(), "serving certificate reloaded");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "new serving certificate is unusable; keeping the current one");
            }
        }
    }

    /// Poll every `every` (never when zero).
    pub fn spawn_watch(self: &Arc<Self>, metrics: Arc<Metrics>, every: Duration) {
        let me = self.clone();
        crate::watch::every(every, move || me.poll(&metrics));
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|g| g.0.clone())
    }
}
