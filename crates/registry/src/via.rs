//! Via-names: Elixir's `{:via, Registry, {registry, key}}` and `{:via, Registry, {registry,
//! key, value}}` (S70), as an [`arbor_core::Naming`] for `StartOpts::name`.
//!
//! Core claims the name with `register(new_pid)` from the starter's thread before the new
//! server's `init` runs, so a second start under a taken name returns
//! `StartError::AlreadyStarted(holder)` and never runs its `init` (S7). Core releases it with
//! `unregister(pid)` when the process exits, before its links and monitors are told; the
//! registry's own exit hook on the pid would release it then too.

use crate::table::{Key, Table, Value};
use crate::RegisterError;
use arbor_core::{NameError, Naming, Pid};
use std::fmt;
use std::sync::Arc;

/// A name in a registry, to start a server under:
/// `StartOpts::new().name(registry.via(key))`. Made by [`Registry::via`](crate::Registry::via)
/// and [`Registry::via_with_value`](crate::Registry::via_with_value).
pub struct Via<K, V = ()> {
    table: Arc<Table<K, V>>,
    key: K,
    value: V,
}

impl<K, V> Via<K, V> {
    pub(crate) fn new(table: Arc<Table<K, V>>, key: K, value: V) -> Self {
        Via { table, key, value }
    }

    /// The key this name registers.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The value stored with the key.
    pub fn value(&self) -> &V {
        &self.value
    }
}

impl<K: Key + fmt::Debug, V: Value> Naming for Via<K, V> {
    /// Claims the key for the new server. A taken key is `Taken(holder)` (S7, S70): the start
    /// returns `AlreadyStarted(holder)`. A registry that is not running is `Unavailable`:
    /// the start returns `NameUnavailable`, and the server never runs.
    fn register(&self, pid: Pid) -> Result<(), NameError> {
        match self.table.register(pid, self.key.clone(), self.value.clone()) {
            Ok(()) => Ok(()),
            Err(RegisterError::AlreadyRegistered(holder)) => Err(NameError::Taken(holder)),
            Err(e) => Err(NameError::Unavailable(format!("{}: {e}", self.describe()))),
        }
    }

    fn unregister(&self, pid: Pid) {
        self.table.unregister(pid, &self.key)
    }

    fn whereis(&self) -> Option<Pid> {
        self.table.whereis(&self.key)
    }

    fn describe(&self) -> String {
        match self.table.name() {
            Some(name) => format!("{{:via, Registry, {{{name}, {:?}}}}}", self.key),
            None => format!("{{:via, Registry, {:?}}}", self.key),
        }
    }
}

impl<K: Clone, V: Clone> Clone for Via<K, V> {
    fn clone(&self) -> Self {
        Via {
            table: Arc::clone(&self.table),
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }
}

impl<K: fmt::Debug, V> fmt::Debug for Via<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Via")
            .field("registry", &self.table.name())
            .field("key", &self.key)
            .finish()
    }
}
