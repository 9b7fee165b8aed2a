//! One-shot reply slots, and [`ReplyTo`], the handle a server answers a call through.
//!
//! A [`Slot`] is resolved exactly once: by the reply, by the server's death (its exit
//! reason), by the reply handle being dropped unanswered, or by the caller giving up at
//! its deadline. Whichever comes first wins; every later attempt is dropped. In
//! particular a reply that arrives after the caller gave up is dropped with the slot and
//! can never reach a later call, because every call has a slot of its own (S11).
//!
//! A slot has one waiter, of one of two kinds, fixed when it is made:
//! - a thread ([`Slot::new`], [`Slot::with_caller`]): the caller spins briefly, then
//!   parks; the resolver unparks it;
//! - a task ([`Slot::for_task`]): a future polls the slot ([`Slot::poll_take`]), which
//!   stores the task's [`Waker`] under the slot's lock while the slot is empty; the
//!   resolver takes that waker under the same lock and wakes it after releasing the lock.
//!   Because the waker is stored and taken under the lock that also guards the state, a
//!   resolution cannot slip between the future's "still empty" and its "waker stored":
//!   no lost wake-up.
//!
//! - a callback ([`Slot::with_callback`]): nobody waits; the resolution that wins takes
//!   the callback out under the slot's lock (so exactly one does) and runs it after
//!   releasing the lock, on the resolving thread, with the outcome. The slot then goes
//!   straight to `Closed`: there is nothing to take. A callback dropped without having run
//!   (its slot dropped unresolved, which no path of the runtime does) runs with `NoReply`,
//!   so the callback runs exactly once in every case.
//!
//! Modelled by loom in `tests/loom_reply.rs` (reply racing timeout and exit, for every
//! kind of waiter).

// Items are `pub` (in a private module) so that the loom models can reach them
// through `loom_api`; outside `cfg(loom)` they are crate-private in effect.
#![allow(unreachable_pub)]

use crate::error::CallError;
#[cfg(not(loom))]
use crate::sync::spin_hint;
use crate::sync::{park_timeout, thread, AtomicBool, Mutex, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

enum State<R> {
    /// Nobody has resolved the slot yet.
    Empty,
    /// Resolved, not yet taken by the caller.
    Full(Result<R, CallError>),
    /// The caller took the value, or gave up; later resolutions are dropped.
    Closed,
}

/// What a callback slot runs when it is resolved: the outcome, and the key of the call's
/// timeout timer if one was armed (for the callback to cancel).
pub type OnResolve<R> = Box<dyn FnOnce(Result<R, CallError>, Option<u64>) + Send>;

/// Who is told of the resolution, beside a waiting thread.
enum Waiting<R> {
    /// Nobody (a thread's slot, or a task's before its first poll).
    Nobody,
    /// The waker of the task that last polled the slot while it was empty.
    Task(Waker),
    /// A callback slot's callback, until the resolution takes it; and the key of the
    /// call's timeout timer, once armed.
    Callback(Callback<R>, Option<u64>),
}

/// A callback slot's callback. Dropped without having run (its slot dropped unresolved,
/// which no path of the runtime does), it runs with `NoReply`: exactly once in every case.
/// (The guard lives here rather than in a `Drop` of the slot, which every call's slot
/// would pay for.)
struct Callback<R>(Option<OnResolve<R>>);

impl<R> Drop for Callback<R> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            // A timer, if one was armed, holds the slot: it is not dropped before it.
            f(Err(CallError::NoReply), None);
        }
    }
}

/// What the slot's lock guards: the state, and who is told of the resolution.
struct Guarded<R> {
    state: State<R>,
    waiting: Waiting<R>,
}

/// A one-shot slot for one call's outcome.
pub struct Slot<R> {
    state: Mutex<Guarded<R>>,
    /// Set once the state leaves `Empty`: lets the caller spin without the lock.
    done: AtomicBool,
    /// The waiting thread; `None` for a slot awaited by a future (its waker is in `state`).
    waiter: Option<thread::Thread>,
    /// The calling process, for a call made from one (kept here rather than in the
    /// mailbox's envelope, which stays small).
    caller: Option<crate::Pid>,
}

/// What holds a call's slot: the slot itself, or a typed request's cell, which keeps the
/// request and its slot in one allocation (see `request.rs`).
pub trait ReplySlot<R>: Send + Sync + 'static {
    /// The slot.
    fn slot(&self) -> &Slot<R>;
}

impl<R: Send + 'static> ReplySlot<R> for Slot<R> {
    fn slot(&self) -> &Slot<R> {
        self
    }
}

/// Type-erased resolution with an error: how a dying server fails the calls it holds.
pub trait Abort: Send + Sync {
    /// Resolves the slot with `err` unless it is already resolved.
    fn abort(&self, err: CallError);
}

impl<R: Send> Abort for Slot<R> {
    fn abort(&self, err: CallError) {
        self.resolve(Err(err));
    }
}

/// Spins before parking: a reply from another worker often lands within this.
const SPIN_ROUNDS: u32 = 200;

/// Timeouts from this long on count from the end of the spin (see [`Slot::wait_for`]).
#[cfg(not(loom))]
pub const LATE_START: Duration = Duration::from_secs(1);

impl<R> Slot<R> {
    /// A slot whose waiter is the calling thread.
    pub fn new() -> Self {
        Self::with_caller(None)
    }

    /// A slot for a call from `caller` (a process), whose waiter is the calling thread.
    pub(crate) fn with_caller(caller: Option<crate::Pid>) -> Self {
        Slot {
            state: Mutex::new(Guarded {
                state: State::Empty,
                waiting: Waiting::Nobody,
            }),
            done: AtomicBool::new(false),
            waiter: Some(thread::current()),
            caller,
        }
    }

    /// A slot awaited by a future (through [`Slot::poll_take`]) rather than by a thread.
    pub fn for_task(caller: Option<crate::Pid>) -> Self {
        Slot {
            state: Mutex::new(Guarded {
                state: State::Empty,
                waiting: Waiting::Nobody,
            }),
            done: AtomicBool::new(false),
            waiter: None,
            caller,
        }
    }

    /// A slot whose resolution runs `on_resolve` (on the resolving thread) instead of
    /// waking a waiter: for a call whose reply goes to a callback.
    pub fn with_callback(caller: Option<crate::Pid>, on_resolve: OnResolve<R>) -> Self {
        Slot {
            state: Mutex::new(Guarded {
                state: State::Empty,
                waiting: Waiting::Callback(Callback(Some(on_resolve)), None),
            }),
            done: AtomicBool::new(false),
            waiter: None,
            caller,
        }
    }

    /// Records the key of a callback slot's timeout timer, for the callback to cancel it.
    /// Returns false if the slot is already resolved (the caller then cancels the timer
    /// itself) or is not a callback slot.
    pub fn set_timer(&self, key: u64) -> bool {
        let mut guard = self.state.lock();
        let g = &mut *guard;
        match (&g.state, &mut g.waiting) {
            (State::Empty, Waiting::Callback(_, timer)) => {
                *timer = Some(key);
                true
            }
            _ => false,
        }
    }

    /// The calling process, if the call came from one.
    pub(crate) fn caller(&self) -> Option<crate::Pid> {
        self.caller
    }

    /// Resolves the slot. Returns false (and drops `value`) if it was already resolved or
    /// abandoned.
    pub fn resolve(&self, value: Result<R, CallError>) -> bool {
        let mut g = self.state.lock();
        if !matches!(g.state, State::Empty) {
            drop(g);
            drop(value);
            return false;
        }
        match g.waiting {
            // A thread waits (or nobody yet): the common case, kept short.
            Waiting::Nobody => {
                g.state = State::Full(value);
                self.done.store(true, Ordering::Release);
                drop(g);
                if let Some(t) = &self.waiter {
                    t.unpark();
                }
                true
            }
            Waiting::Callback(..) => self.resolve_callback(g, value),
            Waiting::Task(_) => self.resolve_task(g, value),
        }
    }

    /// `resolve` for a slot whose task has polled it: the waker is taken under the lock
    /// and woken after releasing it (a waker may run arbitrary code, an executor's).
    #[inline(never)]
    fn resolve_task(&self, mut g: crate::sync::MutexGuard<'_, Guarded<R>>, value: Result<R, CallError>) -> bool {
        g.state = State::Full(value);
        self.done.store(true, Ordering::Release);
        let waiting = std::mem::replace(&mut g.waiting, Waiting::Nobody);
        drop(g);
        if let Waiting::Task(w) = waiting {
            w.wake();
        }
        true
    }

    /// `resolve` for a callback slot (kept out of line: the blocking and future paths do
    /// not pay for it): the slot closes, and the callback runs after the lock is released.
    #[cold]
    #[inline(never)]
    fn resolve_callback(&self, mut g: crate::sync::MutexGuard<'_, Guarded<R>>, value: Result<R, CallError>) -> bool {
        let Waiting::Callback(mut f, timer) = std::mem::replace(&mut g.waiting, Waiting::Nobody) else {
            unreachable!("checked by resolve, under the same lock")
        };
        g.state = State::Closed;
        self.done.store(true, Ordering::Release);
        drop(g);
        // Outside the lock: the callback is the user's code.
        if let Some(f) = f.0.take() {
            f(value, timer);
        }
        true
    }

    /// True once resolved (or closed).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Takes the outcome if there is one.
    pub fn try_take(&self) -> Option<Result<R, CallError>> {
        if !self.is_done() {
            return None;
        }
        let mut g = self.state.lock();
        match std::mem::replace(&mut g.state, State::Closed) {
            State::Full(v) => Some(v),
            other => {
                g.state = other;
                None
            }
        }
    }

    /// For a future: the outcome if there is one; otherwise stores the task's waker (to be
    /// woken by the resolution) and returns `Pending`. A slot already taken or abandoned
    /// answers `Timeout` (a future never polls its slot after that).
    pub fn poll_take(&self, waker: &Waker) -> Poll<Result<R, CallError>> {
        let mut g = self.state.lock();
        match std::mem::replace(&mut g.state, State::Closed) {
            State::Full(v) => {
                g.waiting = Waiting::Nobody;
                Poll::Ready(v)
            }
            State::Empty => {
                g.state = State::Empty;
                match &g.waiting {
                    Waiting::Task(w) if w.will_wake(waker) => {}
                    _ => g.waiting = Waiting::Task(waker.clone()),
                }
                Poll::Pending
            }
            State::Closed => Poll::Ready(Err(CallError::Timeout)),
        }
    }

    /// The caller gives up: returns the outcome if it arrived meanwhile, else closes the
    /// slot so that a later resolution is dropped.
    pub fn abandon(&self) -> Option<Result<R, CallError>> {
        let mut g = self.state.lock();
        let waker = std::mem::replace(&mut g.waiting, Waiting::Nobody);
        let out = match std::mem::replace(&mut g.state, State::Closed) {
            State::Full(v) => Some(v),
            _ => {
                self.done.store(true, Ordering::Release);
                None
            }
        };
        // The waker is dropped after the lock is released: its drop is an executor's code.
        drop(g);
        drop(waker);
        out
    }

    /// Waits for the outcome until `deadline` (None: forever). Spins briefly first; parks
    /// inside [`block_in_place`](crate::scheduler::block_in_place) so that a worker
    /// blocked here is compensated.
    #[cfg(not(loom))]
    pub fn wait(&self, deadline: Option<Instant>) -> Result<R, CallError> {
        if deadline.is_some_and(|d| d <= Instant::now()) {
            // A deadline already passed: no wait at all.
            return self.abandon().unwrap_or(Err(CallError::Timeout));
        }
        if let Some(v) = self.spin() {
            return v;
        }
        self.park_until(deadline)
    }

    /// Waits for the outcome for `timeout` (`Duration::MAX`: forever), as [`Slot::wait`],
    /// reading the clock only when it must: a zero timeout does not wait at all, and a
    /// timeout of [`LATE_START`] or more counts from the end of the spin, so that a reply
    /// that lands within the spin (most of them) costs no clock read. The spin lasts
    /// microseconds (a few thread yields under load), nothing against such a timeout; a
    /// shorter timeout counts from the call.
    #[cfg(not(loom))]
    pub fn wait_for(&self, timeout: Duration) -> Result<R, CallError> {
        if timeout.is_zero() {
            return self.abandon().unwrap_or(Err(CallError::Timeout));
        }
        let start = (timeout < LATE_START).then(Instant::now);
        if let Some(v) = self.spin() {
            return v;
        }
        self.park_until(start.unwrap_or_else(Instant::now).checked_add(timeout))
    }

    /// Spins until resolved or for [`SPIN_ROUNDS`] (the last ten yield the thread); the
    /// outcome if it came meanwhile. Out of line, so that a profile shows the spin apart:
    /// under callgrind, which runs one thread at a time, it always runs all its rounds
    /// (docs/performance.md).
    #[cfg(not(loom))]
    #[inline(never)]
    fn spin(&self) -> Option<Result<R, CallError>> {
        for _ in 0..SPIN_ROUNDS - 10 {
            if self.is_done() {
                return self.try_take();
            }
            spin_hint();
        }
        for _ in 0..10 {
            if self.is_done() {
                break;
            }
            thread::yield_now();
        }
        self.try_take()
    }

    /// Parks (compensated) until resolved or `deadline` (None: forever).
    #[cfg(not(loom))]
    fn park_until(&self, deadline: Option<Instant>) -> Result<R, CallError> {
        crate::scheduler::block_in_place(|| loop {
            if let Some(v) = self.try_take() {
                return v;
            }
            match deadline {
                None => park_timeout(Duration::from_secs(3600)),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return self.abandon().unwrap_or(Err(CallError::Timeout));
                    }
                    park_timeout(d - now);
                }
            }
        })
    }
}

#[cfg(loom)]
impl<R> Slot<R> {
    /// loom: waits until resolved, or (if `give_up`) abandons at the first wait.
    pub fn wait_loom(&self, give_up: bool) -> Result<R, CallError> {
        loop {
            if let Some(v) = self.try_take() {
                return v;
            }
            if give_up {
                return self.abandon().unwrap_or(Err(CallError::Timeout));
            }
            park_timeout(Duration::from_secs(1));
        }
    }
}

#[cfg(loom)]
pub use handle::ReplyHandle;
#[cfg(not(loom))]
pub use handle::ReplyTo;

mod handle {
    use super::ReplySlot;
    use crate::error::CallError;
    use crate::process::bonds::Bonds;
    #[cfg(not(loom))]
    use crate::process::Header;
    use crate::sync::{AtomicBool, Ordering};
    #[cfg(not(loom))]
    use crate::Pid;
    #[cfg(not(loom))]
    use std::fmt;
    use std::sync::Arc;

    /// The handle through which a server answers one call: Elixir's `from`.
    ///
    /// `handle_call` receives it. Return [`CallFlow::Reply`](crate::CallFlow::Reply) to
    /// answer at once, or keep the handle (it is `Clone` and `Send`), return
    /// [`CallFlow::NoReply`](crate::CallFlow::NoReply), and call [`ReplyTo::reply`] later,
    /// from this server or any other thread (S16). If every copy is dropped unanswered the
    /// caller gets [`CallError::NoReply`] at once (OTP would leave it waiting for its
    /// timeout); if the server dies first, the caller gets the exit reason.
    ///
    /// (The first design called this `From`; renamed so that `use arbor::prelude::*` does not
    /// shadow `std::convert::From`.)
    #[cfg(not(loom))]
    pub struct ReplyTo<R: Send + 'static> {
        inner: Arc<Inner<R, Header>>,
    }

    /// What every copy of one call's reply handle shares: the slot, and the call's entry
    /// in the server's held calls. Generic over the server (its `Header`; a bare `Bonds`
    /// in a loom model, which drives this same code through [`ReplyHandle`]).
    struct Inner<R: Send + 'static, S: AsRef<Bonds>> {
        slot: Arc<dyn ReplySlot<R>>,
        server: Arc<S>,
        key: usize,
        /// True until the call's entry in the server's held calls is removed: it is
        /// removed once, by the first reply or by the drop, so that a second reply
        /// through a clone can never remove another call that reused the same key.
        held: AtomicBool,
    }

    impl<R: Send + 'static, S: AsRef<Bonds>> Inner<R, S> {
        fn new(slot: Arc<dyn ReplySlot<R>>, server: Arc<S>, key: usize) -> Self {
            Inner {
                slot,
                server,
                key,
                held: AtomicBool::new(true),
            }
        }

        /// Removes this call from the server's held calls, once.
        fn forget(&self) {
            if self.held.swap(false, Ordering::AcqRel) {
                (*self.server).as_ref().forget_call(self.key);
            }
        }

        /// The reply: see [`ReplyTo::reply`].
        fn reply(&self, value: R) -> bool {
            if !(*self.server).as_ref().is_alive() {
                return false;
            }
            self.forget();
            self.slot.slot().resolve(Ok(value))
        }
    }

    #[cfg(not(loom))]
    impl<R: Send + 'static> ReplyTo<R> {
        pub(crate) fn new(slot: Arc<dyn ReplySlot<R>>, server: Arc<Header>, key: usize) -> Self {
            ReplyTo {
                inner: Arc::new(Inner::new(slot, server, key)),
            }
        }

        /// Sends the reply. Returns false if the call was already answered, the caller
        /// gave up (timeout), or the server has exited (its callers then get the exit
        /// reason instead).
        pub fn reply(&self, value: R) -> bool {
            self.inner.reply(value)
        }

        /// The calling process, if the call came from one (not from an outside thread).
        pub fn caller(&self) -> Option<Pid> {
            self.inner.slot.slot().caller()
        }
    }

    #[cfg(not(loom))]
    impl<R: Send + 'static> Clone for ReplyTo<R> {
        fn clone(&self) -> Self {
            ReplyTo {
                inner: Arc::clone(&self.inner),
            }
        }
    }

    #[cfg(not(loom))]
    impl<R: Send + 'static> fmt::Debug for ReplyTo<R> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ReplyTo").field("caller", &self.caller()).finish()
        }
    }

    impl<R: Send + 'static, S: AsRef<Bonds>> Drop for Inner<R, S> {
        fn drop(&mut self) {
            // Whether or not the caller is still waiting (it may have timed out), the
            // entry goes: an unanswered call must not stay held for the server's life.
            self.forget();
            let slot = self.slot.slot();
            if slot.is_done() {
                return;
            }
            let err = match (*self.server).as_ref().exit_reason() {
                Some(reason) => CallError::Exited(reason),
                None => CallError::NoReply,
            };
            slot.resolve(Err(err));
        }
    }

    /// loom: `ReplyTo` with the server's [`Bonds`] standing for its header: the same
    /// shared part (`Inner`: reply, forget-once, drop), so a model runs the real code.
    #[cfg(loom)]
    pub struct ReplyHandle<R: Send + 'static> {
        inner: Arc<Inner<R, Bonds>>,
    }

    #[cfg(loom)]
    impl<R: Send + 'static> ReplyHandle<R> {
        /// As `ReplyTo::new`: the handle of the call held under `key` by `server`.
        pub fn new(slot: Arc<dyn ReplySlot<R>>, server: Arc<Bonds>, key: usize) -> Self {
            ReplyHandle {
                inner: Arc::new(Inner::new(slot, server, key)),
            }
        }

        /// As `ReplyTo::reply`.
        pub fn reply(&self, value: R) -> bool {
            self.inner.reply(value)
        }
    }

    #[cfg(loom)]
    impl<R: Send + 'static> Clone for ReplyHandle<R> {
        fn clone(&self) -> Self {
            ReplyHandle {
                inner: Arc::clone(&self.inner),
            }
        }
    }
}
