//! Requests that carry their own reply type, and casts: two doors into a server beside
//! `handle_call` (its `Call`/`Reply` pair) and `handle_info` (its `Info`).
//!
//! - A [`Request`] names its reply type; a server that implements
//!   [`HandleRequest<Q>`](HandleRequest) answers `Q` with a `Q::Reply`, so
//!   `server.request(Get)` is a `Result<u64, CallError>`, checked at compile time on both
//!   sides. A request travels in one allocation, its [`RequestCell`]: the request and its
//!   reply slot together (a `call` allocates its slot, so the count per call is the same).
//! - A cast is a message for [`HandleCast<M>`](HandleCast), Elixir's `handle_cast`: the
//!   public, fire-and-forget door, distinct from `handle_info`. It travels boxed (one
//!   allocation per cast, the price of a door per message type).
//!
//! Invariants:
//! - A request's payload is taken once, by the runner that handles it; if the request is
//!   never handled (the server died first) the runner drops it when it fails the call.
//! - A request's cell is registered with the server's held calls exactly as a call's slot
//!   is (its key is kept in the cell, since the envelope holds only the cell), and the
//!   reply handle removes the entry once, as for a call.

use crate::context::Context;
use crate::error::CallError;
use crate::gen_server::{CallFlow, Flow, GenServer};
use crate::panic::{catch, drop_quietly};
use crate::process::{Header, NOT_HELD};
use crate::reply::{Abort, ReplySlot, ReplyTo, Slot};
use crate::sync::{AtomicUsize, Mutex, Ordering};
use crate::ExitReason;
use std::any::Any;
use std::sync::Arc;

/// A request that declares its reply type: the caller of
/// [`ServerRef::request`](crate::ServerRef::request) gets a `Result<Self::Reply, CallError>`.
///
/// ```
/// use arbor_core::Request;
///
/// /// Reads the counter.
/// struct Get;
/// impl Request for Get {
///     type Reply = u64;
/// }
/// ```
pub trait Request: Send + 'static {
    /// What the server answers.
    type Reply: Send + 'static;
}

/// A server that answers requests of type `Q` (beside, or instead of, `handle_call`).
///
/// The callback is `handle_call`'s, typed by the request: reply now with
/// [`CallFlow::Reply`], later through `from` ([`CallFlow::NoReply`], S16), or stop. A
/// panic crashes the server as in `handle_call`, and the caller gets the exit reason.
///
/// # Example
///
/// A key-value store whose requests carry their reply types; its `Call` and `Reply` are
/// unused, `()`.
///
/// ```
/// use arbor_core::{CallFlow, Context, ExitReason, GenServer, HandleRequest, ReplyTo, Request, Runtime};
/// use std::collections::HashMap;
///
/// struct Kv(HashMap<String, u64>);
///
/// struct Get(String);
/// impl Request for Get {
///     type Reply = Option<u64>;
/// }
///
/// struct Put(String, u64);
/// impl Request for Put {
///     type Reply = ();
/// }
///
/// impl GenServer for Kv {
///     type Args = ();
///     type Info = ();
///     type Call = ();
///     type Reply = ();
///
///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
///         Ok(Kv(HashMap::new()))
///     }
/// }
///
/// impl HandleRequest<Get> for Kv {
///     fn handle_request(&mut self, Get(k): Get, _: ReplyTo<Option<u64>>, _: &mut Context<'_, Self>) -> CallFlow<Option<u64>> {
///         CallFlow::Reply(self.0.get(&k).copied())
///     }
/// }
///
/// impl HandleRequest<Put> for Kv {
///     fn handle_request(&mut self, Put(k, v): Put, _: ReplyTo<()>, _: &mut Context<'_, Self>) -> CallFlow<()> {
///         self.0.insert(k, v);
///         CallFlow::Reply(())
///     }
/// }
///
/// let rt = Runtime::new().unwrap();
/// let kv = rt.start::<Kv>(()).unwrap();
/// assert_eq!(kv.request(Put("a".into(), 1)), Ok(()));
/// let a: Option<u64> = kv.request(Get("a".into())).unwrap(); // the type follows the request
/// assert_eq!(a, Some(1));
/// ```
///
/// Checked at compile time: a request the server does not handle cannot be sent, and the
/// reply has the request's type.
///
/// ```compile_fail
/// use arbor_core::{Context, ExitReason, GenServer, Request, Runtime};
///
/// struct Quiet;
/// impl GenServer for Quiet {
///     type Args = ();
///     type Info = ();
///     type Call = ();
///     type Reply = ();
///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
///         Ok(Quiet)
///     }
/// }
///
/// struct Get;
/// impl Request for Get {
///     type Reply = u64;
/// }
///
/// let rt = Runtime::new().unwrap();
/// let quiet = rt.start::<Quiet>(()).unwrap();
/// let _ = quiet.request(Get); // error[E0277]: `Quiet: HandleRequest<Get>` is not satisfied
/// ```
pub trait HandleRequest<Q: Request>: GenServer {
    /// Handles one request of type `Q`.
    fn handle_request(&mut self, req: Q, from: ReplyTo<Q::Reply>, ctx: &mut Context<'_, Self>) -> CallFlow<Q::Reply>;
}

/// [`HandleRequest`] with `?`: implement this one instead to use `?` on any error type
/// (through `From<E: Error> for ExitReason`); every `TryHandleRequest<Q>` is a
/// `HandleRequest<Q>`. An `Err(reason)` stops the server without replying, as
/// `CallFlow::StopNoReply(reason)` would: the caller gets
/// [`CallError::Exited`](crate::CallError::Exited) with `reason`.
pub trait TryHandleRequest<Q: Request>: GenServer {
    /// Handles one request of type `Q`.
    ///
    /// # Errors
    ///
    /// Return `Err(reason)` to stop the server with `reason`.
    fn try_handle_request(
        &mut self,
        req: Q,
        from: ReplyTo<Q::Reply>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<CallFlow<Q::Reply>, ExitReason>;
}

impl<G: TryHandleRequest<Q>, Q: Request> HandleRequest<Q> for G {
    fn handle_request(&mut self, req: Q, from: ReplyTo<Q::Reply>, ctx: &mut Context<'_, Self>) -> CallFlow<Q::Reply> {
        self.try_handle_request(req, from, ctx)
            .unwrap_or_else(CallFlow::StopNoReply)
    }
}

/// A server that takes casts of type `M`: Elixir's `handle_cast`, the public
/// fire-and-forget door, distinct from `handle_info` (which receives the server's own
/// timer messages, and whatever [`ServerRef::send`](crate::ServerRef::send) delivers).
///
/// # Example
///
/// ```
/// use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, HandleCast, ReplyTo, Runtime};
///
/// struct Counter(u64);
///
/// /// Adds to the counter.
/// struct Add(u64);
///
/// impl GenServer for Counter {
///     type Args = ();
///     type Info = ();
///     type Call = ();
///     type Reply = u64;
///
///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
///         Ok(Counter(0))
///     }
///
///     fn handle_call(&mut self, (): (), _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
///         CallFlow::Reply(self.0)
///     }
/// }
///
/// impl HandleCast<Add> for Counter {
///     fn handle_cast(&mut self, Add(n): Add, _: &mut Context<'_, Self>) -> Flow {
///         self.0 += n;
///         Flow::Continue
///     }
/// }
///
/// let rt = Runtime::new().unwrap();
/// let counter = rt.start::<Counter>(()).unwrap();
/// counter.cast(Add(40)).unwrap();
/// counter.cast(Add(2)).unwrap();
/// assert_eq!(counter.call(()), Ok(42));
/// ```
///
/// # Keeping `handle_info` private
///
/// [`ServerRef::send`](crate::ServerRef::send) delivers any value of the server's `Info`
/// type, from anywhere, as Elixir's `send` does. A server whose `handle_info` receives only
/// its own messages (its timers, `send_self`) gives its public messages to casts and makes
/// its `Info` type impossible to build outside its module: a public type with a private
/// field. Outside code can then cast, but cannot forge a tick:
///
/// ```compile_fail
/// mod clock {
///     use arbor_core::{Context, ExitReason, Flow, GenServer, HandleCast};
///     use std::time::Duration;
///
///     pub struct Clock { pub ticks: u64 }
///
///     /// The clock's own timer message: only this module can build one.
///     pub struct Tick(());
///
///     /// The public door: resets the count.
///     pub struct Reset;
///
///     impl GenServer for Clock {
///         type Args = ();
///         type Info = Tick;
///         type Call = ();
///         type Reply = ();
///         fn init((): (), ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
///             ctx.send_after(Duration::from_millis(10), Tick(()));
///             Ok(Clock { ticks: 0 })
///         }
///         fn handle_info(&mut self, _: Tick, ctx: &mut Context<'_, Self>) -> Flow {
///             self.ticks += 1;
///             ctx.send_after(Duration::from_millis(10), Tick(()));
///             Flow::Continue
///         }
///     }
///
///     impl HandleCast<Reset> for Clock {
///         fn handle_cast(&mut self, _: Reset, _: &mut Context<'_, Self>) -> Flow {
///             self.ticks = 0;
///             Flow::Continue
///         }
///     }
/// }
///
/// let rt = arbor_core::Runtime::new().unwrap();
/// let clock = rt.start::<clock::Clock>(()).unwrap();
/// clock.cast(clock::Reset).unwrap(); // fine: the public door
/// clock.send(clock::Tick(())).unwrap(); // error[E0423]: `Tick` has a private field
/// ```
pub trait HandleCast<M: Send + 'static>: GenServer {
    /// Handles one cast of type `M`.
    fn handle_cast(&mut self, msg: M, ctx: &mut Context<'_, Self>) -> Flow;
}

/// [`HandleCast`] with `?`: implement this one instead to use `?` on any error type
/// (through `From<E: Error> for ExitReason`); every `TryHandleCast<M>` is a
/// `HandleCast<M>`. An `Err(reason)` stops the server with `reason`, as
/// `Flow::Stop(reason)` would.
///
/// # Example
///
/// ```
/// use arbor_core::{Context, ExitReason, Flow, GenServer, Runtime, TryHandleCast};
/// use std::time::Duration;
///
/// struct Config(std::collections::HashMap<String, u16>);
///
/// /// `key=port`
/// struct Set(String);
///
/// #[derive(Debug)]
/// struct NoEquals;
///
/// impl std::fmt::Display for NoEquals {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("expected key=port")
///     }
/// }
///
/// impl std::error::Error for NoEquals {}
///
/// impl GenServer for Config {
///     type Args = ();
///     type Info = ();
///     type Call = ();
///     type Reply = ();
///     fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
///         Ok(Config(Default::default()))
///     }
/// }
///
/// impl TryHandleCast<Set> for Config {
///     fn try_handle_cast(&mut self, Set(line): Set, _: &mut Context<'_, Self>) -> Result<Flow, ExitReason> {
///         let (key, port) = line.split_once('=').ok_or(NoEquals)?;
///         self.0.insert(key.to_string(), port.parse()?);
///         Ok(Flow::Continue)
///     }
/// }
///
/// let rt = Runtime::builder().crash_reports(arbor_core::CrashReports::Off).build().unwrap();
/// let config = rt.start::<Config>(()).unwrap();
/// config.cast(Set("http=80".into())).unwrap();
/// config.cast(Set("oops".into())).unwrap();
/// let reason = config.wait_exit(Duration::from_secs(60)).expect("stopped within a minute");
/// assert!(reason.to_string().contains("expected key=port"), "{reason}");
/// ```
pub trait TryHandleCast<M: Send + 'static>: GenServer {
    /// Handles one cast of type `M`.
    ///
    /// # Errors
    ///
    /// Return `Err(reason)` to stop the server with `reason`.
    fn try_handle_cast(&mut self, msg: M, ctx: &mut Context<'_, Self>) -> Result<Flow, ExitReason>;
}

impl<G: TryHandleCast<M>, M: Send + 'static> HandleCast<M> for G {
    fn handle_cast(&mut self, msg: M, ctx: &mut Context<'_, Self>) -> Flow {
        self.try_handle_cast(msg, ctx).unwrap_or_else(Flow::Stop)
    }
}

/// A request in flight: the request and its reply slot, in one allocation.
pub(crate) struct RequestCell<Q: Request> {
    slot: Slot<Q::Reply>,
    /// Taken once by the runner (or dropped by it if the call fails first).
    req: Mutex<Option<Q>>,
    /// The key of the call in the server's held calls, [`NOT_HELD`] until it is held.
    key: AtomicUsize,
}

impl<Q: Request> RequestCell<Q> {
    pub(crate) fn new(req: Q, slot: Slot<Q::Reply>) -> Self {
        RequestCell {
            slot,
            req: Mutex::new(Some(req)),
            key: AtomicUsize::new(NOT_HELD),
        }
    }
}

impl<Q: Request> ReplySlot<Q::Reply> for RequestCell<Q> {
    fn slot(&self) -> &Slot<Q::Reply> {
        &self.slot
    }
}

impl<Q: Request> Abort for RequestCell<Q> {
    fn abort(&self, err: CallError) {
        self.slot.resolve(Err(err));
    }
}

/// What handling a request asks of the runner (the typed `CallFlow`, its reply already
/// sent or packed up).
pub(crate) enum Handled {
    /// Replied, or will reply later: keep running.
    Continue,
    /// Stop; the closure, if any, sends the reply after `terminate`.
    Stop(ExitReason, Option<Box<dyn FnOnce()>>),
    /// Stop without replying; the reply handle is kept until the process has exited, so
    /// that the caller gets the exit reason.
    StopHolding(ExitReason, Box<dyn Any + Send>),
    /// The handler panicked (its message); the reply handle is kept as for `StopHolding`.
    Panicked(String, Box<dyn Any + Send>),
}

/// A request with its type erased, as the server's mailbox carries it.
pub(crate) trait ErasedRequest<G: GenServer>: Abort {
    /// The cell as what the server's held calls keep.
    fn as_abort(self: Arc<Self>) -> Arc<dyn Abort>;
    /// The key under which the call is held ([`NOT_HELD`] until it is).
    fn key(&self) -> usize;
    /// Records the key under which the call is held.
    fn set_key(&self, key: usize);
    /// Runs the server's handler for it (held under `key`) and sends the reply.
    fn handle(self: Arc<Self>, st: &mut G, server: &Arc<Header>, key: usize, ctx: &mut Context<'_, G>) -> Handled;
    /// Drops the request unhandled (the call failed first).
    fn discard(&self);
}

impl<G: HandleRequest<Q>, Q: Request> ErasedRequest<G> for RequestCell<Q> {
    fn as_abort(self: Arc<Self>) -> Arc<dyn Abort> {
        self
    }

    fn key(&self) -> usize {
        self.key.load(Ordering::Relaxed)
    }

    fn set_key(&self, key: usize) {
        self.key.store(key, Ordering::Relaxed)
    }

    fn handle(self: Arc<Self>, st: &mut G, server: &Arc<Header>, key: usize, ctx: &mut Context<'_, G>) -> Handled {
        let req = self.req.lock().take();
        let Some(req) = req else {
            // Never: a request is handled once. Fail the call rather than panic.
            self.slot.resolve(Err(CallError::NoReply));
            server.forget_call(key);
            return Handled::Continue;
        };
        let reply_to: ReplyTo<Q::Reply> = ReplyTo::new(self, Arc::clone(server), key);
        let given = reply_to.clone();
        match catch(|| st.handle_request(req, given, ctx)) {
            Ok(CallFlow::Reply(r)) => {
                // A reply the caller gave up on is dropped here: its `Drop` is user code.
                let _ = catch(|| reply_to.reply(r));
                Handled::Continue
            }
            Ok(CallFlow::NoReply) => Handled::Continue,
            Ok(CallFlow::Stop(reason, r)) => Handled::Stop(
                reason,
                Some(Box::new(move || {
                    reply_to.reply(r);
                })),
            ),
            Ok(CallFlow::StopNoReply(reason)) => Handled::StopHolding(reason, Box::new(reply_to)),
            Err(msg) => Handled::Panicked(msg, Box::new(reply_to)),
        }
    }

    fn discard(&self) {
        let req = self.req.lock().take();
        drop_quietly(req, "a request");
    }
}

/// A cast in flight, its type erased.
pub(crate) trait ErasedCast<G: GenServer>: Send {
    /// Runs the server's `handle_cast` for it.
    fn handle(self: Box<Self>, st: &mut G, ctx: &mut Context<'_, G>) -> Flow;
    /// The cast as `Any`, to hand the message back when it cannot be delivered.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// A cast of an `M`.
pub(crate) struct CastCell<M>(pub(crate) M);

impl<G: HandleCast<M>, M: Send + 'static> ErasedCast<G> for CastCell<M> {
    fn handle(self: Box<Self>, st: &mut G, ctx: &mut Context<'_, G>) -> Flow {
        st.handle_cast(self.0, ctx)
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}
