//! The `GenServer` trait and the values its callbacks return.

use crate::{Context, ExitReason, MonitorRef, Pid, ReplyTo, ServerRef, StartError, StartOpts};

/// What a callback asks the server to do next.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum Flow {
    /// Keep running (Elixir's `{:noreply, state}`).
    Continue,
    /// Run `terminate(reason)`, then exit with `reason` (`{:stop, reason, state}`).
    Stop(ExitReason),
}

/// What `handle_call` asks the server to do next.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum CallFlow<R> {
    /// Reply now and keep running (`{:reply, r, state}`).
    Reply(R),
    /// Keep running without replying; the reply is sent later through the
    /// [`ReplyTo`] handle (`{:noreply, state}`, S16).
    NoReply,
    /// Run `terminate(reason)`, then send the reply, then exit (`{:stop, reason, r,
    /// state}`, S15).
    Stop(ExitReason, R),
    /// Run `terminate(reason)` and exit without replying; the caller gets
    /// [`CallError::Exited`](crate::CallError::Exited) with `reason` (S14).
    StopNoReply(ExitReason),
}

/// A monitor fired: the monitored process exited (S31), or was already dead when the
/// monitor was set (`reason` = `NoProc`, S32).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Down {
    /// The monitor, as `monitor` returned it.
    pub monitor: MonitorRef,
    /// The process that exited.
    pub pid: Pid,
    /// Its exit reason (`Killed` if it was killed).
    pub reason: ExitReason,
}

/// A generic server: Elixir's `GenServer`, with the state as the implementing type.
///
/// Only `init` is required. The defaults follow `use GenServer` (S17): an info message
/// without a handler is logged and ignored, a call without `handle_call` crashes the
/// server (the caller gets the exit), `terminate` does nothing.
///
/// A callback that panics is caught: the server exits with
/// [`ExitReason::Panic`], `terminate` runs, and the worker thread carries on.
///
/// # Example
///
/// A stack: pushes are messages (`send`, to `handle_info`), pops are calls.
///
/// ```
/// use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, Runtime};
///
/// struct Stack(Vec<u32>);
///
/// impl GenServer for Stack {
///     type Args = Vec<u32>; // what `init` receives
///     type Info = u32; // a push
///     type Call = (); // a pop
///     type Reply = Option<u32>;
///
///     fn init(items: Vec<u32>, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
///         Ok(Stack(items))
///     }
///
///     fn handle_info(&mut self, item: u32, _ctx: &mut Context<'_, Self>) -> Flow {
///         self.0.push(item);
///         Flow::Continue
///     }
///
///     fn handle_call(&mut self, (): (), _: ReplyTo<Option<u32>>, _: &mut Context<'_, Self>) -> CallFlow<Option<u32>> {
///         CallFlow::Reply(self.0.pop())
///     }
/// }
///
/// let rt = Runtime::new().unwrap();
/// let stack = rt.start::<Stack>(vec![1]).unwrap();
/// stack.send(2).unwrap();
/// assert_eq!(stack.call(()), Ok(Some(2)));
/// assert_eq!(stack.call(()), Ok(Some(1)));
/// assert_eq!(stack.call(()), Ok(None));
/// ```
pub trait GenServer: Sized + Send + 'static {
    /// What `init` receives: Elixir's `init_arg`.
    type Args: Send + 'static;
    /// What `send`, `send_self` and `send_after` deliver to `handle_info`.
    type Info: Send + 'static;
    /// Requests for `handle_call`.
    type Call: Send + 'static;
    /// Replies from `handle_call`.
    type Reply: Send + 'static;

    /// Builds the state. Runs before `start`/`start_link` returns, in the new process (its
    /// `ctx.pid()` is the new pid and its name is already claimed, S7). `Err(reason)`
    /// makes the start return [`StartError::Init`] (or [`StartError::Ignore`] for
    /// [`ExitReason::Ignore`], S2) and the process never runs; `terminate` is not called.
    ///
    /// # Errors
    ///
    /// Return `Err(reason)` to refuse to start: the start returns [`StartError::Init`] with
    /// `reason`, or [`StartError::Ignore`] for [`ExitReason::Ignore`].
    fn init(args: Self::Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason>;

    /// Handles a message sent with `send`, `send_self` or `send_after`. Default: logs it
    /// as unexpected and keeps running (S17).
    fn handle_info(&mut self, msg: Self::Info, ctx: &mut Context<'_, Self>) -> Flow {
        let _ = msg;
        log::warn!(
            "{} {} received an unexpected message in handle_info",
            std::any::type_name::<Self>(),
            ctx.pid()
        );
        Flow::Continue
    }

    /// `handle_info` with `?`: implement this instead of [`GenServer::handle_info`] to
    /// use `?` on any error type (`E: std::error::Error + Send + Sync + 'static`, through
    /// `From<E> for ExitReason`): an `Err(reason)` stops the server with that reason, as
    /// `Flow::Stop(reason)` would (`terminate` runs; a crash report is printed for an
    /// abnormal reason). The runtime calls this one; its default calls `handle_info`, so a
    /// server implements one or the other.
    ///
    /// # Errors
    ///
    /// Return `Err(reason)` to stop the server with `reason`.
    ///
    /// # Example
    ///
    /// ```
    /// use arbor_core::{Context, ExitReason, Flow, GenServer, Runtime};
    /// use std::time::Duration;
    ///
    /// /// Sums the numbers it is sent as text; stops on the first that is not one.
    /// struct Sum(i64);
    ///
    /// impl GenServer for Sum {
    ///     type Args = ();
    ///     type Info = String;
    ///     type Call = ();
    ///     type Reply = ();
    ///
    ///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
    ///         Ok(Sum(0))
    ///     }
    ///
    ///     fn try_handle_info(&mut self, text: String, _ctx: &mut Context<'_, Self>) -> Result<Flow, ExitReason> {
    ///         self.0 += text.parse::<i64>()?; // a ParseIntError stops the server
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// let rt = Runtime::builder().crash_reports(arbor_core::CrashReports::Off).build().unwrap();
    /// let sum = rt.start::<Sum>(()).unwrap();
    /// sum.send("40".into()).unwrap();
    /// sum.send("forty-two".into()).unwrap();
    /// let reason = sum.wait_exit(Duration::from_secs(60)).expect("stopped within a minute");
    /// assert!(reason.to_string().contains("invalid digit"), "{reason}");
    /// ```
    #[inline]
    fn try_handle_info(&mut self, msg: Self::Info, ctx: &mut Context<'_, Self>) -> Result<Flow, ExitReason> {
        Ok(self.handle_info(msg, ctx))
    }

    /// Handles a call. Default: crashes, like Elixir's injected clause (S17).
    fn handle_call(
        &mut self,
        req: Self::Call,
        from: ReplyTo<Self::Reply>,
        ctx: &mut Context<'_, Self>,
    ) -> CallFlow<Self::Reply> {
        let _ = (req, from);
        panic!(
            "attempted to call GenServer {} but no handle_call/3 clause was provided",
            ctx.pid()
        );
    }

    /// `handle_call` with `?`: implement this instead of [`GenServer::handle_call`] to use
    /// `?` on any error type. An `Err(reason)` stops the server without replying, as
    /// `CallFlow::StopNoReply(reason)` would: the caller gets
    /// [`CallError::Exited`](crate::CallError::Exited) with `reason`. The runtime calls
    /// this one; its default calls `handle_call`.
    ///
    /// # Errors
    ///
    /// Return `Err(reason)` to stop the server with `reason`.
    #[inline]
    fn try_handle_call(
        &mut self,
        req: Self::Call,
        from: ReplyTo<Self::Reply>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<CallFlow<Self::Reply>, ExitReason> {
        Ok(self.handle_call(req, from, ctx))
    }

    /// Handles a trapped exit signal (only delivered while `ctx.trap_exits(true)` is on)
    /// from any process but the parent. Default: ignores it, and the server keeps running
    /// (S20).
    ///
    /// An exit signal from the parent (the process that started this one with
    /// `start_link`, or the runtime, for a root) never reaches this callback: as OTP's
    /// gen_server loop does, the runtime handles it, through
    /// [`GenServer::handle_stop`], whose default stops the server with that reason so
    /// that `terminate` runs (S19, S21). Overriding this callback cannot make a trapping
    /// server ignore its supervisor's shutdown.
    fn handle_exit(&mut self, from: Pid, reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        let _ = (from, reason, ctx);
        Flow::Continue
    }

    /// Called when the inactivity timeout set with [`Context::set_timeout`] expires: no
    /// message arrived within it after the callback that set it returned (Elixir's
    /// `handle_info(:timeout, state)`, S9). Default: does nothing.
    fn handle_timeout(&mut self, ctx: &mut Context<'_, Self>) -> Flow {
        let _ = ctx;
        Flow::Continue
    }

    /// Handles a monitor's `Down`. Default: ignores it.
    fn handle_down(&mut self, down: Down, ctx: &mut Context<'_, Self>) -> Flow {
        let _ = (down, ctx);
        Flow::Continue
    }

    /// Handles a stop request ([`ServerRef::stop`]) after the messages queued before it
    /// (S18), and a trapped exit signal from the parent (the supervisor's shutdown, with
    /// its reason, S19). Default: stop with the requested reason, so `terminate` runs. A server that must wind down
    /// asynchronously (a supervisor waiting for its children) may return
    /// [`Flow::Continue`] and stop later; the `stop` caller keeps waiting until the process
    /// has exited.
    fn handle_stop(&mut self, reason: ExitReason, ctx: &mut Context<'_, Self>) -> Flow {
        let _ = ctx;
        Flow::Stop(reason)
    }

    /// Runs before the server exits, after a `Stop`, a panic, a stop request, or a trapped
    /// exit from the parent. Not run when the server is killed, when an untrapped exit
    /// signal ends it, or when `init` failed (S19).
    fn terminate(&mut self, reason: &ExitReason, ctx: &mut Context<'_, Self>) {
        let _ = (reason, ctx);
    }

    /// The state, formatted for debugging: what
    /// [`RuntimeHandle::get_state`](crate::RuntimeHandle::get_state) returns (Erlang's
    /// `:sys.get_state/1`). Default `None`: a server that does not opt in shows its type
    /// only. It runs on the server's own thread, between two of its messages, with `&self`,
    /// so it never races a handler; it does not reset an inactivity timeout (it does count in
    /// [`ProcessInfo::messages_handled`](crate::ProcessInfo::messages_handled)). A panic in it is caught and answered as the text
    /// `<format_state panicked: ...>`; the server keeps running.
    fn format_state(&self) -> Option<String> {
        None
    }

    /// Starts the server without a link (S1). From outside any process, name the runtime
    /// in `opts`.
    ///
    /// # Errors
    ///
    /// [`StartError::Init`] or [`StartError::Ignore`] if `init` refused or panicked;
    /// `AlreadyStarted(holder)` if the name in `opts` is taken (`init` never ran);
    /// `NameUnavailable` if the name's naming service (a registry) is not running; `Timeout` past
    /// the start timeout of `opts`; `NoRuntime` when called outside any process with no runtime
    /// in `opts`; `ShuttingDown` if the runtime is stopping.
    fn start(args: Self::Args, opts: StartOpts) -> Result<ServerRef<Self>, StartError> {
        crate::process::start(args, opts, false)
    }

    /// Starts the server linked to the calling process, if the caller is one (S1).
    ///
    /// # Errors
    ///
    /// As [`GenServer::start`]. A failed start only returns the error: no exit signal reaches the
    /// caller.
    fn start_link(args: Self::Args, opts: StartOpts) -> Result<ServerRef<Self>, StartError> {
        crate::process::start(args, opts, true)
    }
}
