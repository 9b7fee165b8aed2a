//! The partitioned table: keys to `(pid, value)`, and each pid's keys.
//!
//! Two sets of shards, each shard a lock over a `HashMap`, padded to its own cache lines:
//! - **key shards** (`RwLock<HashMap<K, Entry<V>>>`), chosen by the key's hash: who holds a key.
//! - **owner shards** (`Mutex<HashMap<Pid, Owner<K>>>`), chosen by the pid's hash: which keys a
//!   pid holds, and the fact that this table has an exit hook on that pid.
//!
//! Invariants:
//! - An entry `key -> pid` exists in a key shard only while `pid` has an owner record here that
//!   lists `key`, or while `pid`'s exit hook is releasing it. Both are written under the key
//!   shard's lock, so a reader sees either both or neither.
//! - An owner record for `pid` exists only if this table's exit hook is installed on `pid` and
//!   has not run yet: one hook per (table, pid), installed with the first key (see
//!   `register`). When the hook runs it removes the record, then each key still held by `pid`.
//!   So once the hook has run, no key names `pid`, and the hook runs before `pid`'s links and
//!   monitors are told (core's promise for `RuntimeHandle::on_exit`).
//! - Lock order: a key shard, then an owner shard, then (inside `RuntimeHandle::on_exit` and
//!   `arbor_core::is_alive`) core's own locks, which core never holds while it runs our code.
//!   The exit hook and `close` hold one shard lock at a time. No user code (listeners, `Drop` of
//!   values, `update_value`'s function) runs under a shard lock.
//! - `open` is true only while the registry's process runs. It is read under a key shard's
//!   lock and cleared before `close` takes each shard's lock, so a registration either lands
//!   before `close` empties its shard or sees the table closed.

use crate::event::{emit, Listener, RegistryEvent};
use crate::RegisterError;
use arbor_core::{ExitReason, HookRef, Pid, RuntimeHandle};
use parking_lot::{Mutex, RwLock};
use std::borrow::Borrow;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

/// Bounds every key type meets.
pub(crate) trait Key: Eq + Hash + Clone + Send + Sync + 'static {}
impl<T: Eq + Hash + Clone + Send + Sync + 'static> Key for T {}

/// Bounds every value type meets.
pub(crate) trait Value: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Value for T {}

/// Keeps each shard's lock on cache lines of its own, so that threads working on different
/// shards do not slow each other down through false sharing.
#[repr(align(128))]
struct Padded<T>(T);

/// Who holds a key, and the value stored with it.
struct Entry<V> {
    pid: Pid,
    value: V,
}

/// What the table knows of one pid that holds (or held) keys: the keys it holds now. Its
/// presence means this table's exit hook is installed on the pid.
struct Owner<K> {
    /// Hashed with fixed keys (std's `DefaultHasher`), not a per-set random state: the
    /// order of the `Unregister` events of an exit is then the same in every run, which a
    /// deterministic runtime's trace needs (`arbor_core::sim`). The keys are one process's
    /// own, so a flooding attack on this set would be a process attacking itself.
    keys: OwnerKeys<K>,
    /// This table's exit hook on the pid: removed with the record when the pid's last key
    /// goes, so that a long-lived process does not collect one hook per registry (or per
    /// restart of one) that it ever registered with.
    hook: HookRef,
}

type OwnerKeys<K> = HashSet<K, std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>>;

/// Removes `pid`'s owner record and its exit hook once it holds no key. Called with the
/// owner shard locked (as `install_hook` is), so the hook cannot be installed and removed
/// out of order.
fn drop_owner_if_empty<K>(owners: &mut HashMap<Pid, Owner<K>>, pid: Pid) {
    if owners.get(&pid).is_some_and(|o| o.keys.is_empty()) {
        if let Some(owner) = owners.remove(&pid) {
            if let Some(rt) = RuntimeHandle::of(pid) {
                rt.remove_exit_hook(pid, owner.hook);
            }
        }
    }
}

/// One key shard: who holds each key of this partition.
type KeyShard<K, V> = Padded<RwLock<HashMap<K, Entry<V>>>>;

/// One owner shard: the keys each pid of this partition holds.
type OwnerShard<K> = Padded<Mutex<HashMap<Pid, Owner<K>>>>;

/// A registry's shared memory: see the module docs for its invariants.
pub(crate) struct Table<K, V> {
    hasher: RandomState,
    keys: Box<[KeyShard<K, V>]>,
    owners: Box<[OwnerShard<K>]>,
    /// True while the registry's process runs.
    open: AtomicBool,
    /// The registry's running process, if any. Held while the table opens or closes.
    process: Mutex<Option<Pid>>,
    name: Option<Arc<str>>,
    listeners: Vec<Listener<K, V>>,
}

impl<K, V> Table<K, V> {
    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    pub(crate) fn partitions(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn process(&self) -> Option<Pid> {
        *self.process.lock()
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }
}

impl<K: Key, V: Value> Table<K, V> {
    /// An empty, closed table.
    pub(crate) fn new(name: Option<Arc<str>>, partitions: usize, listeners: Vec<Listener<K, V>>) -> Self {
        let n = partitions.max(1);
        Table {
            hasher: RandomState::new(),
            keys: (0..n).map(|_| Padded(RwLock::new(HashMap::new()))).collect(),
            owners: (0..n).map(|_| Padded(Mutex::new(HashMap::new()))).collect(),
            open: AtomicBool::new(false),
            process: Mutex::new(None),
            name,
            listeners,
        }
    }

    fn key_shard<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<HashMap<K, Entry<V>>> {
        let i = (self.hasher.hash_one(key) % self.keys.len() as u64) as usize;
        &self.keys[i].0
    }

    fn owner_shard(&self, pid: Pid) -> &Mutex<HashMap<Pid, Owner<K>>> {
        let i = (self.hasher.hash_one(pid) % self.owners.len() as u64) as usize;
        &self.owners[i].0
    }

    /// Claims `key` for `pid` (S65, S69). Takes the key over if its holder is no longer alive
    /// but its exit hook has not run yet.
    pub(crate) fn register(self: &Arc<Self>, pid: Pid, key: K, value: V) -> Result<(), RegisterError> {
        let mut events = Vec::new();
        {
            let mut map = self.key_shard(&key).write();
            if !self.is_open() {
                return Err(RegisterError::RegistryDown);
            }
            let displaced = match map.get(&key) {
                Some(e) if e.pid == pid || arbor_core::is_alive(e.pid) => {
                    return Err(RegisterError::AlreadyRegistered(e.pid));
                }
                Some(e) => Some(e.pid),
                None => None,
            };
            {
                let mut owners = self.owner_shard(pid).lock();
                let owner = match owners.entry(pid) {
                    MapEntry::Occupied(o) => o.into_mut(),
                    MapEntry::Vacant(v) => {
                        let hook = self.install_hook(pid)?;
                        v.insert(Owner {
                            keys: OwnerKeys::default(),
                            hook,
                        })
                    }
                };
                owner.keys.insert(key.clone());
            }
            if let Some(old) = displaced {
                let mut owners = self.owner_shard(old).lock();
                if let Some(owner) = owners.get_mut(&old) {
                    owner.keys.remove(&key);
                }
                drop_owner_if_empty(&mut owners, old);
                drop(owners);
                if !self.listeners.is_empty() {
                    events.push(RegistryEvent::Unregister {
                        key: key.clone(),
                        pid: old,
                    });
                }
            }
            if !self.listeners.is_empty() {
                events.push(RegistryEvent::Register {
                    key: key.clone(),
                    pid,
                    value: value.clone(),
                });
            }
            // The displaced entry (its value) is dropped after the lock is released.
            let old = map.insert(key, Entry { pid, value });
            drop(map);
            drop(old);
        }
        emit(&self.listeners, &events);
        Ok(())
    }

    /// Installs this table's exit hook on `pid`. Called with `pid`'s owner shard locked, so the
    /// hook (which takes that lock first) cannot run before the owner record is in place.
    fn install_hook(self: &Arc<Self>, pid: Pid) -> Result<HookRef, RegisterError> {
        let rt = RuntimeHandle::of(pid).ok_or(RegisterError::NotAlive)?;
        let table: Weak<Self> = Arc::downgrade(self);
        rt.on_exit(pid, move |pid: Pid, _reason: &ExitReason| {
            if let Some(table) = table.upgrade() {
                table.release_all(pid);
            }
        })
        .map_err(|_| RegisterError::NotAlive)
    }

    /// Releases every key `pid` holds: its exit hook.
    fn release_all(&self, pid: Pid) {
        let Some(owner) = self.owner_shard(pid).lock().remove(&pid) else {
            return;
        };
        let mut events = Vec::new();
        let mut dropped = Vec::new();
        for key in owner.keys {
            let mut map = self.key_shard(&key).write();
            if map.get(&key).is_some_and(|e| e.pid == pid) {
                if let Some(entry) = map.remove(&key) {
                    dropped.push(entry);
                }
                drop(map);
                if !self.listeners.is_empty() {
                    events.push(RegistryEvent::Unregister { key, pid });
                }
            }
        }
        drop(dropped);
        emit(&self.listeners, &events);
    }

    /// Releases `key` if `pid` holds it; leaves anyone else's entry alone (S67).
    pub(crate) fn unregister<Q>(&self, pid: Pid, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let removed = {
            let mut map = self.key_shard(key).write();
            if !map.get(key).is_some_and(|e| e.pid == pid) {
                return;
            }
            let mut owners = self.owner_shard(pid).lock();
            if let Some(owner) = owners.get_mut(&pid) {
                owner.keys.remove(key);
            }
            drop_owner_if_empty(&mut owners, pid);
            drop(owners);
            map.remove_entry(key)
        };
        if let Some((key, entry)) = removed {
            drop(entry);
            if !self.listeners.is_empty() {
                emit(&self.listeners, &[RegistryEvent::Unregister { key, pid }]);
            }
        }
    }

    /// The holder of `key` and its value.
    pub(crate) fn lookup<Q>(&self, key: &Q) -> Option<(Pid, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.key_shard(key).read().get(key).map(|e| (e.pid, e.value.clone()))
    }

    /// The holder of `key`.
    pub(crate) fn whereis<Q>(&self, key: &Q) -> Option<Pid>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.key_shard(key).read().get(key).map(|e| e.pid)
    }

    /// The keys `pid` holds, in no particular order.
    pub(crate) fn keys(&self, pid: Pid) -> Vec<K> {
        self.owner_shard(pid)
            .lock()
            .get(&pid)
            .map(|o| o.keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The value `pid` stored under `key`, if `pid` holds it.
    pub(crate) fn value<Q>(&self, key: &Q, pid: Pid) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.key_shard(key)
            .read()
            .get(key)
            .filter(|e| e.pid == pid)
            .map(|e| e.value.clone())
    }

    /// Number of keys held.
    pub(crate) fn count(&self) -> usize {
        self.keys.iter().map(|s| s.0.read().len()).sum()
    }

    /// Up to `limit` entries `(key, pid, value)`, partition by partition, each partition read
    /// under its own lock.
    pub(crate) fn entries(&self, limit: usize) -> Vec<(K, Pid, V)> {
        let mut out = Vec::new();
        for shard in self.keys.iter() {
            if out.len() >= limit {
                break;
            }
            let shard = shard.0.read();
            let room = limit - out.len();
            out.extend(
                shard
                    .iter()
                    .take(room)
                    .map(|(k, e)| (k.clone(), e.pid, e.value.clone())),
            );
        }
        out
    }

    /// Number of keys held in each partition.
    pub(crate) fn partition_counts(&self) -> Vec<usize> {
        self.keys.iter().map(|s| s.0.read().len()).collect()
    }

    /// The value `pid` holds under `key`, if it holds it; else who holds it.
    pub(crate) fn owned_value<Q>(&self, key: &Q, pid: Pid) -> Result<V, Option<Pid>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.key_shard(key).read().get(key) {
            Some(e) if e.pid == pid => Ok(e.value.clone()),
            Some(e) => Err(Some(e.pid)),
            None => Err(None),
        }
    }

    /// Stores `value` under `key` if `pid` still holds it; hands the value back otherwise.
    pub(crate) fn set_value<Q>(&self, key: &Q, pid: Pid, value: V) -> Result<(), (V, Option<Pid>)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.key_shard(key).write();
        match map.get_mut(key) {
            Some(e) if e.pid == pid => {
                let old = std::mem::replace(&mut e.value, value);
                drop(map);
                drop(old);
                Ok(())
            }
            Some(e) => Err((value, Some(e.pid))),
            None => Err((value, None)),
        }
    }

    /// Opens the table for the registry process `pid`; `Err(holder)` if another process runs
    /// it. `claim` runs under the process lock before the table opens (the directory's claim).
    pub(crate) fn open(&self, pid: Pid, claim: impl FnOnce() -> Result<(), Pid>) -> Result<(), Pid> {
        let mut process = self.process.lock();
        if let Some(holder) = *process {
            return Err(holder);
        }
        claim()?;
        *process = Some(pid);
        self.open.store(true, Ordering::Release);
        Ok(())
    }

    /// Closes and empties the table if `pid` is its process: the registry exited. Returns
    /// whether it did. `release` runs under the process lock after the table is empty.
    pub(crate) fn close(&self, pid: Pid, release: impl FnOnce()) -> bool {
        let mut process = self.process.lock();
        if *process != Some(pid) {
            return false;
        }
        self.open.store(false, Ordering::Release);
        let mut dropped = Vec::with_capacity(self.keys.len());
        for shard in self.keys.iter() {
            dropped.push(std::mem::take(&mut *shard.0.write()));
        }
        let mut owners = Vec::with_capacity(self.owners.len());
        for shard in self.owners.iter() {
            owners.push(std::mem::take(&mut *shard.0.lock()));
        }
        *process = None;
        release();
        drop(process);
        drop(dropped);
        // The hooks on processes that outlive this registry go with it.
        for (pid, owner) in owners.into_iter().flatten() {
            if let Some(rt) = RuntimeHandle::of(pid) {
                rt.remove_exit_hook(pid, owner.hook);
            }
        }
        true
    }
}
