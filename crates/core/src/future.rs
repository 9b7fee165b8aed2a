//! Futures for what a caller waits on: a call's reply, a stop, an exit.
//!
//! They are plain [`std::future::Future`]s that depend on no executor: the reply slot
//! wakes the task's [`Waker`](std::task::Waker) when it is resolved (see `reply.rs`), and
//! the timeout is a timer on the runtime's own timer service, armed at the first poll
//! that finds no reply and cancelled as soon as the reply wins. So they run on tokio,
//! async-std, smol, a hand-written `block_on`, anything.
//!
//! Invariants:
//! - The request is sent when the future is made (`call_async` returns after the push),
//!   so an error known at once (`NoProc`, `CallingSelf`, a zero timeout) is the future's
//!   output at its first poll, and the server may handle the request even if the future
//!   is never polled.
//! - A future owns at most one timer, and never leaves it behind: it is cancelled when
//!   the future completes with anything but its own timeout, and when it is dropped.
//! - Dropping a pending future abandons the call: the slot is closed, so a late reply is
//!   dropped with the slot; the server side forgets the held call exactly as for a
//!   blocking caller that timed out (the reply handle's last copy removes it).

use crate::error::CallError;
use crate::reply::{ReplySlot, Slot};
use crate::runtime::RtShared;
use crate::{ExitReason, MonitorRef, Pid, RuntimeHandle};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The reply to a call, as a future: what [`ServerRef::call_async`](crate::ServerRef::call_async),
/// [`ServerRef::request_async`](crate::ServerRef::request_async) and
/// [`ServerRef::stop_async`](crate::ServerRef::stop_async) return.
///
/// Its output is what the blocking form returns, with the same guarantees: `NoProc` at
/// once for a dead server, `Exited(reason)` as soon as the server dies, `Timeout` at the
/// deadline (the late reply is then dropped), `NoReply` if the server dropped the reply
/// handle. Dropping it before it completes abandons the call cleanly: nothing is left
/// behind, and the server is not disturbed (its reply, if any, is dropped).
///
/// Polling it again after it completed returns `Pending` forever, as a fused future
/// would.
#[must_use = "a call future does nothing useful unless awaited; dropping it abandons the call"]
pub struct CallFuture<R: Send + 'static> {
    step: Step<R>,
}

enum Step<R: Send + 'static> {
    /// Known at once: the output of the first poll.
    Failed(CallError),
    /// Sent; waiting for the slot to be resolved.
    Waiting {
        slot: Arc<dyn ReplySlot<R>>,
        rt: Arc<RtShared>,
        /// None: no timeout.
        deadline: Option<Instant>,
        /// The armed timeout, once a poll found no reply.
        timer: Option<u64>,
    },
    /// Returned its output.
    Done,
}

impl<R: Send + 'static> CallFuture<R> {
    /// A future whose output is `err` at its first poll: for a wrapper that knows the
    /// call fails before sending it (a name that is not registered: `NoProc`).
    pub fn failed(err: CallError) -> Self {
        CallFuture {
            step: Step::Failed(err),
        }
    }

    /// A future for a request already sent, answered through `slot` (a task slot).
    pub(crate) fn waiting(slot: Arc<dyn ReplySlot<R>>, rt: Arc<RtShared>, deadline: Option<Instant>) -> Self {
        CallFuture {
            step: Step::Waiting {
                slot,
                rt,
                deadline,
                timer: None,
            },
        }
    }

    /// True once the outcome is known (it may still have to be taken by a poll): a reply,
    /// an error, or the deadline.
    pub fn is_ready(&self) -> bool {
        match &self.step {
            Step::Failed(_) => true,
            Step::Waiting { slot, .. } => slot.slot().is_done(),
            Step::Done => false,
        }
    }
}

impl<R: Send + 'static> Future for CallFuture<R> {
    type Output = Result<R, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let out = match &mut this.step {
            Step::Failed(_) => match std::mem::replace(&mut this.step, Step::Done) {
                Step::Failed(e) => return Poll::Ready(Err(e)),
                _ => unreachable!("matched just above"),
            },
            Step::Done => return Poll::Pending,
            Step::Waiting {
                slot,
                rt,
                deadline,
                timer,
            } => match slot.slot().poll_take(cx.waker()) {
                Poll::Ready(v) => {
                    if let Some(key) = timer.take() {
                        // The reply won (or the server died): the timer goes at once. A key
                        // of a timer that has fired is stale and matches nothing.
                        rt.timers.cancel(key);
                    }
                    v
                }
                Poll::Pending => {
                    let Some(d) = *deadline else {
                        return Poll::Pending;
                    };
                    if timer.is_some() {
                        return Poll::Pending;
                    }
                    let now = rt.now();
                    if now >= d {
                        slot.slot().abandon().unwrap_or(Err(CallError::Timeout))
                    } else {
                        // Armed only now that a reply is awaited: a reply that was there at
                        // the first poll costs no timer.
                        let s = Arc::clone(slot);
                        let fire = Box::new(move |_key: u64| {
                            s.slot().resolve(Err(CallError::Timeout));
                        });
                        *timer = Some(rt.timers.insert(d - now, fire));
                        return Poll::Pending;
                    }
                }
            },
        };
        this.step = Step::Done;
        Poll::Ready(out)
    }
}

impl<R: Send + 'static> Drop for CallFuture<R> {
    fn drop(&mut self) {
        if let Step::Waiting { slot, rt, timer, .. } = &mut self.step {
            if let Some(key) = timer.take() {
                rt.timers.cancel(key);
            }
            // Closed: a reply that comes later is dropped with the slot. One that came
            // already is dropped here.
            drop(slot.slot().abandon());
        }
    }
}

impl<R: Send + 'static> fmt::Debug for CallFuture<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match &self.step {
            Step::Failed(e) => format!("Failed({e:?})"),
            Step::Waiting { .. } if self.is_ready() => "Ready".to_string(),
            Step::Waiting { .. } => "Waiting".to_string(),
            Step::Done => "Done".to_string(),
        };
        f.debug_struct("CallFuture").field("step", &step).finish()
    }
}

/// A process's exit, as a future: what [`ServerRef::wait_exit_async`](crate::ServerRef::wait_exit_async)
/// and [`RuntimeHandle::wait_exit_async`] return.
///
/// Its output is the exit reason (`NoProc` if the process was not alive), or `None` if it
/// was still running at the deadline. It watches through a monitor held by no process,
/// which is removed when the future times out or is dropped.
#[must_use = "an exit future does nothing unless awaited"]
pub struct ExitFuture {
    reason: CallFuture<ExitReason>,
    /// The monitor to remove if the future ends without the exit.
    watch: Option<(RuntimeHandle, Pid, MonitorRef)>,
}

impl ExitFuture {
    pub(crate) fn new(rt: &RuntimeHandle, pid: Pid, timeout: std::time::Duration) -> ExitFuture {
        let slot: Arc<Slot<ExitReason>> = Arc::new(Slot::for_task(None));
        let s = Arc::clone(&slot);
        let watched = rt.monitor(pid, move |_pid: Pid, reason: &ExitReason| {
            s.resolve(Ok(reason.clone()));
        });
        match watched {
            Ok(monitor) => ExitFuture {
                reason: CallFuture::waiting(slot, Arc::clone(rt.shared()), rt.shared().clock.deadline(timeout)),
                watch: Some((rt.clone(), pid, monitor)),
            },
            Err(crate::NoProc) => {
                let exiting = rt.shared().table.get(pid).and_then(|p| p.header().exit_reason());
                let slot = Arc::new(Slot::for_task(None));
                slot.resolve(Ok(exiting.unwrap_or(ExitReason::NoProc)));
                ExitFuture {
                    reason: CallFuture::waiting(slot, Arc::clone(rt.shared()), None),
                    watch: None,
                }
            }
        }
    }

    fn unwatch(&mut self) {
        if let Some((rt, pid, monitor)) = self.watch.take() {
            rt.demonitor(pid, monitor);
        }
    }
}

impl Future for ExitFuture {
    type Output = Option<ExitReason>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.reason).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(reason)) => {
                // The monitor fired: it is gone already.
                self.watch = None;
                Poll::Ready(Some(reason))
            }
            Poll::Ready(Err(_)) => {
                self.unwatch();
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for ExitFuture {
    fn drop(&mut self) {
        self.unwatch();
    }
}

impl fmt::Debug for ExitFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExitFuture").field("reason", &self.reason).finish()
    }
}
