//! Files the webhook re-reads while it runs (the serving certificate, the policy).

use std::sync::Arc;
use std::time::Duration;

/// Run `poll` every `every` (never when zero), on the blocking pool: it reads files. The
/// first run is one interval after start, since the files were just read.
pub fn every(every: Duration, poll: impl Fn() + Send + Sync + 'static) {
    if every.is_zero() {
        return;
    }
    let poll = Arc::new(poll);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let poll = poll.clone();
            let _ = tokio::task::spawn_blocking(move || poll()).await;
        }
    });
}
