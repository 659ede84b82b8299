//! Read a range of a file straight from the page cache, through read-only mappings of a
//! bounded size, for hashing without the copy that `read(2)` makes.
//!
//! Why it exists: on the AMD EPYC machines the project runs on, `read(2)` into a buffer spends
//! 13-20% of a SHA-256 worker's time in the kernel's copy; a mapping hands the hasher the page
//! cache's own pages (`scripts/bench-hash`, ARCHITECTURE.md).
//!
//! The one hazard of a file mapping is a file that gets shorter while it is mapped: touching a
//! page past the new end raises `SIGBUS`, which kills the process. This crate answers it:
//! every live mapping is registered in a fixed table, and a `SIGBUS` handler that finds the
//! faulting address in that table replaces the rest of the mapping with zero pages and marks
//! it, so the access completes, [`read_mapped`] returns [`Outcome::Truncated`], and the caller
//! discards what it computed. A `SIGBUS` at any other address goes to the handler that was
//! there before (Rust's own), or to the default action: it kills as it always did.
//!
//! A file changed in place (same size) while it is mapped gives the caller changed bytes, as
//! `read(2)` would; the digest then fails to verify, or signs what was read.
//!
//! This is the only crate in the workspace with `unsafe` code; each block says why it holds.

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How [`read_mapped`] ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every byte of the range was handed on, in order.
    Done,
    /// The file became shorter than the range: it was `len` bytes long when that was seen.
    /// The last piece handed on may hold zeros in place of the missing bytes; whatever the
    /// caller made of the range must be discarded.
    Truncated {
        /// The file's length when the truncation was seen.
        len: u64,
    },
    /// The range could not be mapped from `at` on (a file system without `mmap`, the table of
    /// live mappings full, ...). Every byte before `at` was handed on; read the rest with
    /// `read(2)`.
    Unmapped {
        /// The first byte not handed on.
        at: u64,
        /// Why.
        error: io::Error,
    },
}

/// Hand `file[start..end)` to `f` in order, one mapped window at a time, each at most
/// `window` bytes (rounded up to whole pages). Windows start at multiples of `window` in the
/// file, so that the kernel can map the page cache's large folios whole.
///
/// At most one window per call is mapped at any time, so a caller's memory is bounded by
/// `window` per thread. The file's size is checked before each window.
pub fn read_mapped(
    file: &File,
    start: u64,
    end: u64,
    window: usize,
    mut f: impl FnMut(&[u8]),
) -> Outcome {
    read_mapped_inner(file, start, end, window, &mut f, &mut || {})
}

fn read_mapped_inner(
    file: &File,
    start: u64,
    end: u64,
    window: usize,
    f: &mut dyn FnMut(&[u8]),
    after_map: &mut dyn FnMut(),
) -> Outcome {
    if start >= end {
        return Outcome::Done;
    }
    let page = match install() {
        Ok(page) => page,
        Err(error) => return Outcome::Unmapped { at: start, error },
    };
    let window = window.max(page).div_ceil(page).saturating_mul(page) as u64;
    let mut offset = start;
    while offset < end {
        let map_start = offset - offset % page as u64;
        let map_end = end.min(
            (map_start / window)
                .saturating_add(1)
                .saturating_mul(window),
        );
        match file.metadata() {
            Ok(m) if m.len() < map_end => return Outcome::Truncated { len: m.len() },
            Ok(_) => {}
            Err(error) => return Outcome::Unmapped { at: offset, error },
        }
        let unmapped = |error| Outcome::Unmapped { at: offset, error };
        let (Ok(len), Ok(skip), Ok(file_offset)) = (
            usize::try_from(map_end - map_start),
            usize::try_from(offset - map_start),
            libc::off_t::try_from(map_start),
        ) else {
            return unmapped(io::Error::other("range does not fit this platform's types"));
        };
        let Some(slot) = Slot::claim() else {
            return unmapped(io::Error::other("every mapping slot is in use"));
        };
        // SAFETY: a new read-only mapping chosen by the kernel (no fixed address), of a file
        // descriptor that `file` keeps open for the whole call; the result is checked below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                file_offset,
            )
        };
        if addr == libc::MAP_FAILED {
            let error = io::Error::last_os_error();
            slot.release();
            return unmapped(error);
        }
        slot.register(addr as usize, len);
        // Start reading the next window from disk while this one is hashed (a no-op for
        // pages already cached): a mapping populated on demand would otherwise wait for
        // each window's reads in turn.
        let next_end = end.min(map_end.saturating_add(window));
        if let (Ok(next), Ok(next_len)) = (
            libc::off_t::try_from(map_end),
            libc::off_t::try_from(next_end - map_end),
        ) && next_len > 0
        {
            // SAFETY: an advice on an open descriptor; it reads nothing into this process.
            unsafe {
                libc::posix_fadvise(file.as_raw_fd(), next, next_len, libc::POSIX_FADV_WILLNEED)
            };
        }
        after_map();
        // SAFETY: `addr..addr + len` is the mapping made above, readable, and unmapped only
        // after `f` returns; `f` cannot keep the slice (it is borrowed for the call). A page
        // the file no longer has is replaced by a zero page by `on_sigbus` (the mapping is
        // registered), so every access completes. `skip < len`: `offset < map_end`. The
        // bytes can change under the slice (another process writing the file, or those zero
        // pages), as under any shared file mapping: `f` only reads them as plain bytes, and
        // nothing depends on their values but the digest that is then checked or discarded.
        let bytes = unsafe { std::slice::from_raw_parts(addr.cast::<u8>().add(skip), len - skip) };
        f(bytes);
        let truncated = slot.hit.load(Ordering::SeqCst);
        // Unregistered before it is unmapped: once unmapped, the kernel may give the same
        // addresses to another thread's mapping, whose faults must not be taken for this one.
        slot.unregister();
        // SAFETY: unmaps exactly the mapping made above (the zero pages `on_sigbus` may have
        // put in its place included); nothing refers to it any more.
        unsafe { libc::munmap(addr, len) };
        slot.release();
        if truncated {
            return Outcome::Truncated {
                len: file.metadata().map_or(offset, |m| m.len()),
            };
        }
        offset = map_end;
    }
    Outcome::Done
}

/// A live mapping, as the `SIGBUS` handler sees it. `start == 0` means none. `seq` is a
/// sequence lock over `start` and `end`: odd while they change, so that the handler (which
/// cannot wait) never takes half of one registration and half of another for a range.
struct Slot {
    busy: AtomicBool,
    seq: AtomicUsize,
    start: AtomicUsize,
    end: AtomicUsize,
    hit: AtomicBool,
}

/// More than the threads a hasher runs; a caller that finds them all busy reads instead.
const SLOTS: usize = 256;

#[allow(clippy::declare_interior_mutable_const)] // each array element is its own slot
const FREE: Slot = Slot {
    busy: AtomicBool::new(false),
    seq: AtomicUsize::new(0),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    hit: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];

impl Slot {
    fn claim() -> Option<&'static Slot> {
        TABLE.iter().find(|s| {
            s.busy
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        })
    }

    fn register(&self, start: usize, len: usize) {
        self.hit.store(false, Ordering::SeqCst);
        self.set(start, start.saturating_add(len));
    }

    /// The handler no longer looks at this slot's range.
    fn unregister(&self) {
        self.set(0, 0);
    }

    /// Only the thread that claimed the slot writes it.
    fn set(&self, start: usize, end: usize) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.start.store(start, Ordering::SeqCst);
        self.end.store(end, Ordering::SeqCst);
        self.seq.fetch_add(1, Ordering::SeqCst);
    }

    /// The registered range, if one is registered and was read whole.
    fn range(&self) -> Option<(usize, usize)> {
        let before = self.seq.load(Ordering::SeqCst);
        let start = self.start.load(Ordering::SeqCst);
        let end = self.end.load(Ordering::SeqCst);
        let after = self.seq.load(Ordering::SeqCst);
        (before.is_multiple_of(2) && before == after && start != 0).then_some((start, end))
    }

    fn release(&self) {
        self.unregister();
        self.hit.store(false, Ordering::SeqCst);
        self.busy.store(false, Ordering::SeqCst);
    }
}

static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The `SIGBUS` action before ours, called for faults that are not in a registered mapping.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Install the `SIGBUS` handler once per process; returns the page size.
fn install() -> io::Result<usize> {
    static INSTALLED: OnceLock<Result<usize, i32>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = usize::try_from(page).ok().filter(|p| p.is_power_of_two());
        let page = page.ok_or(libc::EINVAL)?;
        PAGE.store(page, Ordering::SeqCst);
        // SAFETY: all-zero is a valid `sigaction` (no handler, no flags, empty mask); both are
        // filled in by the calls below before they are used.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: reads the current action into a valid struct; the new action is null.
        if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) } != 0 {
            return Err(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL));
        }
        let _ = PREVIOUS.set(previous);
        ours.sa_sigaction = on_sigbus as *const () as usize;
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `ours.sa_mask` is a valid sigset_t to empty; `ours` is a complete action
        // whose handler has the SA_SIGINFO signature.
        let rc = unsafe {
            libc::sigemptyset(&mut ours.sa_mask);
            libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL));
        }
        Ok(page)
    });
    installed.map_err(io::Error::from_raw_os_error)
}

/// The `SIGBUS` handler. Async-signal-safe: atomics, `mmap` and `sigaction` only.
extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler; for SIGBUS,
    // `si_addr` is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::SeqCst);
    for slot in &TABLE {
        // A slot being changed is not the faulting thread's: its own mapping is registered
        // before it is read, and stays so until it is no longer read.
        let Some((start, end)) = slot.range() else {
            continue;
        };
        if addr < start || addr >= end {
            continue;
        }
        // The file ends before `addr`, so it ends before everything after it in this mapping
        // too: put zero pages over the rest of the mapping, once, and mark it.
        let from = addr & !(page - 1);
        // SAFETY: `from..end` lies inside a mapping this crate made and still owns (it is
        // registered until after it is unmapped); MAP_FIXED replaces exactly those pages
        // with private zero pages, which the faulting read then sees.
        let zeros = unsafe {
            libc::mmap(
                from as *mut c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeros != libc::MAP_FAILED {
            slot.hit.store(true, Ordering::SeqCst);
            return;
        }
        break;
    }
    // Not ours: what was there before, or the default action (returning re-runs the faulting
    // access, which then kills the process as it would have without this crate).
    let previous = PREVIOUS.get().copied();
    match previous {
        Some(p) if p.sa_sigaction != libc::SIG_DFL && p.sa_sigaction != libc::SIG_IGN => {
            if p.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: an SA_SIGINFO handler installed by someone else has this signature.
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                    unsafe { std::mem::transmute(p.sa_sigaction) };
                handler(signal, info, context);
            } else {
                // SAFETY: a handler without SA_SIGINFO has this signature.
                let handler: extern "C" fn(libc::c_int) =
                    unsafe { std::mem::transmute(p.sa_sigaction) };
                handler(signal);
            }
        }
        _ => {
            // SAFETY: all-zero with SIG_DFL (0) is the default action; sigaction is
            // async-signal-safe.
            unsafe {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn file_with(data: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(data).unwrap();
        f.flush().unwrap();
        f
    }

    fn collect(file: &File, start: u64, end: u64, window: usize) -> (Vec<u8>, Outcome) {
        let mut out = Vec::new();
        let outcome = read_mapped(file, start, end, window, |b| out.extend_from_slice(b));
        (out, outcome)
    }

    #[test]
    fn hands_on_every_byte_of_the_range_in_order() {
        let data = pattern((3 << 20) + 123);
        let tmp = file_with(&data);
        let file = File::open(tmp.path()).unwrap();
        let len = data.len() as u64;
        for (start, end, window) in [
            (0, len, 1 << 20),
            (4097, len - 5, 1 << 20),
            (1, 2, 1 << 20),
            (0, len, 1),
            (len - 1, len, 8 << 20),
            ((1 << 20) - 1, (1 << 20) + 1, 1 << 20),
        ] {
            let (got, outcome) = collect(&file, start, end, window);
            assert!(matches!(outcome, Outcome::Done), "{outcome:?}");
            assert!(
                got == data[start as usize..end as usize],
                "{start}..{end} / {window}"
            );
        }
        let (got, outcome) = collect(&file, 5, 5, 1 << 20);
        assert!(matches!(outcome, Outcome::Done) && got.is_empty());
    }

    #[test]
    fn a_file_shorter_than_the_range_is_reported_before_mapping() {
        let tmp = file_with(&pattern(10_000));
        let file = File::open(tmp.path()).unwrap();
        let (_, outcome) = collect(&file, 0, 20_000, 1 << 20);
        assert!(
            matches!(outcome, Outcome::Truncated { len: 10_000 }),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_file_truncated_while_mapped_is_reported_and_the_process_lives() {
        let data = pattern(2 << 20);
        let tmp = file_with(&data);
        let file = File::open(tmp.path()).unwrap();
        let mut seen = Vec::new();
        let outcome = read_mapped_inner(
            &file,
            0,
            data.len() as u64,
            4 << 20,
            &mut |b| seen.extend_from_slice(b),
            &mut || tmp.as_file().set_len(8192).unwrap(),
        );
        assert!(
            matches!(outcome, Outcome::Truncated { len: 8192 }),
            "{outcome:?}"
        );
        // What was there is as it was; where the file ended, the handler put zeros.
        assert_eq!(seen.len(), data.len());
        assert!(seen[..8192] == data[..8192]);
        assert!(seen[8192..].iter().all(|&b| b == 0));
    }

    #[test]
    fn truncation_on_many_threads_at_once_is_reported_to_each() {
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..60 {
                        let tmp = file_with(&pattern(1 << 20));
                        let file = File::open(tmp.path()).unwrap();
                        let outcome = read_mapped_inner(
                            &file,
                            0,
                            1 << 20,
                            1 << 20,
                            &mut |b| {
                                std::hint::black_box(b.iter().map(|&x| x as u64).sum::<u64>());
                            },
                            &mut || tmp.as_file().set_len(0).unwrap(),
                        );
                        assert!(
                            matches!(outcome, Outcome::Truncated { len: 0 }),
                            "{outcome:?}"
                        );
                    }
                });
            }
        });
        assert!(TABLE.iter().all(|s| !s.busy.load(Ordering::SeqCst)));
    }

    const CHILD: &str = "VOUCH_MMAP_FOREIGN_SIGBUS_CHILD";

    /// Run by `a_sigbus_elsewhere_still_kills` in a child process; does nothing otherwise.
    #[test]
    fn foreign_sigbus_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let tmp = file_with(&pattern(1 << 20));
        let file = File::open(tmp.path()).unwrap();
        let (_, outcome) = collect(&file, 0, 1 << 20, 1 << 20); // installs the handler
        assert!(matches!(outcome, Outcome::Done));
        // A mapping this crate does not know of, then a truncation under it.
        // SAFETY: a fresh read-only mapping of an open file, checked below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                1 << 20,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED);
        tmp.as_file().set_len(0).unwrap();
        // SAFETY: inside the mapping; the access is meant to raise SIGBUS.
        let byte = unsafe { std::ptr::read_volatile(addr.cast::<u8>().add(1 << 19)) };
        println!("still alive, read {byte}");
    }

    #[test]
    fn a_sigbus_elsewhere_still_kills() {
        use std::os::unix::process::ExitStatusExt;
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tests::foreign_sigbus_child", "--nocapture"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGBUS),
            "{:?}: {stdout}",
            out.status
        );
        assert!(!stdout.contains("still alive"), "{stdout}");
    }
}
