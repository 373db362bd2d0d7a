//! Asking the kernel to run a thread promptly when it wakes: a short time slice.
//!
//! Every acknowledged message waits for the store's writer (`store::writer`), one thread that
//! sleeps several times a batch (for the next job, the spacing between batches, `fdatasync`).
//! Under load each wake-up used to queue behind the busy connection threads: in 5 s of
//! `concierge load` the writer ran 1,239 ms and waited 1,290 ms ready to run (BENCHMARKS.md, SMS
//! webhook step 65), and everyone's answer waited with it.
//!
//! Linux's fair scheduler (EEVDF, from 6.6) picks the runnable thread with the earliest virtual
//! deadline, which is its eligible time plus its slice, and since 6.12 a thread may ask for its
//! own slice (`sched_setattr` with `sched_runtime`, 0.1 to 100 ms, no privilege needed): a
//! shorter slice means an earlier deadline, so the thread preempts a running one when it wakes,
//! and runs for less before it is preempted in turn. It does not raise the thread's share of the
//! CPU (that is its weight, from nice): custom slices were added for latency-sensitive tasks
//! with short bursts of work, which the writer is. Older kernels report no slice and the
//! request is not made; other systems have no such call; either way nothing else changes.

/// The slice the store's writer asks for: the kernel's least (a batch's work is ~0.1-0.2 ms of
/// CPU under load, BENCHMARKS.md).
pub const PROMPT_SLICE_NS: u64 = 100_000;

/// What became of a request for a slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slice {
    /// The calling thread now has this slice, in nanoseconds (as the kernel reports it back).
    Set(u64),
    /// The kernel reports no slices for this thread (before Linux 6.12, or a real-time or idle
    /// policy, which is left alone) or the system has no such call.
    Unsupported,
    /// The kernel refused; the errno's text.
    Refused(&'static str),
}

/// Asks the kernel to give the calling thread a slice of `nanos` nanoseconds, keeping its
/// policy and nice value. Only threads under the normal or batch policy are changed. Threads
/// the calling thread starts afterwards inherit the slice, so a thread asks for itself.
pub fn request_slice(nanos: u64) -> Slice {
    #[cfg(target_os = "linux")]
    {
        linux::request_slice(nanos)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = nanos;
        Slice::Unsupported
    }
}

/// The calling thread's slice as the kernel reports it, in nanoseconds; `None` where the kernel
/// reports none (see [`Slice::Unsupported`]).
pub fn current_slice() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        linux::get()
            .ok()
            .filter(linux::is_fair)
            .map(|attr| attr.sched_runtime)
            .filter(|&ns| ns > 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::Slice;

    /// `SCHED_NORMAL` and `SCHED_BATCH`, the fair scheduler's policies that take a slice.
    pub(super) fn is_fair(attr: &libc::sched_attr) -> bool {
        let policy = attr.sched_policy as libc::c_int;
        policy == libc::SCHED_OTHER || policy == libc::SCHED_BATCH
    }

    fn size() -> u32 {
        // The structure's first version (48 bytes), which every kernel with the call accepts.
        std::mem::size_of::<libc::sched_attr>() as u32
    }

    pub(super) fn get() -> Result<libc::sched_attr, std::io::Error> {
        let mut attr = libc::sched_attr {
            size: size(),
            sched_policy: 0,
            sched_flags: 0,
            sched_nice: 0,
            sched_priority: 0,
            sched_runtime: 0,
            sched_deadline: 0,
            sched_period: 0,
        };
        // SAFETY: `attr` is a live, writable `sched_attr` and the size passed is its size, so
        // the kernel writes within it; pid 0 is the calling thread.
        let done = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0,
                &mut attr as *mut libc::sched_attr,
                size(),
                0,
            )
        };
        if done == 0 {
            Ok(attr)
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    pub(super) fn request_slice(nanos: u64) -> Slice {
        let Ok(mut attr) = get() else {
            return Slice::Unsupported;
        };
        // A kernel that knows slices reports the thread's, never 0, for a fair policy.
        if !is_fair(&attr) || attr.sched_runtime == 0 {
            return Slice::Unsupported;
        }
        // The policy and nice value as read, so that only the slice changes (the call sets
        // them all; SCHED_FLAG_KEEP_PARAMS would keep the slice too).
        attr.size = size();
        attr.sched_flags = 0;
        attr.sched_runtime = nanos;
        // SAFETY: `attr` is a live, initialised `sched_attr` whose `size` is its size; the
        // kernel only reads it; pid 0 is the calling thread.
        let done = unsafe {
            libc::syscall(
                libc::SYS_sched_setattr,
                0,
                &attr as *const libc::sched_attr,
                0,
            )
        };
        if done != 0 {
            let err = std::io::Error::last_os_error();
            return Slice::Refused(match err.raw_os_error() {
                Some(libc::EPERM) => "not permitted",
                Some(libc::EINVAL) => "invalid argument",
                Some(libc::E2BIG) => "structure too big",
                _ => "other error",
            });
        }
        match get() {
            Ok(now) if now.sched_runtime > 0 => Slice::Set(now.sched_runtime),
            _ => Slice::Unsupported,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a kernel that reports slices, a thread that asks for the least gets it (and the thread
    /// that started it keeps its own); where the kernel reports none, the request says so.
    #[test]
    fn a_thread_gets_the_slice_it_asks_for() {
        let (before, outcome, after) = std::thread::spawn(|| {
            let before = current_slice();
            let outcome = request_slice(PROMPT_SLICE_NS);
            (before, outcome, current_slice())
        })
        .join()
        .unwrap();
        match before {
            Some(default) => {
                assert_eq!(outcome, Slice::Set(PROMPT_SLICE_NS));
                assert_eq!(after, Some(PROMPT_SLICE_NS));
                assert!(default > PROMPT_SLICE_NS, "default slice {default} ns");
            }
            None => {
                assert_eq!(outcome, Slice::Unsupported);
                assert_eq!(after, None);
            }
        }
        // The test's own thread was not touched.
        assert_eq!(current_slice(), before);
    }

    /// Asking for a slice twice is harmless, and the thread's nice value is kept.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_nice_value_is_kept() {
        std::thread::spawn(|| {
            // SAFETY: gettid, setpriority and getpriority take and return integers only.
            unsafe {
                let tid = libc::gettid() as libc::id_t;
                assert_eq!(libc::setpriority(libc::PRIO_PROCESS, tid, 3), 0);
                let outcome = request_slice(200_000);
                assert!(!matches!(outcome, Slice::Refused(_)), "{outcome:?}");
                let outcome = request_slice(PROMPT_SLICE_NS);
                assert!(!matches!(outcome, Slice::Refused(_)), "{outcome:?}");
                assert_eq!(libc::getpriority(libc::PRIO_PROCESS, tid), 3);
            }
        })
        .join()
        .unwrap();
    }
}
