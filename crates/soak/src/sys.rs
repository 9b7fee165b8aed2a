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

/// Time each thread of this process has spent runnable but waiting for a CPU, in ns, by
/// thread id (`/proc/self/task/*/schedstat`).
pub(crate) fn threads_queued_ns() -> std::collections::HashMap<u64, u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in dir.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<u64>().ok()) else {
            continue;
        };
        let queued = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok());
        if let Some(q) = queued {
            out.insert(tid, q);
        }
    }
    out
}

/// The longest time any one thread of this process waited for a CPU since `before` was
/// read with [`threads_queued_ns`] (a thread started since counts from zero).
pub(crate) fn max_queued_since(before: &std::collections::HashMap<u64, u64>) -> std::time::Duration {
    let now = threads_queued_ns();
    let most = now
        .iter()
        .map(|(tid, q)| q.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .max()
        .unwrap_or(0);
    std::time::Duration::from_nanos(most)
}
