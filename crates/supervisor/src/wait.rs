//! Waiting for a process to exit from inside another process's callback, without starving
//! the pool: used only by a static supervisor's boot failure (S53), inside `init`, where no
//! mailbox loop exists yet to receive the children's exits asynchronously.
//!
//! Core offers a compensated wait only through its typed handles (`call`, `stop`,
//! `wait_exit`), and a supervisor knows its children by `Pid` alone. So a small unlinked
//! helper process monitors the pid, and the waiter *calls* it: the call blocks in core's
//! compensated wait, so a one-thread runtime still has a worker to run the child's
//! `terminate`. Invariant: the helper lives at most until it has answered or been killed.

use arbor_core::{CallError, CallFlow, Context, Down, ExitReason, Flow, GenServer, Pid, ReplyTo, StartOpts};
use std::time::Duration;

struct ExitWaiter {
    down: Option<ExitReason>,
    waiting: Option<ReplyTo<ExitReason>>,
}

impl GenServer for ExitWaiter {
    type Args = Pid;
    type Info = ();
    type Call = ();
    type Reply = ExitReason;

    fn init(pid: Pid, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.monitor(pid);
        Ok(ExitWaiter {
            down: None,
            waiting: None,
        })
    }

    fn handle_call(&mut self, _: (), from: ReplyTo<ExitReason>, _: &mut Context<'_, Self>) -> CallFlow<ExitReason> {
        match self.down.take() {
            Some(reason) => CallFlow::Stop(ExitReason::Normal, reason),
            None => {
                self.waiting = Some(from);
                CallFlow::NoReply
            }
        }
    }

    fn handle_down(&mut self, down: Down, _: &mut Context<'_, Self>) -> Flow {
        match self.waiting.take() {
            Some(from) => {
                from.reply(down.reason);
                Flow::Stop(ExitReason::Normal)
            }
            None => {
                self.down = Some(down.reason);
                Flow::Continue
            }
        }
    }
}

/// Waits up to `timeout` (`Duration::MAX`: forever) for `pid` to exit; its reason, or `None`
/// on timeout. Call from inside a process (the runtime is the caller's).
pub(crate) fn wait_exit(pid: Pid, timeout: Duration) -> Option<ExitReason> {
    let waiter = match ExitWaiter::start(pid, StartOpts::new()) {
        Ok(w) => w,
        Err(e) => {
            log::warn!("supervisor: cannot wait for {pid} to exit: {e}");
            return None;
        }
    };
    match waiter.call_timeout((), timeout) {
        Ok(reason) => Some(reason),
        Err(CallError::Timeout) => {
            waiter.kill();
            None
        }
        Err(_) => None,
    }
}
