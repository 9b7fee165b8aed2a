//! The one door through which core reaches atomics, locks and threads.
//!
//! Under `cfg(loom)` every primitive is loom's, so the small protocols built on them
//! (mailbox push and schedule, worker park and unpark, the reply slot racing a timeout
//! and an exit) can be model-checked. Nothing else in core may import
//! `std::sync::atomic`, `parking_lot` or `std::thread` directly.
//!
//! Exempt, on purpose: `std::sync::Arc` (and `Weak`), whose counts protect no protocol of
//! ours; `std::sync::OnceLock` and `Once` (a process's name and exit reason, the pool's
//! stall hook, the timer thread's handle, the panic hook), each written once before it is
//! read by the protocol that publishes it; and `thread_local!`, which the pool declares
//! through loom's macro under `cfg(loom)`; and [`Serial`], a counter in a `static` (the
//! parts of core built under loom: mailbox, reply slot and reply handle, LIFO slot, sleep
//! list, pool, a process's bonds with the link, monitor and exit protocols). The rest of
//! the process layer (header, cell, table), the timers and the runtime are not built under
//! loom: their atomics and locks come from here all the same, so they can be.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::thread;

/// Locks of the parts that loom does not model (the process table, the runtime list, the
/// timer wheel: each behind one lock, with no protocol of its own to check), and a mutex
/// usable in a `static`. They are `parking_lot`'s; reached through here all the same, so
/// that this file lists every primitive core uses.
#[cfg(not(loom))]
pub(crate) use parking_lot::{Condvar, Mutex as PlainMutex, RwLock};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::thread;

/// A counter in a `static` that orders nothing (fresh monitor and hook references): std's
/// atomic, under loom too, since a loom atomic belongs to one execution of a model and
/// cannot live in a `static`. A model never races on what it counts (each reference is
/// only compared with others).
#[derive(Debug)]
pub(crate) struct Serial(std::sync::atomic::AtomicU64);

impl Serial {
    pub(crate) const fn new(first: u64) -> Self {
        Serial(std::sync::atomic::AtomicU64::new(first))
    }

    /// The next number of the sequence.
    #[inline]
    pub(crate) fn next(&self) -> u64 {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// A mutex with `parking_lot`'s non-poisoning interface, or loom's under `cfg(loom)`.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T> {
    #[cfg(not(loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex {
            #[cfg(not(loom))]
            inner: parking_lot::Mutex::new(value),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    /// True while someone holds the lock (a snapshot, for introspection only).
    #[cfg(not(loom))]
    pub(crate) fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.inner.lock()
        }
        #[cfg(loom)]
        {
            self.inner.lock().unwrap()
        }
    }
}

/// Parks the current thread until unparked or until `timeout` passes (loom: until unparked).
pub(crate) fn park_timeout(timeout: std::time::Duration) {
    #[cfg(not(loom))]
    {
        std::thread::park_timeout(timeout)
    }
    #[cfg(loom)]
    {
        let _ = timeout;
        loom::thread::park()
    }
}

/// True once the thread has finished (loom's handles cannot tell: never, so nothing is
/// pruned early; a model joins its threads at the end).
pub(crate) fn is_finished<T>(handle: &thread::JoinHandle<T>) -> bool {
    #[cfg(not(loom))]
    {
        handle.is_finished()
    }
    #[cfg(loom)]
    {
        let _ = handle;
        false
    }
}

/// A spin hint: a real spin loop hint, or a yield to loom's scheduler.
#[cfg(not(loom))]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// An `UnsafeCell` reached through a closure, as loom's is (so that loom can check every
/// access against the happens-before order).
#[derive(Debug)]
pub(crate) struct UnsafeCell<T> {
    #[cfg(not(loom))]
    inner: std::cell::UnsafeCell<T>,
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
}

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell {
            #[cfg(not(loom))]
            inner: std::cell::UnsafeCell::new(value),
            #[cfg(loom)]
            inner: loom::cell::UnsafeCell::new(value),
        }
    }

    /// Runs `f` with a pointer to the value; the caller upholds exclusive access.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(loom))]
        {
            f(self.inner.get())
        }
        #[cfg(loom)]
        {
            self.inner.with_mut(f)
        }
    }
}

/// Waiting a moment for another thread: a spin hint, or a yield to loom's scheduler.
pub(crate) fn spin_wait() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}
