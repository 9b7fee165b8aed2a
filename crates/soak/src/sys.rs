//! What the operating system says about this process: OS threads and resident memory, read
//! from `/proc/self/status` (Linux). Elsewhere both read as `None` and the checks that need
//! them are skipped and said to be skipped.

/// The value of a `Key:   value` line of `/proc/self/status`, first number only.
fn status_field(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// OS threads of this process.
pub(crate) fn threads() -> Option<u64> {
    status_field("Threads:")
}

/// Resident set size, in KiB.
pub(crate) fn rss_kib() -> Option<u64> {
    status_field("VmRSS:")
}

/// Time this thread has spent runnable but waiting for a CPU (the second field of
/// `/proc/thread-self/schedstat`, in ns): how long the host kept it from running.
pub(crate) fn queued_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}
