//! The soak's books: counters for everything done, and every invariant violation seen.
//!
//! Invariants:
//! - Each message a client or a worker makes carries a [`Token`]. A token ends exactly one
//!   way: handled (`consume`), refused by a dead process at send (`reject`), cancelled with
//!   its timer, or dropped with its dead process. A token dropped while its process is still
//!   alive is a lost message. After shutdown, `tokens_made == tokens_ended`, or messages
//!   leaked (a mailbox never freed).
//! - Violations are counted per [`Kind`] and the first few of each are kept verbatim for the
//!   report.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The invariants the soak checks, one per kind of violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// A call returned later than its timeout plus 100 ms.
    LateCall,
    /// A call returned a reply that was not the answer to its own request.
    WrongReply,
    /// A message accepted by a live process was dropped while the process was still alive.
    LostMessage,
    /// Two messages from one sender were handled out of order.
    FifoBroken,
    /// A timer's message was handled after `cancel_timer` returned.
    CancelledTimerHandled,
    /// A `Down` arrived after `demonitor`.
    DownAfterDemonitor,
    /// A name pointed at a dead process for longer than the bound.
    StaleName,
    /// A permanent static child did not come back within the bound.
    PermanentNotBack,
    /// After chaos stopped, the tree did not return to its specs within the bound.
    NotConverged,
    /// After chaos stopped, a process was alive that no supervisor knows.
    Orphan,
    /// After chaos stopped, the process count differed from the baseline.
    ProcessCount,
    /// After chaos stopped, the OS thread count stayed above the baseline.
    Threads,
    /// After chaos stopped, pending timers stayed above the baseline.
    Timers,
    /// Resident memory grew from phase to phase.
    Memory,
    /// A message was neither handled nor dropped by the end: a leaked mailbox.
    LeakedMessages,
    /// `Runtime::shutdown` took longer than the bound (on the deterministic runtime:
    /// killed a process, or left one stuck).
    SlowShutdown,
    /// On the deterministic runtime, a seed run twice gave two traces.
    NotReplayed,
}

impl Kind {
    /// The invariant, in words, for the report.
    pub(crate) fn rule(self) -> &'static str {
        match self {
            Kind::LateCall => "every call returns within its timeout + 100 ms",
            Kind::WrongReply => "a call gets its own reply or a typed error",
            Kind::LostMessage => "an accepted message is handled, or dropped only with its dead process",
            Kind::FifoBroken => "messages from one sender are handled in order",
            Kind::CancelledTimerHandled => "no cancelled timer's message is handled",
            Kind::DownAfterDemonitor => "no Down after demonitor",
            Kind::StaleName => "a name never points at a dead process beyond the bound",
            Kind::PermanentNotBack => "a permanent child comes back",
            Kind::NotConverged => "after chaos, every supervisor converges to its specs",
            Kind::Orphan => "after chaos, no process that no supervisor knows",
            Kind::ProcessCount => "after chaos, the process count returns to the baseline",
            Kind::Threads => "after chaos, the OS thread count returns to the baseline",
            Kind::Timers => "after chaos, pending timers return to the baseline",
            Kind::Memory => "resident memory does not grow phase over phase",
            Kind::LeakedMessages => "every message is handled or dropped by the end (none leaked)",
            Kind::SlowShutdown => "shutdown completes within the bound",
            Kind::NotReplayed => "the same seed gives the same trace (deterministic runtime)",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How many examples of each kind the report keeps.
const EXAMPLES: usize = 5;

/// A named counter of things done (calls, sends, kills...).
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters and violations of one run.
#[derive(Default)]
pub(crate) struct Ledger {
    violations: Mutex<BTreeMap<Kind, (u64, Vec<String>)>>,
    counters: Mutex<BTreeMap<&'static str, Arc<Counter>>>,
    /// Tokens made; each ends in exactly one of the four counters below.
    pub(crate) tokens_made: Counter,
    pub(crate) handled: Counter,
    pub(crate) rejected: Counter,
    pub(crate) cancelled: Counter,
    pub(crate) dropped_dead: Counter,
    /// Moments the host did not run this process (see `stall.rs`).
    pub(crate) stalls: crate::stall::Stalls,
}

impl Ledger {
    /// Records a violation of `kind`.
    pub(crate) fn violation(&self, kind: Kind, what: impl FnOnce() -> String) {
        let mut v = self.violations.lock();
        let entry = v.entry(kind).or_default();
        entry.0 += 1;
        if entry.1.len() < EXAMPLES {
            let what = what();
            // Said at once too, so a long run shows trouble when it happens.
            eprintln!("arbor-soak: VIOLATION {kind}: {what}");
            entry.1.push(what);
        }
    }

    /// The counter `name`, made on first use.
    pub(crate) fn counter(&self, name: &'static str) -> Arc<Counter> {
        self.counters.lock().entry(name).or_default().clone()
    }

    /// Adds one to the counter `name`.
    pub(crate) fn count(&self, name: &'static str) {
        self.counter(name).add(1);
    }

    /// Tokens that have ended, one way or another.
    pub(crate) fn tokens_ended(&self) -> u64 {
        self.handled.get() + self.rejected.get() + self.cancelled.get() + self.dropped_dead.get()
    }

    /// Violations so far, by kind: (count, first examples).
    pub(crate) fn violations(&self) -> BTreeMap<Kind, (u64, Vec<String>)> {
        self.violations.lock().clone()
    }

    /// Counters so far, by name.
    pub(crate) fn counters(&self) -> Vec<(&'static str, u64)> {
        self.counters.lock().iter().map(|(k, c)| (*k, c.get())).collect()
    }
}

/// How a [`Token`] ended, if it has.
const PENDING: u8 = 0;
const ENDED: u8 = 1;

/// Rides inside every counted message, and says on drop how the message ended.
pub(crate) struct Token {
    ledger: Arc<Ledger>,
    /// The process whose mailbox holds (or will hold) the message.
    target: arbor::Pid,
    state: u8,
    /// Set once the timer carrying this token was cancelled.
    cancelled: Option<Arc<AtomicBool>>,
}

impl Token {
    /// A new token for a message to `target`.
    pub(crate) fn new(ledger: &Arc<Ledger>, target: arbor::Pid) -> Token {
        ledger.tokens_made.add(1);
        Token {
            ledger: ledger.clone(),
            target,
            state: PENDING,
            cancelled: None,
        }
    }

    /// Ties the token to a timer's cancel flag.
    pub(crate) fn on_timer(&mut self, flag: Arc<AtomicBool>) {
        self.cancelled = Some(flag);
    }

    /// The message was handled. Handling a cancelled timer's message is a violation.
    pub(crate) fn consume(mut self, by: arbor::Pid) {
        if self.cancelled.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
            self.ledger.violation(Kind::CancelledTimerHandled, || {
                format!("{by} handled the message of a timer it had cancelled")
            });
        }
        self.state = ENDED;
        self.ledger.handled.add(1);
    }

    /// The send was refused: the process was not alive.
    pub(crate) fn reject(mut self) {
        self.state = ENDED;
        self.ledger.rejected.add(1);
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if self.state == ENDED {
            return;
        }
        if self.cancelled.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
            self.ledger.cancelled.add(1);
            return;
        }
        self.ledger.dropped_dead.add(1);
        if arbor::is_alive(self.target) {
            let target = self.target;
            self.ledger.violation(Kind::LostMessage, || {
                format!("a message to {target} was dropped while {target} was alive")
            });
        }
    }
}
