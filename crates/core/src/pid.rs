//! Process identifiers.
//!
//! A [`Pid`] names one process of one runtime for all time: it carries the runtime's id,
//! the slot index of the process table, and a serial number drawn from a counter that is
//! global to the program and never reused. A slot index is reused once its process is
//! gone, but the serial is not, so a stale pid never reaches a newer process.

use std::fmt;

/// Index values at or above this are reserved for pseudo-pids that name no process.
const RESERVED: u32 = u32::MAX - 1;

/// The identity of a process, untyped: `Copy`, `Eq`, `Hash`, `Ord` and `Display`
/// (`<runtime.index.serial>`, after Erlang's `<0.123.0>`).
///
/// A `Pid` is only a name. Typed operations go through a
/// [`ServerRef`](crate::ServerRef), recovered from a pid with
/// [`ServerRef::from_pid`](crate::ServerRef::from_pid).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid {
    rt: u32,
    index: u32,
    serial: u64,
}

impl Pid {
    pub(crate) fn new(rt: u32, index: u32, serial: u64) -> Pid {
        debug_assert!(index < RESERVED);
        Pid { rt, index, serial }
    }

    /// The pseudo-pid of a runtime itself: the "parent" of root processes, and the sender
    /// of the exit signals with which [`Runtime::shutdown`](crate::Runtime::shutdown) stops
    /// them.
    pub(crate) fn runtime(rt: u32) -> Pid {
        Pid {
            rt,
            index: RESERVED,
            serial: 0,
        }
    }

    /// The pseudo-pid standing for code outside any process (an OS thread of the user's).
    pub(crate) fn external(rt: u32) -> Pid {
        Pid {
            rt,
            index: RESERVED + 1,
            serial: 0,
        }
    }

    /// True for the pseudo-pids that name a runtime or the outside world, not a process.
    pub fn is_pseudo(&self) -> bool {
        self.index >= RESERVED
    }

    /// True for the pseudo-pid of a runtime: the sender of the exit signals with which a
    /// runtime's shutdown stops its root processes.
    pub fn is_runtime(&self) -> bool {
        self.index == RESERVED
    }

    pub(crate) fn rt(&self) -> u32 {
        self.rt
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            RESERVED => write!(f, "<{}.runtime>", self.rt),
            i if i > RESERVED => write!(f, "<{}.external>", self.rt),
            _ => write!(f, "<{}.{}.{}>", self.rt, self.index, self.serial),
        }
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
