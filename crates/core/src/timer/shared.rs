//! Timers anyone may hold: a one-shot `send_after` to any server, and a drift-free interval
//! timer, each behind a [`Timer`] handle that any thread or process may cancel.
//!
//! Invariants:
//! - A timer's life is one atomic word, [`TimerCore::state`]: `ARMED` until it is
//!   cancelled (`CANCELLED`) or, for a one-shot, until its message is handled or cannot be
//!   delivered (`DONE`). Each move out of `ARMED` is a compare-and-swap, so exactly one of
//!   "the receiver handles the message" and "`cancel` returns `Some`" happens for a
//!   one-shot, and no tick of an interval is handled once `cancel` has returned.
//! - A timer's message travels with its core (`Envelope::Timed`); the receiving process
//!   claims it ([`TimerCore::claim`]) just before `handle_info`, and drops it unhandled if
//!   the claim fails. So a message that reached the mailbox before the cancel is dropped
//!   too (beyond OTP, as for [`Context::cancel_timer`](crate::Context::cancel_timer)).
//! - An interval's deadlines are `start + n × period` on the timer service's clock, never
//!   "when the last tick fired + period": lateness of one firing does not move the next.
//!   At most one tick waits in the receiver's mailbox: a deadline that passes while the
//!   previous tick is still queued is counted in `missed` instead of queued (a slow
//!   receiver never gets a growing backlog of ticks).
//! - The wheel key of the current arming is in `key`. A re-arm stores the new key and
//!   then looks at the state again; a cancel moves the state and then cancels the stored
//!   key: with both sequentially consistent, one of them removes the new arming, so a
//!   cancelled interval leaves nothing on the wheel.

use super::TICK;
use crate::gen_server::GenServer;
use crate::panic::drop_quietly;
use crate::process::{Cell, Envelope};
use crate::runtime::RtShared;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Armed: its message (or next tick) may still be handled.
const ARMED: usize = 0;
/// Cancelled by [`Timer::cancel`]: nothing more is handled.
const CANCELLED: usize = 1;
/// A one-shot whose message was handled (or could not be delivered: the receiver had
/// exited), or an interval whose receiver has exited.
const DONE: usize = 2;

/// No key stored yet.
const NO_KEY: u64 = u64::MAX;

/// The shared state of one timer (see the module's invariants).
pub(crate) struct TimerCore {
    state: AtomicUsize,
    /// The wheel key of the current arming.
    key: AtomicU64,
    /// `Some(period)` for an interval timer.
    period: Option<Duration>,
    /// Interval: a tick waits, unhandled, in the receiver's mailbox.
    queued: AtomicBool,
    /// Interval: deadlines passed so far (ticks queued plus ticks missed).
    deadlines: AtomicU64,
    /// Interval: deadlines that passed while a tick was still queued.
    missed: AtomicU64,
}

impl TimerCore {
    fn new(period: Option<Duration>) -> TimerCore {
        TimerCore {
            state: AtomicUsize::new(ARMED),
            key: AtomicU64::new(NO_KEY),
            period,
            queued: AtomicBool::new(false),
            deadlines: AtomicU64::new(0),
            missed: AtomicU64::new(0),
        }
    }

    fn is_armed(&self) -> bool {
        self.state.load(Ordering::SeqCst) == ARMED
    }

    /// Whether a message of this timer may still be handled (for the inactivity
    /// timeout's bookkeeping: a message that will be dropped is not an arrival).
    pub(crate) fn is_live(&self) -> bool {
        self.is_armed()
    }

    /// The receiver's claim, just before `handle_info`: true if the message is to be
    /// handled. A one-shot is claimed once (`ARMED` -> `DONE`); an interval's tick is
    /// handled while the timer is armed, and frees the queue for the next tick.
    pub(crate) fn claim(&self) -> bool {
        if self.period.is_some() {
            self.queued.store(false, Ordering::SeqCst);
            self.is_armed()
        } else {
            self.state
                .compare_exchange(ARMED, DONE, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        }
    }

    /// The receiver is gone: nothing more can be delivered.
    fn finish(&self) {
        let _ = self
            .state
            .compare_exchange(ARMED, DONE, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Stores the key of a new arming; removes that arming again if the timer was
    /// cancelled meanwhile (see the module's invariants).
    fn set_key(&self, rt: &RtShared, key: u64) {
        self.key.store(key, Ordering::SeqCst);
        if !self.is_armed() {
            rt.timers.cancel(key);
        }
    }
}

/// A timer that any holder may cancel or read: from the process it targets, another
/// process, or a plain thread. Armed by [`ServerRef::send_after`](crate::ServerRef::send_after)
/// (one message, once), [`ServerRef::send_interval`](crate::ServerRef::send_interval) and
/// [`Context::send_interval`](crate::Context::send_interval) (a message every period).
///
/// Cloning the handle does not copy the timer: every clone names the same timer. Dropping
/// every handle does not cancel it (as in Erlang, a timer lives until it fires, is
/// cancelled, or its receiver exits).
#[derive(Clone)]
pub struct Timer {
    core: Arc<TimerCore>,
    rt: Arc<RtShared>,
}

impl Timer {
    /// Cancels the timer (Elixir's `Process.cancel_timer(ref)`): returns the time left
    /// before its next message was due, or `None` if it had already been handled,
    /// cancelled, or its receiver has exited. Exactly once: after `cancel` returns `Some`,
    /// the timer's message is never handled, even if it had already reached the mailbox
    /// (then the time left is zero); after it returns `None`, the one-shot's message has
    /// been (or is being) handled. For an interval, no tick is handled once `cancel` has
    /// returned, but for one whose `handle_info` had already begun.
    pub fn cancel(&self) -> Option<Duration> {
        if self
            .core
            .state
            .compare_exchange(ARMED, CANCELLED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return None;
        }
        let key = self.core.key.load(Ordering::SeqCst);
        let left = if key == NO_KEY {
            None
        } else {
            self.rt.timers.cancel(key)
        };
        // `None` from the wheel: the message is queued (or being queued), and the
        // receiver's claim will drop it.
        Some(left.unwrap_or(Duration::ZERO))
    }

    /// The time left before the timer's next message is due (zero if it is queued,
    /// unhandled), or `None` once it has been handled, cancelled, or its receiver has
    /// exited (Elixir's `Process.read_timer`).
    pub fn read(&self) -> Option<Duration> {
        if !self.core.is_armed() {
            return None;
        }
        let key = self.core.key.load(Ordering::SeqCst);
        let left = if key == NO_KEY {
            None
        } else {
            self.rt.timers.remaining(key)
        };
        Some(left.unwrap_or(Duration::ZERO))
    }

    /// True until the timer is cancelled, its one message handled, or its receiver gone.
    pub fn is_active(&self) -> bool {
        self.core.is_armed()
    }

    /// The interval's period; `None` for a one-shot timer.
    pub fn period(&self) -> Option<Duration> {
        self.core.period
    }

    /// For an interval: how many of its deadlines have passed so far (ticks queued plus
    /// ticks missed). Zero for a one-shot.
    pub fn deadlines(&self) -> u64 {
        self.core.deadlines.load(Ordering::SeqCst)
    }

    /// For an interval: how many deadlines passed while the previous tick still waited,
    /// unhandled, in the receiver's mailbox, and so were not queued (a receiver slower
    /// than the period gets one tick at a time, never a backlog). Zero for a one-shot.
    pub fn missed(&self) -> u64 {
        self.core.missed.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("active", &self.is_active())
            .field("period", &self.core.period)
            .field("left", &self.read())
            .finish()
    }
}

/// Arms a one-shot timer: `msg` goes to `cell`'s `handle_info` after `delay`.
pub(crate) fn send_after<G: GenServer>(cell: &Arc<Cell<G>>, delay: Duration, msg: G::Info) -> Timer {
    let rt = Arc::clone(cell.header().rt());
    let core = Arc::new(TimerCore::new(None));
    let (c, target) = (Arc::clone(&core), Arc::clone(cell));
    let key = rt.timers.insert(
        delay,
        Box::new(move |_| {
            if let Err(env) = target.push(Envelope::Timed(Arc::clone(&c), msg)) {
                c.finish();
                drop_quietly(env, "a timer's message to an exited process");
            }
        }),
    );
    core.set_key(&rt, key);
    Timer { core, rt }
}

/// Arms an interval timer: a clone of `msg` goes to `cell`'s `handle_info` at each
/// `start + n × period` (n = 1, 2, ..), `start` being now.
pub(crate) fn send_interval<G: GenServer>(cell: &Arc<Cell<G>>, period: Duration, msg: G::Info) -> Timer
where
    G::Info: Clone,
{
    let rt = Arc::clone(cell.header().rt());
    // A period under a tick would make every firing due again at once.
    let period = period.max(TICK);
    let core = Arc::new(TimerCore::new(Some(period)));
    let start = rt.timers.now();
    arm_tick(Arc::clone(&core), Arc::clone(cell), msg, start, period, 1);
    Timer { core, rt }
}

/// `start + n × period`, saturating.
fn deadline(start: Duration, period: Duration, n: u64) -> Duration {
    let nanos = period
        .as_nanos()
        .saturating_mul(n as u128)
        .saturating_add(start.as_nanos());
    let nanos = nanos.min(u64::MAX as u128 / 2) as u64;
    Duration::from_nanos(nanos)
}

fn arm_tick<G: GenServer>(
    core: Arc<TimerCore>,
    cell: Arc<Cell<G>>,
    msg: G::Info,
    start: Duration,
    period: Duration,
    n: u64,
) where
    G::Info: Clone,
{
    let rt = Arc::clone(cell.header().rt());
    let c = Arc::clone(&core);
    let key = rt.timers.insert_at(
        deadline(start, period, n),
        Box::new(move |_| tick(c, cell, msg, start, period, n)),
    );
    core.set_key(&rt, key);
}

/// The `n`th deadline has come: queue a tick (or count it missed), arm the next one.
fn tick<G: GenServer>(core: Arc<TimerCore>, cell: Arc<Cell<G>>, msg: G::Info, start: Duration, period: Duration, n: u64)
where
    G::Info: Clone,
{
    if !core.is_armed() {
        drop_quietly(msg, "a cancelled interval's message");
        return;
    }
    if !cell.header().is_alive() {
        core.finish();
        drop_quietly(msg, "an interval's message to an exited process");
        return;
    }
    core.deadlines.fetch_add(1, Ordering::SeqCst);
    if core.queued.swap(true, Ordering::SeqCst) {
        core.missed.fetch_add(1, Ordering::SeqCst);
    } else if let Err(env) = cell.push(Envelope::Timed(Arc::clone(&core), msg.clone())) {
        core.finish();
        drop_quietly(env, "an interval's message to an exited process");
        drop_quietly(msg, "an interval's message to an exited process");
        return;
    }
    arm_tick(core, cell, msg, start, period, n + 1);
}
