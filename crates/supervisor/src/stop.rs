//! Stopping a child without blocking: the one procedure both supervisors use (S49, S61).
//!
//! Invariants:
//! - A supervisor never waits for a child on its worker thread. It *begins* a stop here (an
//!   exit signal `Shutdown`, or a kill), arms a kill timer for a timeout shutdown, and
//!   returns; the child's exit reaches the supervisor later through its link, as a
//!   `handle_exit` call, and the timer's message as a [`SupMsg::KillTimer`].
//! - A kill timer is cancelled as soon as its child's exit is handled; core guarantees that a
//!   cancelled timer's message is never handled, so a stale `KillTimer` can only name a pid
//!   that is no longer a child (pids are never reused), and is then ignored.

use crate::spec::Shutdown;
use arbor_core::{Context, ExitReason, GenServer, Pid, TimerRef};

/// The messages a supervisor sends itself.
#[derive(Debug)]
pub(crate) enum SupMsg {
    /// A child's shutdown timeout expired: kill it if it is still a child.
    KillTimer(Pid),
    /// Retry the restart of the child with this key (S47).
    Retry(u64),
}

/// Begins stopping `pid` as `shutdown` says; returns the kill timer, if one was armed.
pub(crate) fn begin_stop<G>(ctx: &mut Context<'_, G>, pid: Pid, shutdown: Shutdown) -> Option<TimerRef>
where
    G: GenServer<Info = SupMsg>,
{
    match shutdown {
        Shutdown::BrutalKill => {
            ctx.kill(pid);
            None
        }
        Shutdown::Timeout(after) => {
            ctx.exit(pid, ExitReason::Shutdown);
            Some(ctx.send_after(after, SupMsg::KillTimer(pid)))
        }
        Shutdown::Infinity => {
            ctx.exit(pid, ExitReason::Shutdown);
            None
        }
    }
}

/// Logs a child's exit the way OTP's supervisor reports do: crashes as errors, clean ends at
/// debug level.
pub(crate) fn report_exit(sup: Pid, id: &str, pid: Pid, reason: &ExitReason) {
    if reason.is_clean() {
        log::debug!("supervisor {sup}: child {id:?} ({pid}) exited: {reason}");
    } else {
        log::error!("supervisor {sup}: child {id:?} ({pid}) terminated: {reason}");
    }
}
