//! The process table: a slab of live processes, indexed by the pid's slot index and
//! checked against its serial, so a stale pid never resolves to a newer process.

use super::Process;
use crate::sync::{AtomicU64, Ordering};
use crate::sync::{Condvar, PlainMutex as Mutex, RwLock};
use crate::Pid;
use slab::Slab;
use std::sync::Arc;

/// Serial numbers of processes: global to the program, never reused.
static SERIAL: AtomicU64 = AtomicU64::new(1);

struct Entry {
    serial: u64,
    process: Arc<dyn Process>,
}

/// Live processes of one runtime.
pub(crate) struct Table {
    rt: u32,
    slots: RwLock<Slab<Entry>>,
    /// Signalled when the table becomes empty.
    empty: (Mutex<()>, Condvar),
}

impl Table {
    pub(crate) fn new(rt: u32) -> Self {
        Table {
            rt,
            slots: RwLock::new(Slab::new()),
            empty: (Mutex::new(()), Condvar::new()),
        }
    }

    /// Allocates a pid and stores the process `make` builds for it.
    pub(crate) fn insert<P: Process>(&self, make: impl FnOnce(Pid) -> Arc<P>) -> Arc<P> {
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let mut slots = self.slots.write();
        let entry = slots.vacant_entry();
        let pid = Pid::new(self.rt, entry.key() as u32, serial);
        let process = make(pid);
        entry.insert(Entry {
            serial,
            process: process.clone(),
        });
        process
    }

    /// The live process named by `pid`.
    pub(crate) fn get(&self, pid: Pid) -> Option<Arc<dyn Process>> {
        if pid.rt() != self.rt || pid.is_pseudo() {
            return None;
        }
        let slots = self.slots.read();
        match slots.get(pid.index() as usize) {
            Some(e) if e.serial == pid.serial() => Some(Arc::clone(&e.process)),
            _ => None,
        }
    }

    /// Frees `pid`'s slot.
    pub(crate) fn remove(&self, pid: Pid) {
        let now_empty = {
            let mut slots = self.slots.write();
            let idx = pid.index() as usize;
            if matches!(slots.get(idx), Some(e) if e.serial == pid.serial()) {
                slots.remove(idx);
            }
            slots.is_empty()
        };
        if now_empty {
            let _g = self.empty.0.lock();
            self.empty.1.notify_all();
        }
    }

    /// Every live process, most recently started first.
    pub(crate) fn snapshot(&self) -> Vec<Arc<dyn Process>> {
        let slots = self.slots.read();
        let mut all: Vec<(u64, Arc<dyn Process>)> =
            slots.iter().map(|(_, e)| (e.serial, Arc::clone(&e.process))).collect();
        drop(slots);
        all.sort_by_key(|e| std::cmp::Reverse(e.0));
        all.into_iter().map(|(_, p)| p).collect()
    }

    /// Number of live processes.
    pub(crate) fn len(&self) -> usize {
        self.slots.read().len()
    }

    /// Waits until no process in the table can still make progress towards its exit:
    /// each has exited, and is either gone or held by a handler that has not returned (a
    /// stuck one). `deadline` `None` waits forever. True if settled.
    pub(crate) fn wait_settled(&self, deadline: Option<std::time::Instant>) -> bool {
        let settled = |t: &Self| t.snapshot().iter().all(|p| !p.header().is_alive() && p.is_running());
        let mut g = self.empty.0.lock();
        loop {
            if self.len() == 0 || settled(self) {
                return true;
            }
            // Woken when the table empties; otherwise look again shortly (processes
            // finishing their exit do not signal one by one).
            let mut wake = std::time::Instant::now() + std::time::Duration::from_millis(2);
            if let Some(d) = deadline {
                if std::time::Instant::now() >= d {
                    return self.len() == 0 || settled(self);
                }
                wake = wake.min(d);
            }
            let _ = self.empty.1.wait_until(&mut g, wake);
        }
    }
}
