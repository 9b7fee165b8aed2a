//! The trace of a deterministic run: every scheduling choice, delivery, timer firing,
//! clock jump, exit and injected fault, in the order they happened.
//!
//! Invariants:
//! - Nothing in an event depends on the machine, the thread or other runtimes in the
//!   program: processes are named by their number of birth on this runtime (1 for the
//!   first), not by their pid (whose printed form holds a program-wide serial and the
//!   runtime's slot); times are virtual time since the runtime was made.
//! - The digest is FNV-1a over each event's printed form, so it is the same on every
//!   machine (no per-process random hashing state) and two runs can be compared by it
//!   alone when the events are not kept.

use std::fmt;
use std::time::Duration;

/// What kind of message reached a mailbox (a [`TraceEvent::Deliver`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// For `handle_info` (a send, `send_self`).
    Info,
    /// For `handle_info`, from a timer (`send_after`).
    Timer,
    /// A call, for `handle_call`.
    Call,
    /// A typed request, for `handle_request`.
    Request,
    /// A cast, for `handle_cast`.
    Cast,
    /// A stop request (`ServerRef::stop`).
    Stop,
    /// A trapped exit signal.
    Exit,
    /// A monitor's `Down`.
    Down,
    /// An inactivity timeout.
    Timeout,
    /// A request for the formatted state (`RuntimeHandle::get_state`).
    GetState,
}

/// One event of a deterministic run (see [`SimRuntime::trace`](crate::sim::SimRuntime::trace)).
///
/// Processes are numbered in the order they were created on the runtime (1 is the first);
/// 0 stands for no process (code outside any process, or the runtime itself). `at` is
/// virtual time since the runtime was made.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TraceEvent {
    /// A process was created by `parent` (0: from outside any process).
    Spawn {
        /// Virtual time.
        at: Duration,
        /// The new process.
        process: u64,
        /// The process that started it.
        parent: u64,
    },
    /// The driver chose `process` among `ready` ready tasks and ran it.
    Run {
        /// Virtual time.
        at: Duration,
        /// Steps taken so far, this one included.
        step: u64,
        /// The process run.
        process: u64,
        /// How many tasks were ready to choose from.
        ready: usize,
    },
    /// A message reached `to`'s mailbox.
    Deliver {
        /// Virtual time.
        at: Duration,
        /// The process running when the message was delivered (0: none: code outside any
        /// process, or a timer): the sender of a send or a call; for an exit signal or a
        /// `Down`, the process whose action caused it (which may be the receiver itself,
        /// killing a linked child).
        from: u64,
        /// The receiving process.
        to: u64,
        /// What kind of message.
        kind: MessageKind,
    },
    /// The clock moved to `at` (if it was earlier) and `fired` timers fired there.
    Timers {
        /// Virtual time.
        at: Duration,
        /// How many timers fired.
        fired: usize,
    },
    /// The clock moved to `at` with no timer due: a wait's deadline or a helper's target.
    Clock {
        /// Virtual time.
        at: Duration,
    },
    /// A process began its exit.
    Exit {
        /// Virtual time.
        at: Duration,
        /// The process.
        process: u64,
        /// Its exit reason, printed.
        reason: String,
    },
    /// Fault injection killed `process`, or sent it an exit signal.
    Fault {
        /// Virtual time.
        at: Duration,
        /// The process.
        process: u64,
        /// True for a kill, false for an exit signal (`ExitReason::custom("injected fault")`).
        kill: bool,
    },
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |at: &Duration| format!("{}.{:09}", at.as_secs(), at.subsec_nanos());
        match self {
            TraceEvent::Spawn { at, process, parent } => write!(f, "{} spawn #{process} by #{parent}", t(at)),
            TraceEvent::Run {
                at,
                step,
                process,
                ready,
            } => write!(f, "{} step {step}: run #{process} (of {ready} ready)", t(at)),
            TraceEvent::Deliver { at, from, to, kind } => write!(f, "{} deliver {kind:?} #{from} -> #{to}", t(at)),
            TraceEvent::Timers { at, fired } => write!(f, "{} timers: {fired} fired", t(at)),
            TraceEvent::Clock { at } => write!(f, "{} clock", t(at)),
            TraceEvent::Exit { at, process, reason } => write!(f, "{} exit #{process}: {reason}", t(at)),
            TraceEvent::Fault { at, process, kill } => {
                write!(f, "{} fault: {} #{process}", t(at), if *kill { "kill" } else { "exit" })
            }
        }
    }
}

/// The trace being recorded: the events (if kept) and a running digest of all of them.
pub(crate) struct Trace {
    events: Option<Vec<TraceEvent>>,
    digest: u64,
    len: u64,
    text: String,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Trace {
    pub(crate) fn new(keep: bool) -> Trace {
        Trace {
            events: keep.then(Vec::new),
            digest: FNV_OFFSET,
            len: 0,
            text: String::new(),
        }
    }

    pub(crate) fn record(&mut self, event: TraceEvent) {
        use std::fmt::Write;
        self.text.clear();
        let _ = writeln!(self.text, "{event}");
        for b in self.text.as_bytes() {
            self.digest ^= u64::from(*b);
            self.digest = self.digest.wrapping_mul(FNV_PRIME);
        }
        self.len += 1;
        if let Some(events) = &mut self.events {
            events.push(event);
        }
    }

    pub(crate) fn events(&self) -> Vec<TraceEvent> {
        self.events.clone().unwrap_or_default()
    }

    pub(crate) fn digest(&self) -> u64 {
        self.digest
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}
