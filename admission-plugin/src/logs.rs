//! Log lines go through one shared 64 KiB buffer, written to stderr when it fills and at
//! least every 100 ms, instead of one `write(2)` per line: with one line per review that is
//! a system call per review, about an eighth of the webhook's CPU on the warm path
//! (`scripts/bench-admission`). A line is in the log at most 100 ms after the event. Handing
//! lines to a writer thread over a channel was measured too, and cost more than the writes
//! (a wake-up per line).

use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const BUFFER: usize = 64 * 1024;
const EVERY: Duration = Duration::from_millis(100);

type Shared = Arc<Mutex<BufWriter<Box<dyn Write + Send>>>>;

/// The `MakeWriter` handed to tracing-subscriber.
#[derive(Clone)]
pub struct Lines {
    out: Shared,
}

/// Writes out what is buffered when dropped (at the end of `main`).
pub struct Guard {
    out: Shared,
}

fn lock(out: &Shared) -> MutexGuard<'_, BufWriter<Box<dyn Write + Send>>> {
    out.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Buffer lines for `out` (stderr in the binary), flushed by a thread every 100 ms.
pub fn start(out: impl Write + Send + 'static) -> std::io::Result<(Lines, Guard)> {
    let boxed: Box<dyn Write + Send> = Box::new(out);
    let out: Shared = Arc::new(Mutex::new(BufWriter::with_capacity(BUFFER, boxed)));
    let timer = out.clone();
    std::thread::Builder::new()
        .name("vouch-logs".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EVERY);
                // Nowhere to report a failed log write.
                let _ = lock(&timer).flush();
            }
        })?;
    Ok((Lines { out: out.clone() }, Guard { out }))
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = lock(&self.out).flush();
    }
}

/// One event's line, copied into the shared buffer in one piece when tracing drops it.
pub struct LineWriter {
    line: Vec<u8>,
    out: Shared,
}

impl Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            let _ = lock(&self.out).write_all(&self.line);
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            line: Vec::with_capacity(512),
            out: self.out.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tracing_subscriber::fmt::MakeWriter as _;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(s: &Sink) -> String {
        String::from_utf8(s.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lines_are_whole_in_order_and_out_by_the_guard() {
        let sink = Sink::default();
        let (lines, guard) = start(sink.clone()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let lines = lines.clone();
                s.spawn(move || {
                    for i in 0..500 {
                        let mut w = lines.make_writer();
                        write!(w, "thread {t} ").unwrap();
                        writeln!(w, "line {i}").unwrap();
                    }
                });
            }
        });
        drop(guard);
        let text = text(&sink);
        assert_eq!(text.lines().count(), 2000);
        for t in 0..4 {
            let mine: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            assert_eq!(mine.len(), 500, "no line torn or lost");
            assert_eq!(mine[499], format!("thread {t} line 499"));
        }
    }

    #[test]
    fn a_quiet_log_is_written_within_the_interval() {
        let sink = Sink::default();
        let (lines, _guard) = start(sink.clone()).unwrap();
        writeln!(lines.make_writer(), "only line").unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while !text(&sink).contains("only line") {
            assert!(std::time::Instant::now() < until, "never written");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
