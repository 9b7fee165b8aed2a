//! Options a registry is created with.

use crate::event::{Listener, RegistryEvent};
use std::fmt;
use std::sync::Arc;

/// Options for [`Registry::new`](crate::Registry::new), [`Registry::start`](crate::Registry::start)
/// and [`Registry::start_link`](crate::Registry::start_link): Elixir's `name:`, `partitions:` and
/// `listeners:`. Keys are always unique.
pub struct RegistryOpts<K, V = ()> {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) partitions: Option<usize>,
    pub(crate) listeners: Vec<Listener<K, V>>,
}

impl<K, V> RegistryOpts<K, V> {
    /// No name, the default number of partitions, no listeners.
    pub fn new() -> Self {
        RegistryOpts {
            name: None,
            partitions: None,
            listeners: Vec::new(),
        }
    }

    /// Options for a registry named `name`: shorthand for `RegistryOpts::new().name(name)`.
    pub fn named(name: impl Into<String>) -> Self {
        Self::new().name(name)
    }

    /// Names the registry, so that [`Registry::lookup_registry`](crate::Registry::lookup_registry)
    /// finds it while its process runs. Two running registries cannot share a name: the second
    /// start returns `StartError::AlreadyStarted(first_pid)` (S63). Names are global to the OS
    /// process (all runtimes share them).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into().into());
        self
    }

    /// The number of partitions (shards) of the table; at least 1. Default: twice the available
    /// cores, or 16 if that is unknown.
    pub fn partitions(mut self, n: usize) -> Self {
        self.partitions = Some(n.max(1));
        self
    }

    /// The name set with [`RegistryOpts::name`] (or [`RegistryOpts::named`]), if any.
    pub fn get_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The number of partitions set with [`RegistryOpts::partitions`], if any.
    pub fn get_partitions(&self) -> Option<usize> {
        self.partitions
    }

    /// Adds a listener, told of every register and unregister (S73). See
    /// [`RegistryEvent`] for when and where it runs.
    pub fn listener(mut self, f: impl Fn(&RegistryEvent<K, V>) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }
}

impl<K, V> Default for RegistryOpts<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Clone for RegistryOpts<K, V> {
    fn clone(&self) -> Self {
        RegistryOpts {
            name: self.name.clone(),
            partitions: self.partitions,
            listeners: self.listeners.clone(),
        }
    }
}

impl<K, V> fmt::Debug for RegistryOpts<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryOpts")
            .field("name", &self.name)
            .field("partitions", &self.partitions)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// The default number of partitions: twice the available cores, or 16.
pub(crate) fn default_partitions() -> usize {
    std::thread::available_parallelism().map(|n| 2 * n.get()).unwrap_or(16)
}
