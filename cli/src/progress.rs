//! A progress bar on stderr while hashing, only on a terminal.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vouch_model::Progress;

/// Run `work` with a byte progress bar (a spinner when `total` is unknown) when stderr is a
/// terminal and `quiet` is false. Small jobs get no bar.
pub fn with_bar<T>(
    total: Option<u64>,
    quiet: bool,
    work: impl FnOnce(Option<&Progress>) -> T,
) -> T {
    if quiet || !std::io::stderr().is_terminal() || total.is_some_and(|t| t < (64 << 20)) {
        return work(None);
    }
    let progress = Progress::default();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let (bar, template) = match total {
                Some(t) => (ProgressBar::new(t), "{spinner} hashing {bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} eta {eta}"),
                None => (ProgressBar::no_length(), "{spinner} hashing {bytes} {binary_bytes_per_sec}"),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            while !done.load(Ordering::Relaxed) {
                bar.set_position(progress.bytes.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        let out = work(Some(&progress));
        done.store(true, Ordering::Relaxed);
        out
    })
}
