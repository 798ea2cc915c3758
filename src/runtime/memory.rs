//! How the daemon's memory is mapped.
//!
//! mimalloc asks the kernel for transparent huge pages on its arenas
//! (`MADV_HUGEPAGE`). The first touch of such a region zeroes 2 MiB at
//! once, on whichever thread allocates: when the daemon goes from idle to
//! thousands of sends a second, the core thread spent 40% of its first
//! 60 ms in the kernel's `clear_page_erms` under `do_huge_pmd_anonymous_page`
//! (perf, lateness stage of `cargo bench --bench runtime`), and the sends
//! due then were up to 100–180 ms late. With 4 KiB pages the same stage's
//! p99 fell to ~11 ms and its peak RSS by ~45 MB (figures in the README).

/// Turns transparent huge pages off for this process (every later page
/// fault maps 4 KiB), so a burst after idle never waits for 2 MiB to be
/// zeroed. Best effort: where the kernel refuses, nothing changes but
/// latency, so the error is only returned for the caller to log.
pub fn small_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no
        // memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
