//! `ServerRef<G>`: the typed handle to a running server.

use crate::error::{CallError, SendError};
use crate::future::{CallFuture, ExitFuture};
use crate::gen_server::GenServer;
use crate::process::{current, Cell, Envelope, Process, NOT_HELD};
use crate::reply::{OnResolve, ReplySlot, Slot};
use crate::request::{CastCell, HandleCast, HandleRequest, Request, RequestCell};
use crate::runtime::RtShared;
use crate::{signal, ExitObserver, ExitReason, MonitorRef, Naming, NoProc, Pid, RuntimeHandle};
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The default call timeout: 5 seconds, as in Elixir (S10).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A typed, cloneable handle to a server of type `G`.
///
/// Holding one does not keep the server alive: every operation on a server that has
/// exited fails at once (`SendError`, `CallError::NoProc`).
pub struct ServerRef<G: GenServer> {
    cell: Arc<Cell<G>>,
}

impl<G: GenServer> ServerRef<G> {
    pub(crate) fn from_cell(cell: Arc<Cell<G>>) -> Self {
        ServerRef { cell }
    }

    /// The typed handle for `pid`, if it is alive on a runtime and runs a `G`: a checked
    /// downcast.
    pub fn from_pid(pid: Pid) -> Option<ServerRef<G>> {
        let rt = RuntimeHandle::of(pid)?;
        let process = rt.shared().table.get(pid)?;
        process.as_any().downcast::<Cell<G>>().ok().map(ServerRef::from_cell)
    }

    /// The server registered under `name`, if any (S23).
    pub fn whereis(name: &dyn Naming) -> Option<ServerRef<G>> {
        name.whereis().and_then(ServerRef::from_pid)
    }

    /// The server's pid.
    pub fn pid(&self) -> Pid {
        self.cell.header().pid()
    }

    /// True until the server begins to exit.
    pub fn is_alive(&self) -> bool {
        self.cell.header().is_alive()
    }

    /// The runtime the server runs on.
    pub fn runtime(&self) -> RuntimeHandle {
        RuntimeHandle::from_shared(Arc::clone(self.cell.header().rt()))
    }

    /// Sends a message to `handle_info`. Messages from one sender are handled in the
    /// order sent (S10). A dead server hands the message back (Elixir's `send` would drop
    /// it silently).
    ///
    /// # Errors
    ///
    /// `SendError(msg)`, handing the message back, if the server is not alive.
    pub fn send(&self, msg: G::Info) -> Result<(), SendError<G::Info>> {
        self.cell.push(Envelope::Info(msg)).map_err(|env| match env {
            Envelope::Info(m) => SendError(m),
            _ => unreachable!("push hands back what it was given"),
        })
    }

    /// Sends every message of `msgs` to `handle_info`, in order: what as many
    /// [`send`](ServerRef::send)s do, but the server's mailbox is locked once for them all
    /// and the server is woken at most once. For a sender that has a batch at hand (a
    /// connection that read many messages in one go); between two batches of one sender,
    /// and between a batch and that sender's other messages, order is kept as for `send`.
    /// The iterator runs before anything is queued (never under the mailbox's lock).
    ///
    /// # Errors
    ///
    /// `SendError(msgs)`, handing every message back (none was delivered), if the server
    /// is not alive.
    ///
    /// # Example
    ///
    /// ```
    /// use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, Runtime};
    ///
    /// /// Sums what it is sent.
    /// struct Sum(u64);
    ///
    /// impl GenServer for Sum {
    ///     type Args = ();
    ///     type Info = u64;
    ///     type Call = ();
    ///     type Reply = u64;
    ///
    ///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
    ///         Ok(Sum(0))
    ///     }
    ///
    ///     fn handle_info(&mut self, n: u64, _ctx: &mut Context<'_, Self>) -> Flow {
    ///         self.0 += n;
    ///         Flow::Continue
    ///     }
    ///
    ///     fn handle_call(&mut self, (): (), _from: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
    ///         CallFlow::Reply(self.0)
    ///     }
    /// }
    ///
    /// let rt = Runtime::new().unwrap();
    /// let sum = rt.start::<Sum>(()).unwrap();
    /// sum.send_all(1..=100).unwrap();
    /// assert_eq!(sum.call(()).unwrap(), 5050);
    /// rt.shutdown();
    /// ```
    pub fn send_all(&self, msgs: impl IntoIterator<Item = G::Info>) -> Result<(), SendError<Vec<G::Info>>> {
        let envs: Vec<Envelope<G>> = msgs.into_iter().map(Envelope::Info).collect();
        self.cell.push_all(envs).map_err(|envs| {
            SendError(
                envs.into_iter()
                    .map(|env| match env {
                        Envelope::Info(m) => m,
                        _ => unreachable!("push_all hands back what it was given"),
                    })
                    .collect(),
            )
        })
    }

    /// Delivers `msg` to the server's `handle_info` after `delay` (Elixir's
    /// `Process.send_after(pid, msg, ms)`), from any thread, inside a process or not.
    /// Returns a [`Timer`](crate::Timer) that whoever holds it may cancel or read. A timer
    /// aimed at a server that has exited by its deadline delivers nothing.
    ///
    /// # Example
    ///
    /// ```
    /// use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, Runtime};
    /// use std::time::Duration;
    ///
    /// /// Counts the pings it gets.
    /// struct Pings(u32);
    ///
    /// impl GenServer for Pings {
    ///     type Args = ();
    ///     type Info = &'static str;
    ///     type Call = ();
    ///     type Reply = u32;
    ///
    ///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
    ///         Ok(Pings(0))
    ///     }
    ///
    ///     fn handle_info(&mut self, _ping: &'static str, _ctx: &mut Context<'_, Self>) -> Flow {
    ///         self.0 += 1;
    ///         Flow::Continue
    ///     }
    ///
    ///     fn handle_call(&mut self, (): (), _: ReplyTo<u32>, _: &mut Context<'_, Self>) -> CallFlow<u32> {
    ///         CallFlow::Reply(self.0)
    ///     }
    /// }
    ///
    /// let rt = Runtime::new().unwrap();
    /// let pings = rt.start::<Pings>(()).unwrap();
    /// let soon = pings.send_after(Duration::from_millis(10), "soon");
    /// let later = pings.send_after(Duration::from_secs(3600), "later");
    /// // Cancelled from this thread, with the time it had left: it is never handled.
    /// assert!(later.cancel().unwrap() > Duration::from_secs(3000));
    /// while soon.is_active() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(soon.cancel(), None, "already handled");
    /// assert_eq!(pings.call(()), Ok(1));
    /// ```
    pub fn send_after(&self, delay: Duration, msg: G::Info) -> crate::Timer {
        crate::timer::send_after(&self.cell, delay, msg)
    }

    /// Delivers a clone of `msg` to the server's `handle_info` every `period` (Erlang's
    /// `timer:send_interval`), from any thread, until the returned
    /// [`Timer`](crate::Timer) is cancelled or the server exits.
    ///
    /// Drift-free: the n-th tick is due at `start + n × period` on the runtime's timer
    /// clock, whatever the lateness of earlier ticks. Never a backlog: a deadline that
    /// passes while the previous tick still waits unhandled in the mailbox is counted in
    /// [`Timer::missed`](crate::Timer::missed) instead of queued. A period under the timer
    /// wheel's resolution (100 µs) is taken as 100 µs.
    pub fn send_interval(&self, period: Duration, msg: G::Info) -> crate::Timer
    where
        G::Info: Clone,
    {
        crate::timer::send_interval(&self.cell, period, msg)
    }

    /// Calls the server and waits up to 5 s for the reply (S10).
    ///
    /// # Errors
    ///
    /// As [`ServerRef::call_timeout`], the timeout being [`DEFAULT_CALL_TIMEOUT`].
    pub fn call(&self, req: G::Call) -> Result<G::Reply, CallError> {
        self.call_timeout(req, DEFAULT_CALL_TIMEOUT)
    }

    /// Calls the server and waits up to `timeout` for the reply. Never hangs: `NoProc` at
    /// once for a dead server (S12), its exit reason at once if it dies first (S14),
    /// `CallingSelf` for a call to oneself (S13), `Deadlock` if the call would close a
    /// cycle of calls, `Timeout` at the deadline, the late reply then being dropped (S11).
    /// A zero timeout returns `Timeout` at once without sending. `Duration::MAX` waits
    /// forever.
    ///
    /// # Errors
    ///
    /// A [`CallError`], as soon as it is known: `Timeout`, `NoProc`, `CallingSelf`, `Deadlock`,
    /// `Exited(reason)` if the server died before replying, `NoReply` if it dropped the
    /// [`ReplyTo`](crate::ReplyTo) unanswered.
    ///
    /// # Example
    ///
    /// ```
    /// use arbor_core::{CallError, CallFlow, Context, ExitReason, GenServer, ReplyTo, Runtime};
    /// use std::time::Duration;
    ///
    /// /// Answers after sleeping as long as asked.
    /// struct Sleeper;
    ///
    /// impl GenServer for Sleeper {
    ///     type Args = ();
    ///     type Info = ();
    ///     type Call = Duration;
    ///     type Reply = ();
    ///
    ///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
    ///         Ok(Sleeper)
    ///     }
    ///
    ///     fn handle_call(&mut self, d: Duration, _: ReplyTo<()>, _: &mut Context<'_, Self>) -> CallFlow<()> {
    ///         std::thread::sleep(d);
    ///         CallFlow::Reply(())
    ///     }
    /// }
    ///
    /// let rt = Runtime::new().unwrap();
    /// let sleeper = rt.start::<Sleeper>(()).unwrap();
    /// assert_eq!(sleeper.call_timeout(Duration::ZERO, Duration::from_secs(5)), Ok(()));
    /// let short = Duration::from_millis(20);
    /// // Still busy at the deadline: the call gives up; the late reply will be dropped.
    /// assert_eq!(sleeper.call_timeout(Duration::from_millis(200), short), Err(CallError::Timeout));
    /// sleeper.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    /// assert_eq!(sleeper.call_timeout(Duration::ZERO, short), Err(CallError::NoProc));
    /// ```
    pub fn call_timeout(&self, req: G::Call, timeout: Duration) -> Result<G::Reply, CallError> {
        // A zero timeout still sends the request (as OTP's `call(.., 0)` and as `stop` do):
        // it means "do not wait", and the call returns `Timeout` unless the reply is there.
        let target = self.pid();
        let caller = current();
        if let Some(c) = &caller {
            if c.header().pid() == target {
                return Err(CallError::CallingSelf);
            }
        }
        if !self.is_alive() {
            return Err(CallError::NoProc);
        }
        let _wait = match &caller {
            Some(c) => Some(c.header().begin_wait(target)?),
            None => None,
        };
        let slot = Arc::new(Slot::with_caller(caller.as_ref().map(|c| c.header().pid())));
        if self.cell.push(Envelope::Call(req, slot.clone(), NOT_HELD)).is_err() {
            return Err(CallError::NoProc);
        }
        self.cell.header().rt().wait(&slot, timeout)
    }

    /// Sends a typed request (see [`HandleRequest`]) and waits up to 5 s for its reply,
    /// whose type the request declares: `server.request(Get)` is a `Result<u64,
    /// CallError>` if `Get: Request<Reply = u64>`. Checked at compile time: a server that
    /// does not implement `HandleRequest<Get>` cannot be sent a `Get`.
    ///
    /// # Errors
    ///
    /// As [`ServerRef::call_timeout`], the timeout being [`DEFAULT_CALL_TIMEOUT`].
    pub fn request<Q: Request>(&self, req: Q) -> Result<Q::Reply, CallError>
    where
        G: HandleRequest<Q>,
    {
        self.request_timeout(req, DEFAULT_CALL_TIMEOUT)
    }

    /// Sends a typed request and waits up to `timeout` for its reply. The guarantees of
    /// [`ServerRef::call_timeout`] hold (NoProc, the exit reason at once, CallingSelf,
    /// Deadlock, the late reply dropped).
    ///
    /// # Errors
    ///
    /// As [`ServerRef::call_timeout`].
    pub fn request_timeout<Q: Request>(&self, req: Q, timeout: Duration) -> Result<Q::Reply, CallError>
    where
        G: HandleRequest<Q>,
    {
        // A zero timeout sends and does not wait (see `call_timeout`).
        let target = self.pid();
        let caller = current();
        if let Some(c) = &caller {
            if c.header().pid() == target {
                return Err(CallError::CallingSelf);
            }
        }
        if !self.is_alive() {
            return Err(CallError::NoProc);
        }
        let _wait = match &caller {
            Some(c) => Some(c.header().begin_wait(target)?),
            None => None,
        };
        let slot = Slot::with_caller(caller.as_ref().map(|c| c.header().pid()));
        let cell = Arc::new(RequestCell::new(req, slot));
        if self.cell.push(Envelope::Request(cell.clone())).is_err() {
            return Err(CallError::NoProc);
        }
        self.cell.header().rt().wait(cell.slot(), timeout)
    }

    /// [`ServerRef::request`] from async code, as [`ServerRef::call_async`].
    ///
    /// # Errors
    ///
    /// The future's output: as [`ServerRef::call_timeout`].
    pub fn request_async<Q: Request>(&self, req: Q) -> CallFuture<Q::Reply>
    where
        G: HandleRequest<Q>,
    {
        self.request_timeout_async(req, DEFAULT_CALL_TIMEOUT)
    }

    /// [`ServerRef::request_timeout`] from async code, as [`ServerRef::call_timeout_async`].
    ///
    /// # Errors
    ///
    /// The future's output: as [`ServerRef::call_timeout`].
    pub fn request_timeout_async<Q: Request>(&self, req: Q, timeout: Duration) -> CallFuture<Q::Reply>
    where
        G: HandleRequest<Q>,
    {
        // A zero timeout sends and does not wait (see `call_timeout`).
        let caller = current().map(|c| c.header().pid());
        if caller == Some(self.pid()) {
            return CallFuture::failed(CallError::CallingSelf);
        }
        if !self.is_alive() {
            return CallFuture::failed(CallError::NoProc);
        }
        let cell = Arc::new(RequestCell::new(req, Slot::for_task(caller)));
        if self.cell.push(Envelope::Request(cell.clone())).is_err() {
            return CallFuture::failed(CallError::NoProc);
        }
        CallFuture::waiting(
            cell,
            Arc::clone(self.cell.header().rt()),
            self.cell.header().rt().clock.deadline(timeout),
        )
    }

    /// Calls the server without waiting: the request is sent now, and `on_reply` runs
    /// once with the outcome, on whichever thread settles the call. Nothing blocks, so a
    /// thread can have any number of calls in flight (a connection's reader that hands
    /// each incoming call to a server and goes on reading, say), and their requests reach
    /// the server in the order they were sent, in order with this sender's other messages
    /// (S10).
    ///
    /// The outcome is what [`ServerRef::call_timeout`] returns, with the same guarantees:
    /// `NoProc` at once for a dead server, `CallingSelf` for a call to oneself,
    /// `Exited(reason)` as soon as the server dies before replying, `NoReply` if it drops
    /// the [`ReplyTo`](crate::ReplyTo) unanswered, `Timeout` at the deadline (a timer on
    /// the runtime's timer service, cancelled when anything else settles the call first;
    /// `Duration::MAX` arms none). A zero timeout sends the request and settles the call
    /// with `Timeout` at once (as `call_timeout`, which does not wait for it either). The
    /// late reply of a timed-out call is dropped. Nothing waits, so no `Deadlock` is
    /// detected or possible: a cycle of `call_with`s is a cycle of messages.
    ///
    /// `on_reply` runs exactly once (`tests/call_with.rs` counts), on:
    /// - the calling thread, before `call_with` returns, for `NoProc`, `CallingSelf` and a
    ///   zero timeout;
    /// - the thread that replies: the server's own worker thread for a reply from
    ///   `handle_call`, or the thread that calls [`ReplyTo::reply`](crate::ReplyTo::reply)
    ///   (or drops the last `ReplyTo`, for `NoReply`);
    /// - the thread on which the server dies, for `Exited` (its worker, or the thread that
    ///   kills it);
    /// - the runtime's timer thread, for `Timeout`.
    ///
    /// So it must not block, nor run long: hand anything slow to another thread (or send a
    /// message). Blocking there stalls a worker, the timer thread, or the replying
    /// server. A panic in it is caught and logged; the runtime carries on.
    ///
    /// # Example
    ///
    /// ```
    /// use arbor_core::{CallFlow, Context, ExitReason, GenServer, ReplyTo, Runtime};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// struct Doubler;
    ///
    /// impl GenServer for Doubler {
    ///     type Args = ();
    ///     type Info = ();
    ///     type Call = u64;
    ///     type Reply = u64;
    ///
    ///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
    ///         Ok(Doubler)
    ///     }
    ///
    ///     fn handle_call(&mut self, n: u64, _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
    ///         CallFlow::Reply(2 * n)
    ///     }
    /// }
    ///
    /// let rt = Runtime::new().unwrap();
    /// let doubler = rt.start::<Doubler>(()).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// for n in 0..3 {
    ///     let tx = tx.clone();
    ///     // Three calls in flight from one thread; each callback only sends.
    ///     doubler.call_with(n, Duration::from_secs(5), move |r| tx.send((n, r)).unwrap());
    /// }
    /// let mut got: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
    /// got.sort_by_key(|(n, _)| *n);
    /// assert_eq!(got, vec![(0, Ok(0)), (1, Ok(2)), (2, Ok(4))]);
    /// ```
    pub fn call_with(
        &self,
        req: G::Call,
        timeout: Duration,
        on_reply: impl FnOnce(Result<G::Reply, CallError>) + Send + 'static,
    ) {
        let slot = match self.callback_slot(timeout, on_reply) {
            Ok(slot) => Arc::new(slot),
            Err(()) => return,
        };
        if let Err(env) = self.cell.push(Envelope::Call(req, slot.clone(), NOT_HELD)) {
            slot.resolve(Err(CallError::NoProc));
            crate::panic::drop_quietly(env, "a call request");
            return;
        }
        self.arm_callback_timeout(slot, timeout);
    }

    /// [`ServerRef::call_with`] for a typed request (see [`HandleRequest`]): sends `req`
    /// now; `on_reply` runs once with the outcome, on the threads and with the guarantees
    /// that `call_with` describes. It must not block.
    pub fn request_with<Q: Request>(
        &self,
        req: Q,
        timeout: Duration,
        on_reply: impl FnOnce(Result<Q::Reply, CallError>) + Send + 'static,
    ) where
        G: HandleRequest<Q>,
    {
        let slot = match self.callback_slot(timeout, on_reply) {
            Ok(slot) => slot,
            Err(()) => return,
        };
        let cell = Arc::new(RequestCell::new(req, slot));
        if let Err(env) = self.cell.push(Envelope::Request(cell.clone())) {
            cell.slot().resolve(Err(CallError::NoProc));
            drop(cell);
            crate::panic::drop_quietly(env, "a request");
            return;
        }
        self.arm_callback_timeout(cell, timeout);
    }

    /// The checks `call_with` makes before sending (their error goes to `on_reply` at
    /// once: `Err(())`), and the slot whose resolution runs `on_reply`.
    fn callback_slot<R: Send + 'static>(
        &self,
        timeout: Duration,
        on_reply: impl FnOnce(Result<R, CallError>) + Send + 'static,
    ) -> Result<Slot<R>, ()> {
        let caller = current().map(|c| c.header().pid());
        let early = if caller == Some(self.pid()) {
            Some(CallError::CallingSelf)
        } else if !self.is_alive() {
            Some(CallError::NoProc)
        } else {
            None
        };
        if let Some(err) = early {
            run_callback(on_reply, Err(err));
            return Err(());
        }
        // The runtime, to cancel the timeout's timer, only if one may be armed.
        let rt: Option<Weak<RtShared>> =
            timed(self.cell.header().rt(), timeout).then(|| Arc::downgrade(self.cell.header().rt()));
        let on_resolve: OnResolve<R> = Box::new(move |outcome, timer| {
            if let (Some(key), Some(rt)) = (timer, &rt) {
                // Settled by anything but its own timer: the timer goes at once. (A
                // `Timeout` comes only from that timer, which has fired already.)
                if !matches!(outcome, Err(CallError::Timeout)) {
                    if let Some(rt) = rt.upgrade() {
                        rt.timers.cancel(key);
                    }
                }
            }
            run_callback(on_reply, outcome);
        });
        Ok(Slot::with_callback(caller, on_resolve))
    }

    /// Arms the timeout of a call sent with a callback (none for `Duration::MAX`; a zero
    /// timeout settles it at once). The timer's key is handed to the slot, whose
    /// resolution cancels it; if the call was settled before the key could be handed
    /// over, the timer is cancelled here.
    fn arm_callback_timeout<R: Send + 'static>(&self, holder: Arc<impl ReplySlot<R>>, timeout: Duration) {
        if !timed(self.cell.header().rt(), timeout) {
            return;
        }
        if timeout.is_zero() {
            holder.slot().resolve(Err(CallError::Timeout));
            return;
        }
        if holder.slot().is_done() {
            return;
        }
        let timers = &self.cell.header().rt().timers;
        let fired = Arc::clone(&holder);
        let key = timers.insert(
            timeout,
            Box::new(move |_key: u64| {
                fired.slot().resolve(Err(CallError::Timeout));
            }),
        );
        if !holder.slot().set_timer(key) {
            timers.cancel(key);
        }
    }

    /// Casts `msg` to the server's [`HandleCast<M>`] (Elixir's `GenServer.cast`): fire
    /// and forget, in order with the other messages from this sender (S10). Unlike
    /// [`ServerRef::send`] it reaches `handle_cast`, never `handle_info`, so a server's
    /// public casts and its own timer messages are different doors.
    ///
    /// # Errors
    ///
    /// `SendError(msg)`, handing the message back, if the server is not alive (Elixir's
    /// cast would drop it silently).
    pub fn cast<M: Send + 'static>(&self, msg: M) -> Result<(), SendError<M>>
    where
        G: HandleCast<M>,
    {
        self.cell
            .push(Envelope::Cast(Box::new(CastCell(msg))))
            .map_err(|env| match env {
                Envelope::Cast(c) => match c.into_any().downcast::<CastCell<M>>() {
                    Ok(cast) => SendError(cast.0),
                    Err(_) => unreachable!("push hands back what it was given"),
                },
                _ => unreachable!("push hands back what it was given"),
            })
    }

    /// Calls the server from async code: the request is sent now, and the future resolves
    /// to the reply, within 5 s (S10). No executor is needed or assumed: it works on
    /// tokio, async-std, smol or a hand-written `block_on`, and never blocks the thread
    /// that polls it.
    ///
    /// The output is what [`ServerRef::call`] returns, with the same guarantees: `NoProc`
    /// at once, `Exited(reason)` as soon as the server dies, `CallingSelf` for a call to
    /// oneself, `Timeout` at the deadline (from the runtime's timer service), `NoReply`.
    /// Dropping the future abandons the call cleanly (its reply, if one comes, is dropped).
    ///
    /// A future blocks no process, so it takes no part in `Deadlock` detection: awaiting
    /// it cannot close a cycle of blocked processes. (Blocking on it inside a handler
    /// with some `block_on` would: use [`ServerRef::call`] there, which detects cycles.)
    ///
    /// # Example
    ///
    /// ```
    /// use arbor_core::{CallFlow, Context, ExitReason, GenServer, ReplyTo, Runtime};
    ///
    /// struct Doubler;
    ///
    /// impl GenServer for Doubler {
    ///     type Args = ();
    ///     type Info = ();
    ///     type Call = u64;
    ///     type Reply = u64;
    ///
    ///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
    ///         Ok(Doubler)
    ///     }
    ///
    ///     fn handle_call(&mut self, n: u64, _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
    ///         CallFlow::Reply(2 * n)
    ///     }
    /// }
    ///
    /// let rt = Runtime::new().unwrap();
    /// let doubler = rt.start::<Doubler>(()).unwrap();
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// // Any executor's `block_on` or `.await` will do; this one is ten lines of std.
    /// assert_eq!(block_on(doubler.call_async(21)), Ok(42));
    /// ```
    ///
    /// # Errors
    ///
    /// The future's output: as [`ServerRef::call_timeout`].
    pub fn call_async(&self, req: G::Call) -> CallFuture<G::Reply> {
        self.call_timeout_async(req, DEFAULT_CALL_TIMEOUT)
    }

    /// Calls the server from async code, waiting up to `timeout` (`Duration::MAX`: no
    /// timeout). As [`ServerRef::call_async`].
    ///
    /// # Errors
    ///
    /// The future's output: as [`ServerRef::call_timeout`].
    pub fn call_timeout_async(&self, req: G::Call, timeout: Duration) -> CallFuture<G::Reply> {
        let slot = match self.task_slot(Some(timeout)) {
            Ok(slot) => slot,
            Err(e) => return CallFuture::failed(e),
        };
        if self.cell.push(Envelope::Call(req, slot.clone(), NOT_HELD)).is_err() {
            return CallFuture::failed(CallError::NoProc);
        }
        CallFuture::waiting(
            slot,
            Arc::clone(self.cell.header().rt()),
            self.cell.header().rt().clock.deadline(timeout),
        )
    }

    /// The checks a call future makes before sending, and its slot. (A zero timeout still
    /// sends: the future then ends with `Timeout` unless the reply is there.)
    pub(crate) fn task_slot<R>(&self, timeout: Option<Duration>) -> Result<Arc<Slot<R>>, CallError> {
        let _ = timeout;
        let caller = current().map(|c| c.header().pid());
        if caller == Some(self.pid()) {
            return Err(CallError::CallingSelf);
        }
        if !self.is_alive() {
            return Err(CallError::NoProc);
        }
        Ok(Arc::new(Slot::for_task(caller)))
    }

    /// [`ServerRef::stop`] from async code: the stop request is sent now; the future
    /// resolves once the server has exited, or with `Timeout` after `timeout`
    /// (`Duration::MAX`: none). Dropping it leaves the stop under way.
    ///
    /// # Errors
    ///
    /// The future's output: as [`ServerRef::stop`].
    pub fn stop_async(&self, reason: ExitReason, timeout: Duration) -> CallFuture<()> {
        // As the blocking stop, a zero timeout still sends the request.
        let slot = match self.task_slot(None) {
            Ok(slot) => slot,
            Err(e) => return CallFuture::failed(e),
        };
        if self
            .cell
            .push(Envelope::Stop(Box::new((reason, slot.clone(), NOT_HELD))))
            .is_err()
        {
            return CallFuture::failed(CallError::NoProc);
        }
        CallFuture::waiting(
            slot,
            Arc::clone(self.cell.header().rt()),
            self.cell.header().rt().clock.deadline(timeout),
        )
    }

    /// [`ServerRef::wait_exit`] from async code: the exit reason once the server has
    /// exited, or `None` if it is still running after `timeout` (`Duration::MAX`: none).
    pub fn wait_exit_async(&self, timeout: Duration) -> ExitFuture {
        ExitFuture::new(&self.runtime(), self.pid(), timeout)
    }

    /// Asks the server to stop with `reason` and waits until it has exited (S18): messages
    /// queued before the request are handled first, then `terminate(reason)` runs, even if
    /// the server does not trap exits. `NoProc` if it is not alive, `CallingSelf` from the
    /// server itself, `Timeout` if it has not exited within `timeout` (`Duration::MAX`:
    /// wait forever), `Exited(r)` if it exited for another reason first, or exited with
    /// another reason than the one asked for (its `terminate` panicked, say: as OTP's
    /// `proc_lib:stop`, the stop then fails with the reason it exited with).
    ///
    /// # Errors
    ///
    /// `NoProc`, `CallingSelf`, `Timeout` or `Exited(reason)`, as said above.
    pub fn stop(&self, reason: ExitReason, timeout: Duration) -> Result<(), CallError> {
        if let Some(c) = current() {
            if c.header().pid() == self.pid() {
                return Err(CallError::CallingSelf);
            }
        }
        if !self.is_alive() {
            return Err(CallError::NoProc);
        }
        let slot = Arc::new(Slot::new());
        if self
            .cell
            .push(Envelope::Stop(Box::new((reason, slot.clone(), NOT_HELD))))
            .is_err()
        {
            return Err(CallError::NoProc);
        }
        self.cell.header().rt().wait(&slot, timeout)
    }

    /// Sends the server an exit signal (from the calling process, or from outside).
    pub fn exit(&self, reason: ExitReason) {
        let from = current()
            .map(|c| c.header().pid())
            .unwrap_or_else(|| Pid::external(self.pid().rt()));
        signal::exit(self.cell.header().rt(), from, self.pid(), reason)
    }

    /// Kills the server: untrappable, no `terminate`, reason `Killed`. Its names are
    /// released and its links and monitors told at once; a handler already running
    /// finishes detached and its results are discarded (a Rust thread cannot be
    /// pre-empted).
    pub fn kill(&self) {
        Arc::clone(&self.cell).die(ExitReason::Killed)
    }

    /// Calls `observer` when the server exits (with `NoProc` error if it already has).
    ///
    /// # Errors
    ///
    /// `NoProc` if the server has already exited; `observer` is then never called.
    pub fn monitor_with(&self, observer: impl ExitObserver) -> Result<MonitorRef, NoProc> {
        signal::monitor_observer(self.cell.header().rt(), self.pid(), Arc::new(observer))
    }

    /// Waits until the server has exited, up to `timeout`; returns its exit reason, or
    /// `None` on timeout.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitReason> {
        match self.cell.header().exit_reason() {
            Some(reason) => Some(reason),
            // The server may exit, and leave the table, between the look above and the
            // monitor: the runtime then says `NoProc`, but this handle still knows the reason.
            None => match self.runtime().wait_exit(self.pid(), timeout) {
                Some(ExitReason::NoProc) => self.cell.header().exit_reason().or(Some(ExitReason::NoProc)),
                other => other,
            },
        }
    }

    /// Number of messages waiting in the server's mailbox: a snapshot. Seen from outside,
    /// the part the server has already taken into its own batch is counted as of its last
    /// batch or run, so while it is busy this may include up to one run's worth (64) of
    /// messages it has handled since (`Context::mailbox_len`, from the server itself, is
    /// exact).
    pub fn mailbox_len(&self) -> usize {
        self.cell.queue_len()
    }
}

/// True if a call waiting `timeout` has a deadline (`Duration::MAX`, or one too far to
/// express, waits forever).
fn timed(rt: &RtShared, timeout: Duration) -> bool {
    timeout != Duration::MAX && rt.clock.deadline(timeout).is_some()
}

/// Runs a call's callback; a panic in it is caught and logged.
fn run_callback<R>(f: impl FnOnce(Result<R, CallError>), outcome: Result<R, CallError>) {
    if let Err(msg) = crate::panic::catch(move || f(outcome)) {
        log::error!("arbor: a call's callback panicked: {msg}");
    }
}

impl<G: GenServer> Clone for ServerRef<G> {
    fn clone(&self) -> Self {
        ServerRef {
            cell: Arc::clone(&self.cell),
        }
    }
}

impl<G: GenServer> PartialEq for ServerRef<G> {
    fn eq(&self, other: &Self) -> bool {
        self.pid() == other.pid()
    }
}

impl<G: GenServer> Eq for ServerRef<G> {}

impl<G: GenServer> std::hash::Hash for ServerRef<G> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pid().hash(state)
    }
}

impl<G: GenServer> fmt::Debug for ServerRef<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerRef<{}>({})", std::any::type_name::<G>(), self.pid())
    }
}
