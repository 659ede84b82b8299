//! The trust policy in force, re-read when its file (or a key it loads) changes: a ConfigMap
//! edit reaches the webhook without a restart. A new policy that does not load is refused
//! and the one in force stays; nothing is ever decided without a valid policy.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use vouch_policy::Policy;

use crate::metrics::Metrics;

#[derive(Debug)]
pub struct LivePolicy {
    path: PathBuf,
    current: RwLock<Arc<Policy>>,
    /// The last reload error, so a broken file is logged once, not at every poll.
    last_error: Mutex<Option<String>>,
}

impl LivePolicy {
    pub fn new(path: PathBuf, policy: Policy, metrics: &Metrics) -> Self {
        metrics.set_policy_digest(&policy.digest.to_string());
        Self {
            path,
            current: RwLock::new(Arc::new(policy)),
            last_error: Mutex::new(None),
        }
    }

    /// The policy in force.
    pub fn get(&self) -> Arc<Policy> {
        match self.current.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Load the file again; put it in force when it loads and differs (by digest over the
    /// file and every key it reads). Returns whether it changed.
    pub fn poll(&self, metrics: &Metrics) -> bool {
        let mut last_error = self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match Policy::load(&self.path) {
            Ok(new) => {
                *last_error = None;
                let old = self.get();
                if new.digest == old.digest {
                    return false;
                }
                tracing::info!(
                    policy = %self.path.display(),
                    digest = %new.digest,
                    previous = %old.digest,
                    mode = %new.mode,
                    rules = new.rules.len(),
                    "policy reloaded"
                );
                metrics.set_policy_digest(&new.digest.to_string());
                metrics.policy_reloads.fetch_add(1, Relaxed);
                match self.current.write() {
                    Ok(mut p) => *p = Arc::new(new),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(new),
                }
                true
            }
            Err(e) => {
                metrics.policy_reload_errors.fetch_add(1, Relaxed);
                let e = e.to_string();
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::error!(
                        policy = %self.path.display(),
                        error = %e,
                        in_force = %self.get().digest,
                        "the changed policy does not load; the policy in force stays"
                    );
                    *last_error = Some(e);
                }
                false
            }
        }
    }

    /// Poll every `every` (never when zero).
    pub fn spawn_watch(self: &Arc<Self>, metrics: Arc<Metrics>, every: Duration) {
        let me = self.clone();
        crate::watch::every(every, move || {
            me.poll(&metrics);
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn enforce_text() -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata");
        std::fs::read_to_string(format!("{dir}/policy/enforce.yaml"))
            .unwrap()
            .replace("../keys/release.pub", &format!("{dir}/keys/release.pub"))
            .replace(
                "trustedRoot: trusted_root.json",
                &format!("trustedRoot: {dir}/policy/trusted_root.json"),
            )
    }

    #[test]
    fn a_changed_policy_is_put_in_force_and_a_broken_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("policy.yaml");
        std::fs::write(&path, enforce_text()).unwrap();
        let metrics = Metrics::default();
        let live = LivePolicy::new(path.clone(), Policy::load(&path).unwrap(), &metrics);
        assert!(!live.poll(&metrics), "unchanged");
        let first = live.get().digest;

        std::fs::write(&path, enforce_text().replace("mode: enforce", "mode: warn")).unwrap();
        assert!(live.poll(&metrics));
        assert_eq!(live.get().mode.to_string(), "warn");
        assert_ne!(live.get().digest, first);
        assert_eq!(metrics.policy_reloads.load(Relaxed), 1);

        std::fs::write(&path, "apiVersion: nope\n").unwrap();
        assert!(!live.poll(&metrics));
        std::fs::remove_file(&path).unwrap();
        assert!(!live.poll(&metrics));
        assert_eq!(
            live.get().mode.to_string(),
            "warn",
            "the last good policy stays"
        );
        assert_eq!(metrics.policy_reload_errors.load(Relaxed), 2);
        assert!(metrics.render().contains(&format!(
            "vouch_admission_policy_info{{digest=\"{}\"}} 1",
            live.get().digest
        )));
    }
}
