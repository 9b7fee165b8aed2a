//! The watcher thread: checks, while chaos runs, that names never point at the dead beyond
//! a bound and that permanent children come back.
//!
//! Invariant: a name seen pointing at a dead pid is timed from the first sighting; only a
//! sighting of the *same* (name, pid) pair past the bound is a violation, once per pair.

use crate::ledger::Kind;
use crate::load::Load;
use crate::tree::{dyn_sup_names, static_sup_names};
use arbor::Pid;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a name may point at a dead process (names are released before anyone learns of
/// the exit, so this only covers the instant between the two), not counting the time the
/// host kept the soak's threads from running: a name is stale past the bound only if it
/// stays so for longer than the bound plus the longest CPU wait of any of the soak's
/// threads over that time (the exiting thread is one of them; on a 2-core machine shared by
/// builds, a thread preempted between marking a process dead and releasing its name was
/// seen to hold the name 101 ms). A name left behind for good still fails: its age grows
/// without bound, the waits do not.
pub(crate) const STALE_NAME_BOUND: Duration = Duration::from_millis(100);
/// How long a permanent static child may take to come back, restarts of its supervisors
/// included.
pub(crate) const COME_BACK_BOUND: Duration = Duration::from_secs(5);

/// Runs until the load stops.
pub(crate) fn watch(load: Arc<Load>) {
    let tree = &load.tree;
    let names = &tree.shared.names;
    let ledger = &tree.shared.ledger;
    let mut keys: Vec<String> = tree.demand_keys.clone();
    keys.extend(tree.static_keys.iter().map(|(k, _)| k.clone()));
    keys.extend(dyn_sup_names());
    keys.extend(static_sup_names());
    let mut dead_since: HashMap<String, Sighting> = HashMap::new();
    while !load.stop.load(std::sync::atomic::Ordering::Relaxed) {
        for key in &keys {
            match names.whereis(key.as_str()) {
                Some(pid) if !arbor::is_alive(pid) => {
                    let entry = dead_since.entry(key.clone()).or_insert_with(|| Sighting::new(pid));
                    if entry.pid != pid {
                        *entry = Sighting::new(pid);
                    }
                    let age = entry.since.elapsed();
                    if !entry.reported && age > STALE_NAME_BOUND {
                        let queued = crate::sys::max_queued_since(&entry.queued);
                        if age > STALE_NAME_BOUND + queued {
                            entry.reported = true;
                            ledger.violation(Kind::StaleName, || {
                                format!("{key} -> dead {pid} for {age:?} (threads waited at most {queued:?} for a CPU)")
                            });
                        } else if !entry.explained {
                            entry.explained = true;
                            ledger.count("stale names explained by waiting for a CPU");
                        }
                    }
                }
                _ => {
                    dead_since.remove(key);
                }
            }
        }
        check_downed(&load, false);
        ledger.count("watcher sweeps");
        // Pacing of the sweeps, not a synchronisation.
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A name first seen pointing at a dead process.
struct Sighting {
    pid: Pid,
    since: Instant,
    /// Each thread's CPU wait at the first sighting (`sys::threads_queued_ns`).
    queued: HashMap<u64, u64>,
    reported: bool,
    explained: bool,
}

impl Sighting {
    fn new(pid: Pid) -> Sighting {
        Sighting {
            pid,
            since: Instant::now(),
            queued: crate::sys::threads_queued_ns(),
            reported: false,
            explained: false,
        }
    }
}

/// Resolves the permanent children chaos took down that are back; reports those past the
/// bound (all still missing, if `final_check`).
pub(crate) fn check_downed(load: &Load, final_check: bool) {
    let names = &load.tree.shared.names;
    let ledger = &load.tree.shared.ledger;
    load.downed.lock().retain(|(key, old, when)| {
        let back = names
            .whereis(key.as_str())
            .is_some_and(|p| p != *old && arbor::is_alive(p));
        if back {
            ledger.count("permanent children seen back");
            return false;
        }
        if final_check || when.elapsed() > COME_BACK_BOUND {
            let age = when.elapsed();
            ledger.violation(Kind::PermanentNotBack, || {
                format!("{key} (was {old}) not back after {age:?}")
            });
            return false;
        }
        true
    });
}
