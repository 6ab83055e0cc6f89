//! Process-wide settings each function applies once, first thing in `main`.

/// The largest allocation glibc's malloc serves from its heap; larger ones get their own mapping,
/// which `free` returns to the system at once.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 128 * 1024;

/// Keeps peak memory proportional to what is in use. glibc's malloc raises its mmap threshold
/// each time a large block is freed (up to 32 MiB), after which the large, short-lived buffers of
/// many concurrent S3 streams come from the heap and fragment it: a 100-record submit batch with
/// 1 MiB S3-sourced model files peaked at 41.6 MiB RSS with the sliding threshold and at 31.0 MiB
/// with it fixed at glibc's own default (tests/bench/BENCHMARKS.md, "Memory"). Other C libraries:
/// a warning. Answers whether the setting was applied.
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; glibc serialises it with its own locks.
    let applied = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) } == 1;
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let applied = false;
    if !applied {
        // Not fatal: only memory headroom depends on it. No subscriber is installed yet.
        eprintln!("{{\"level\":\"WARN\",\"message\":\"allocator tuning not applied (not glibc)\"}}");
    }
    applied
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_fixed_mmap_threshold() {
        assert!(super::tune_allocator());
    }
}
