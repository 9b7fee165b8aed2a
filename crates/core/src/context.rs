//! `Context`: a callback's window onto its own process and the runtime.

use crate::error::NoProc;
use crate::gen_server::{Flow, GenServer};
use crate::process::{Cell, Envelope, Local};
use crate::sync::{AtomicU64, Ordering};
use crate::{signal, ExitReason, MonitorRef, Pid, RuntimeHandle, ServerRef};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Work a process gives itself to run before any queued message (S8).
pub(crate) type ContinueFn<G> = Box<dyn FnOnce(&mut G, &mut Context<'_, G>) -> Flow + Send>;

/// Ids of timers: unique in the program, never reused.
static NEXT_TIMER: AtomicU64 = AtomicU64::new(1);

/// Identifies a timer armed with [`Context::send_after`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerRef(pub(crate) u64);

/// What every callback receives beside the state: the process's own pid, its timers,
/// links, monitors, and the runtime it runs on.
pub struct Context<'a, G: GenServer> {
    cell: &'a Arc<Cell<G>>,
    local: &'a mut Local<G>,
}

impl<'a, G: GenServer> Context<'a, G> {
    pub(crate) fn new(cell: &'a Arc<Cell<G>>, local: &'a mut Local<G>) -> Self {
        Context { cell, local }
    }

    pub(crate) fn local_mut(&mut self) -> &mut Local<G> {
        self.local
    }

    /// This process's pid (Elixir's `self()`).
    pub fn pid(&self) -> Pid {
        self.cell.header().pid()
    }

    /// The process that started this one with `start_link`; for a root process, the
    /// runtime's pseudo-pid.
    pub fn parent(&self) -> Pid {
        self.cell.header().parent()
    }

    /// True if `pid` is this process's parent (see [`Context::parent`]), or the runtime
    /// itself: a runtime's shutdown stops every root and orphan as a parent would.
    pub fn is_parent(&self, pid: Pid) -> bool {
        pid == self.cell.header().parent() || (pid.is_runtime() && pid.rt() == self.pid().rt())
    }

    /// A typed handle to this process.
    pub fn myself(&self) -> ServerRef<G> {
        ServerRef::from_cell(Arc::clone(self.cell))
    }

    /// The runtime this process runs on.
    pub fn runtime(&self) -> RuntimeHandle {
        RuntimeHandle::from_shared(Arc::clone(self.cell.header().rt()))
    }

    /// The runtime's current instant ([`RuntimeHandle::now`]): `Instant::now()`, or the
    /// virtual clock of a deterministic runtime. Measure time in handlers with this.
    pub fn now(&self) -> std::time::Instant {
        self.cell.header().rt().now()
    }

    /// Sends a message to this process's own mailbox (Elixir's `send(self(), msg)`): it is
    /// handled after the messages already queued.
    pub fn send_self(&self, msg: G::Info) {
        // Cannot fail while the process runs; if it is exiting, the message is dropped
        // with the rest of its mailbox.
        let _ = self.cell.push(Envelope::Info(msg));
    }

    /// Runs `f` before any queued message, even one already in the mailbox (Elixir's
    /// `{:continue, arg}` and `handle_continue`, S8). Continuations run in the order given.
    pub fn continue_with(&mut self, f: impl FnOnce(&mut G, &mut Context<'_, G>) -> Flow + Send + 'static) {
        self.local.push_continue(Box::new(f));
    }

    /// Sets an inactivity timeout (S9, Elixir's `{:noreply, state, timeout}`, `{:reply,
    /// reply, state, timeout}` and `{:ok, state, timeout}`): if no message arrives within
    /// `after` once the current callback has returned, [`GenServer::handle_timeout`] is
    /// called. Any message that arrives first (a call, an info message, a timer's message,
    /// a trapped exit, a `Down`) cancels it; so does the next callback's return, unless it
    /// sets a timeout again, since in Elixir each return names its own. A zero timeout
    /// fires at once unless a message (or a continuation) is already waiting.
    /// `Duration::MAX` means no timeout (`:infinity`). The last call in a callback wins.
    pub fn set_timeout(&mut self, after: Duration) {
        self.local.request_timeout(after);
    }

    /// Delivers `msg` to `handle_info` after `delay` (S25). A zero delay still goes
    /// through the mailbox, after messages already queued. The timer dies with the process
    /// (S29). The [`TimerRef`] is this process's own (cancel it with
    /// [`Context::cancel_timer`]); for a timer that another process or a plain thread may
    /// cancel, arm it with `ctx.myself().send_after(delay, msg)`
    /// ([`ServerRef::send_after`]), which returns a shareable [`Timer`](crate::Timer).
    ///
    /// # Example
    ///
    /// ```
    /// use arbor_core::{Context, ExitReason, Flow, GenServer, Runtime};
    /// use std::time::{Duration, Instant};
    ///
    /// /// Rings once, 20 ms after it starts, and stops.
    /// struct Alarm(Instant);
    ///
    /// enum Ring {
    ///     Now,
    /// }
    ///
    /// impl GenServer for Alarm {
    ///     type Args = ();
    ///     type Info = Ring;
    ///     type Call = ();
    ///     type Reply = ();
    ///
    ///     fn init((): (), ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
    ///         let armed = Instant::now();
    ///         ctx.send_after(Duration::from_millis(20), Ring::Now);
    ///         Ok(Alarm(armed))
    ///     }
    ///
    ///     fn handle_info(&mut self, Ring::Now: Ring, _ctx: &mut Context<'_, Self>) -> Flow {
    ///         assert!(self.0.elapsed() >= Duration::from_millis(20), "never early");
    ///         Flow::Stop(ExitReason::Normal)
    ///     }
    /// }
    ///
    /// let rt = Runtime::new().unwrap();
    /// let alarm = rt.start::<Alarm>(()).unwrap();
    /// assert_eq!(alarm.wait_exit(Duration::from_secs(5)), Some(ExitReason::Normal));
    /// ```
    pub fn send_after(&mut self, delay: Duration, msg: G::Info) -> TimerRef {
        // The id is unique in the program and never reused (the wheel's keys are reused
        // with a 32-bit generation), so a stale reference can never name a newer timer.
        let id = NEXT_TIMER.fetch_add(1, Ordering::Relaxed);
        let cell = Arc::clone(self.cell);
        let key = self.cell.header().rt().timers.insert(
            delay,
            Box::new(move |_key| {
                let _ = cell.push(Envelope::Timer(id, msg));
            }),
        );
        self.local.add_timer(id, key);
        TimerRef(id)
    }

    /// Delivers a clone of `msg` to this process's `handle_info` every `period`,
    /// drift-free, until the returned [`Timer`](crate::Timer) is cancelled (from here or
    /// from anywhere it is held) or the process exits: as
    /// [`ServerRef::send_interval`], aimed at oneself.
    ///
    /// # Example
    ///
    /// ```
    /// use arbor_core::{Context, ExitReason, Flow, GenServer, Runtime, Timer};
    /// use std::time::Duration;
    ///
    /// /// Stops at its third tick.
    /// struct Ticker(u32, Option<Timer>);
    ///
    /// #[derive(Clone)]
    /// struct Tick;
    ///
    /// impl GenServer for Ticker {
    ///     type Args = ();
    ///     type Info = Tick;
    ///     type Call = ();
    ///     type Reply = ();
    ///
    ///     fn init((): (), ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
    ///         let timer = ctx.send_interval(Duration::from_millis(5), Tick);
    ///         Ok(Ticker(0, Some(timer)))
    ///     }
    ///
    ///     fn handle_info(&mut self, Tick: Tick, _ctx: &mut Context<'_, Self>) -> Flow {
    ///         self.0 += 1;
    ///         if self.0 < 3 {
    ///             return Flow::Continue;
    ///         }
    ///         if let Some(timer) = self.1.take() {
    ///             timer.cancel();
    ///         }
    ///         Flow::Stop(ExitReason::Normal)
    ///     }
    /// }
    ///
    /// let rt = Runtime::new().unwrap();
    /// let ticker = rt.start::<Ticker>(()).unwrap();
    /// assert_eq!(ticker.wait_exit(Duration::from_secs(60)), Some(ExitReason::Normal));
    /// ```
    pub fn send_interval(&mut self, period: Duration, msg: G::Info) -> crate::Timer
    where
        G::Info: Clone,
    {
        crate::timer::send_interval(self.cell, period, msg)
    }

    /// Cancels a timer: returns the time it had left, or `None` if it had already fired,
    /// was already cancelled, or is unknown (S27). Beyond OTP: once this returns, the
    /// timer's message is never handled, even if it had already reached the mailbox.
    pub fn cancel_timer(&mut self, timer: TimerRef) -> Option<Duration> {
        let key = self.local.remove_timer(timer.0)?;
        self.cell.header().rt().timers.cancel(key)
    }

    /// The time a pending timer has left, or `None` once it has fired or been cancelled
    /// (S26).
    pub fn read_timer(&self, timer: TimerRef) -> Option<Duration> {
        let key = self.local.timer_key(timer.0)?;
        self.cell.header().rt().timers.remaining(key)
    }

    /// Turns exit trapping on or off; returns the previous setting. A trapping process
    /// gets exit signals from links as [`GenServer::handle_exit`] calls instead of dying
    /// (S20, S35).
    pub fn trap_exits(&mut self, on: bool) -> bool {
        self.cell.header().set_trap_exits(on)
    }

    /// Links this process to `pid` (both ways, S34). Linking twice or to oneself is a
    /// no-op. If `pid` is not alive: a trapping process gets an exit message with `NoProc`
    /// and `Ok`; a non-trapping one gets `Err(NoProc)` (OTP would crash it, S37).
    ///
    /// # Errors
    ///
    /// `NoProc` if `pid` is not alive and this process does not trap exits; and also when
    /// this process is itself exiting (it was killed while this handler runs): no link is
    /// made, and `pid` gets this process's exit signal, as if the link had been made just
    /// before the exit.
    pub fn link(&mut self, pid: Pid) -> Result<(), NoProc> {
        signal::link(&(Arc::clone(self.cell) as Arc<dyn crate::process::Process>), pid)
    }

    /// Removes a link, if there is one (S37).
    pub fn unlink(&mut self, pid: Pid) {
        signal::unlink(self.cell.header(), pid)
    }

    /// Monitors `pid`: [`GenServer::handle_down`] is called once it exits, at once with
    /// `NoProc` if it is already dead (S31, S32). Each call makes a new monitor.
    pub fn monitor(&mut self, pid: Pid) -> MonitorRef {
        signal::monitor_from(self.cell.header(), pid)
    }

    /// Removes a monitor; true if it was active (S33: `demonitor` with `:info`). Beyond
    /// OTP's default, a `Down` of this monitor already queued is dropped too (`:flush`), so
    /// after this returns `handle_down` never sees it.
    pub fn demonitor(&mut self, pid: Pid, monitor: MonitorRef) -> bool {
        let active = signal::demonitor_from(self.cell.header(), pid, monitor);
        self.cell.flush_down(self.local, monitor);
        active
    }

    /// Removes a monitor this process holds, by its reference alone (Elixir's
    /// `Process.demonitor(ref)`): true if it was active. As [`Context::demonitor`], a
    /// `Down` of it already queued is dropped too.
    pub fn demonitor_ref(&mut self, monitor: MonitorRef) -> bool {
        let target = self.cell.header().held_monitor_target(monitor);
        let active = match target {
            Some(pid) => signal::demonitor_from(self.cell.header(), pid, monitor),
            None => false,
        };
        self.cell.flush_down(self.local, monitor);
        active
    }

    /// Sends an exit signal to `pid` from this process (S36).
    pub fn exit(&self, pid: Pid, reason: ExitReason) {
        signal::exit(self.cell.header().rt(), self.pid(), pid, reason)
    }

    /// Kills `pid`: untrappable, no `terminate`, reason `Killed`.
    pub fn kill(&self, pid: Pid) {
        signal::kill(self.cell.header().rt(), pid)
    }

    /// Number of messages waiting in this process's mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.cell.queue_len_exact(self.local)
    }
}

impl<G: GenServer> fmt::Debug for Context<'_, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").field("pid", &self.pid()).finish()
    }
}
