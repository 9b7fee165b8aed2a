//! The directory of named registries: name -> (registry process, its table), global to the OS
//! process, so that [`Registry::lookup_registry`](crate::Registry::lookup_registry) finds a
//! registry by name (Elixir's registry name, S63).
//!
//! Invariant: a name is listed exactly while the registry process that claimed it runs. It is
//! claimed when that process's table opens (before its `init`) and released when the table
//! closes (at its exit, before its links and monitors are told), both under the table's
//! process lock; the directory lock is taken inside it and never the other way round.

use arbor_core::Pid;
use parking_lot::Mutex;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// A listed registry: its process and its table, type-erased.
struct Listed {
    pid: Pid,
    table: Arc<dyn Any + Send + Sync>,
}

static DIRECTORY: LazyLock<Mutex<HashMap<Arc<str>, Listed>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Lists `table` under `name` for the registry process `pid`; `Err(holder)` if taken.
pub(crate) fn claim(name: &Arc<str>, pid: Pid, table: Arc<dyn Any + Send + Sync>) -> Result<(), Pid> {
    let mut dir = DIRECTORY.lock();
    if let Some(listed) = dir.get(name) {
        return Err(listed.pid);
    }
    dir.insert(Arc::clone(name), Listed { pid, table });
    Ok(())
}

/// Removes `name` if the registry process `pid` holds it.
pub(crate) fn release(name: &str, pid: Pid) {
    let removed = {
        let mut dir = DIRECTORY.lock();
        match dir.get(name) {
            Some(listed) if listed.pid == pid => dir.remove(name),
            _ => None,
        }
    };
    drop(removed);
}

/// The table listed under `name` and its process.
pub(crate) fn find(name: &str) -> Option<(Pid, Arc<dyn Any + Send + Sync>)> {
    DIRECTORY
        .lock()
        .get(name)
        .map(|listed| (listed.pid, Arc::clone(&listed.table)))
}
