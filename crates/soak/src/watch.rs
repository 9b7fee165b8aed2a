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
/// the exit, so this only covers the instant between the two).
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
    let mut dead_since: HashMap<String, (Pid, Instant, bool)> = HashMap::new();
    while !load.stop.load(std::sync::atomic::Ordering::Relaxed) {
        for key in &keys {
            match names.whereis(key.as_str()) {
                Some(pid) if !arbor::is_alive(pid) => {
                    let entry = dead_since.entry(key.clone()).or_insert((pid, Instant::now(), false));
                    if entry.0 != pid {
                        *entry = (pid, Instant::now(), false);
                    }
                    let age = entry.1.elapsed();
                    if !entry.2 && age > STALE_NAME_BOUND {
                        entry.2 = true;
                        ledger.violation(Kind::StaleName, || format!("{key} -> dead {pid} for {age:?}"));
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
