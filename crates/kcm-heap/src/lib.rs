//! # kcm-heap
//!
//! One job: say how many bytes of heap the process holds — what the allocator has
//! handed out and not had back — for the `kcm_process_heap_bytes` gauge of
//! `/metrics`.
//!
//! Why not the resident set size: freed memory stays resident. glibc keeps the pages
//! of its per-thread arenas for reuse, so RSS after a burst of connections stays up by
//! 10–30 MiB and creeps up by a few MiB as more arenas are touched, with nothing
//! leaked. The allocator's own count of live bytes falls back when the burst's
//! allocations are freed, so a leak is a number that does not come back down.
//!
//! Only glibc keeps this count in a form a process can ask for (`mallinfo2`); on other
//! targets [`in_use`] is `None` and the gauge is not shown.
#![warn(missing_docs)]

/// Bytes of heap in use by the process: live allocations from the heap arenas plus
/// those the allocator mapped on their own (large ones). `None` where the C library
/// cannot say.
///
/// The allocator walks each arena under its lock to count: cheap for a scrape of
/// `/metrics`, not for a request path.
pub fn in_use() -> Option<u64> {
    glibc::in_use()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod glibc {
    pub(super) fn in_use() -> Option<u64> {
        // SAFETY: mallinfo2 takes no arguments, returns a struct by value and only
        // reads the allocator's state under the allocator's own locks; glibc has had it
        // since 2.33, and the libc crate declares it only for glibc targets.
        let info = unsafe { libc::mallinfo2() };
        // uordblks: bytes in use in the arenas; hblkhd: bytes in chunks mmapped alone.
        u64::try_from(info.uordblks.saturating_add(info.hblkhd)).ok()
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    pub(super) fn in_use() -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::in_use;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn counts_what_is_allocated_and_not_what_was_freed() {
        const BIG: usize = 64 << 20;
        let before = in_use().expect("glibc counts its heap");
        let block = vec![1u8; BIG];
        let during = in_use().unwrap();
        assert!(during >= before + BIG as u64, "{before} -> {during}");
        drop(std::hint::black_box(block));
        let after = in_use().unwrap();
        assert!(after < during - (BIG as u64) / 2, "{during} -> {after}");
    }
}
