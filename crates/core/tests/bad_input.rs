//! Bad and odd input (issue 10): each test backs one row of the table in
//! `docs/semantics.md` ("Bad input"). Bad input gets a typed error, never a panic or a hang.
//! A row whose current behaviour is a defect is marked `#[ignore = "core defect: ..."]`
//! and written "to fix" in the table.

mod common;

use arbor_core::*;
use common::{rt, wait_until, DEADLINE};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce(&mut Fun, &mut Context<'_, Fun>) -> u64 + Send>;
type Act = Box<dyn FnOnce(&mut Fun, &mut Context<'_, Fun>) -> Flow + Send>;

/// A server that runs whatever it is sent or called with, inside itself.
struct Fun {
    handled: Arc<AtomicUsize>,
    on_terminate: Option<Box<dyn FnOnce() + Send>>,
    on_drop: Option<Box<dyn FnOnce() + Send>>,
}

impl GenServer for Fun {
    type Args = Arc<AtomicUsize>;
    type Info = Act;
    type Call = Job;
    type Reply = u64;

    fn init(handled: Arc<AtomicUsize>, _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Fun {
            handled,
            on_terminate: None,
            on_drop: None,
        })
    }

    fn handle_info(&mut self, f: Act, ctx: &mut Context<'_, Self>) -> Flow {
        self.handled.fetch_add(1, Ordering::SeqCst);
        f(self, ctx)
    }

    fn handle_call(&mut self, f: Job, _: ReplyTo<u64>, ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        CallFlow::Reply(f(self, ctx))
    }

    fn terminate(&mut self, _: &ExitReason, _: &mut Context<'_, Self>) {
        if let Some(f) = self.on_terminate.take() {
            f()
        }
    }
}

impl Drop for Fun {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f()
        }
    }
}

fn fun(rt: &Runtime) -> (ServerRef<Fun>, Arc<AtomicUsize>) {
    let handled = Arc::new(AtomicUsize::new(0));
    (rt.start::<Fun>(handled.clone()).unwrap(), handled)
}

fn job(f: impl FnOnce(&mut Fun, &mut Context<'_, Fun>) -> u64 + Send + 'static) -> Job {
    Box::new(f)
}

fn act(f: impl FnOnce(&mut Fun, &mut Context<'_, Fun>) -> Flow + Send + 'static) -> Act {
    Box::new(f)
}

// ---- timeouts -------------------------------------------------------------------------

#[test]
fn bad_call_zero_timeout_sends_like_stop_zero() {
    // One rule for every zero timeout (call, stop, start): the request is sent, nothing
    // is waited for. As OTP's `gen_server:call(S, R, 0)`.
    let rt = rt(2);
    let (s, handled) = fun(&rt);
    let began = Instant::now();
    // `Timeout`, unless the reply beat the caller's first look (possible, never waited for).
    let r = s.call_timeout(job(|_, _| 1), Duration::ZERO);
    assert!(matches!(r, Err(CallError::Timeout) | Ok(1)), "{r:?}");
    assert!(began.elapsed() < Duration::from_secs(1), "returned at once");
    assert!(
        wait_until(|| handled.load(Ordering::SeqCst) == 1),
        "the request was sent"
    );
    // Its late reply went to its own abandoned slot, never to a later call.
    assert_eq!(s.call(job(|_, _| 2)), Ok(2));
}

#[test]
fn bad_stop_zero_timeout_sends_the_stop_and_returns_timeout() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    // Hold the server in a handler so the stop cannot complete within zero time.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    s.send(act(move |_, _| {
        let _ = rx.recv_timeout(DEADLINE);
        Flow::Continue
    }))
    .unwrap();
    assert_eq!(s.stop(ExitReason::Normal, Duration::ZERO), Err(CallError::Timeout));
    tx.send(()).unwrap();
    assert_eq!(
        s.wait_exit(DEADLINE),
        Some(ExitReason::Normal),
        "the stop was sent all the same"
    );
}

#[test]
fn bad_huge_timeouts_mean_forever() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    assert_eq!(s.call_timeout(job(|_, _| 7), Duration::MAX), Ok(7));
    assert_eq!(s.stop(ExitReason::Normal, Duration::MAX), Ok(()));
}

#[test]
fn bad_send_after_zero_and_huge_delays() {
    let rt = rt(2);
    let (s, handled) = fun(&rt);
    // Zero: delivered through the mailbox. Huge: pending, readable, cancellable.
    let left = s
        .call(job(|_, ctx| {
            ctx.send_after(Duration::ZERO, Box::new(|_, _| Flow::Continue));
            let t = ctx.send_after(Duration::MAX, Box::new(|_, _| Flow::Continue));
            let read = ctx.read_timer(t).is_some();
            let cancelled = ctx.cancel_timer(t);
            u64::from(read) + u64::from(cancelled.is_some_and(|d| d > Duration::from_secs(3600)))
        }))
        .unwrap();
    assert_eq!(left, 2, "a huge timer is pending, readable and cancellable");
    assert!(
        wait_until(|| handled.load(Ordering::SeqCst) == 2),
        "the zero-delay message came"
    );
    assert_eq!(rt.timer_count(), 0);
}

#[test]
fn bad_set_timeout_huge_is_infinity() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    assert_eq!(
        s.call(job(|_, ctx| {
            ctx.set_timeout(Duration::MAX);
            3
        })),
        Ok(3)
    );
    assert_eq!(s.call(job(|_, _| 4)), Ok(4));
}

// ---- dead targets ---------------------------------------------------------------------

#[test]
fn bad_call_stop_send_to_a_dead_pid() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    s.kill();
    assert_eq!(s.wait_exit(DEADLINE), Some(ExitReason::Killed));
    assert_eq!(s.call(job(|_, _| 1)), Err(CallError::NoProc));
    assert_eq!(s.stop(ExitReason::Normal, DEADLINE), Err(CallError::NoProc));
    assert!(s.send(act(|_, _| Flow::Continue)).is_err());
    // Signals to the dead are no-ops.
    arbor_core::kill(s.pid());
    arbor_core::exit(s.pid(), ExitReason::custom("late"));
    assert!(rt.monitor(s.pid(), |_: Pid, _: &ExitReason| {}).is_err());
}

#[test]
fn bad_a_million_sends_to_a_dead_pid_hand_each_message_back() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    s.kill();
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let began = Instant::now();
    for _ in 0..1_000_000 {
        let c = Counted(dropped.clone());
        let err = s.send(act(move |_, _| {
            drop(c);
            Flow::Continue
        }));
        assert!(err.is_err());
    }
    assert_eq!(dropped.load(Ordering::Relaxed), 1_000_000);
    assert_eq!(rt.process_count(), 0);
    assert!(began.elapsed() < Duration::from_secs(60));
}

// ---- self and cycles ------------------------------------------------------------------

#[test]
fn bad_call_or_stop_to_self_is_calling_self() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    let got = s.call(job(|_, ctx| {
        let me = ctx.myself();
        let call = me.call_timeout(job(|_, _| 0), DEADLINE);
        let stop = me.stop(ExitReason::Normal, DEADLINE);
        u64::from(call == Err(CallError::CallingSelf)) + u64::from(stop == Err(CallError::CallingSelf))
    }));
    assert_eq!(got, Ok(2));
}

#[test]
fn bad_call_cycle_is_deadlock_at_once() {
    let rt = rt(2);
    let (a, _) = fun(&rt);
    let (b, _) = fun(&rt);
    let a2 = a.clone();
    let began = Instant::now();
    // a calls b, which calls a back.
    let got = a.call(job(move |_, _| {
        let inner = b.call(job(move |_, _| match a2.call(job(|_, _| 0)) {
            Err(CallError::Deadlock) => 1,
            _ => 0,
        }));
        inner.unwrap_or(0)
    }));
    assert_eq!(got, Ok(1));
    assert!(began.elapsed() < Duration::from_secs(1));
}

#[test]
fn bad_link_or_monitor_self() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    let got = s.call(job(|_, ctx| {
        let me = ctx.pid();
        let linked = ctx.link(me).is_ok();
        let m = ctx.monitor(me);
        let was_active = ctx.demonitor(me, m);
        u64::from(linked) * 10 + u64::from(was_active)
    }));
    // Linking to oneself is a no-op that succeeds (S37); monitoring oneself makes an active
    // monitor (demonitor says it was active) that cannot fire while one is alive.
    assert_eq!(got, Ok(11));
    assert_eq!(s.call(job(|_, _| 5)), Ok(5), "still running");
}

// ---- runtime lifecycle ----------------------------------------------------------------

#[test]
fn bad_use_after_shutdown() {
    let rt = rt(2);
    let handle = rt.handle().clone();
    let (s, _) = fun(&rt);
    rt.shutdown();
    assert_eq!(s.call(job(|_, _| 1)), Err(CallError::NoProc));
    assert!(s.send(act(|_, _| Flow::Continue)).is_err());
    assert_eq!(s.stop(ExitReason::Normal, DEADLINE), Err(CallError::NoProc));
    let again = handle.start::<Fun>(Arc::new(AtomicUsize::new(0)));
    assert!(matches!(again, Err(StartError::ShuttingDown)), "{again:?}");
    assert!(RuntimeHandle::of(s.pid()).is_none());
    assert_eq!(handle.process_count(), 0);
}

#[test]
fn bad_shutdown_from_inside_a_handler_then_again_from_outside() {
    let rt = rt(2);
    let handle = rt.handle().clone();
    let (s, _) = fun(&rt);
    let (_other, _) = fun(&rt);
    let slot = Arc::new(Mutex::new(Some(rt)));
    let inside = slot.clone();
    s.send(act(move |_, _| {
        if let Some(rt) = inside.lock().take() {
            rt.shutdown();
        }
        Flow::Continue
    }))
    .unwrap();
    assert!(wait_until(|| handle.process_count() == 0), "every process stopped");
    assert!(slot.lock().is_none(), "the handler took the runtime");
}

#[test]
fn bad_shutdown_twice_is_a_no_op() {
    // `shutdown` takes the runtime by value; the nearest thing to twice is a shutdown
    // followed by the drop of a handle's last runtime reference, and a second runtime's.
    let rt = rt(2);
    let handle = rt.handle().clone();
    rt.shutdown();
    let began = Instant::now();
    drop(handle);
    assert!(began.elapsed() < Duration::from_secs(1));
}

// ---- panics in odd places -------------------------------------------------------------

struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("a message's Drop panics");
        }
    }
}

#[test]
fn bad_panicking_drop_of_a_queued_message() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let running = Arc::new(AtomicUsize::new(0));
    let r = running.clone();
    s.send(act(move |_, _| {
        r.store(1, Ordering::SeqCst);
        let _ = rx.recv_timeout(DEADLINE);
        Flow::Continue
    }))
    .unwrap();
    assert!(wait_until(|| running.load(Ordering::SeqCst) == 1));
    let m = PanicOnDrop;
    s.send(act(move |_, _| {
        drop(m);
        Flow::Continue
    }))
    .unwrap();
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.kill()));
    let _ = tx.send(());
    assert!(killed.is_ok(), "kill must not panic in the caller");
    let (t, _) = fun(&rt);
    assert_eq!(t.call(job(|_, _| 1)), Ok(1), "the runtime still works");
    assert!(wait_until(|| rt.worker_count() == 2), "no worker thread was lost");
}

#[test]
fn bad_panicking_drop_of_a_handled_message_is_a_handler_panic() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    let m = PanicOnDrop;
    let got = s.call(job(move |_, _| {
        drop(m);
        0
    }));
    assert!(matches!(got, Err(CallError::Exited(ExitReason::Panic(_)))), "{got:?}");
    let (t, _) = fun(&rt);
    assert_eq!(t.call(job(|_, _| 1)), Ok(1), "the runtime still works");
}

#[test]
fn bad_panicking_drop_of_a_state() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    s.call(job(|st, _| {
        st.on_drop = Some(Box::new(|| panic!("the state's Drop panics")));
        0
    }))
    .unwrap();
    let stopped = s.stop(ExitReason::Normal, DEADLINE);
    assert!(matches!(stopped, Ok(()) | Err(CallError::Exited(_))), "{stopped:?}");
    assert!(s.wait_exit(DEADLINE).is_some());
    let (t, _) = fun(&rt);
    assert_eq!(t.call(job(|_, _| 1)), Ok(1), "the runtime still works");
    assert_eq!(rt.worker_count(), 2, "no worker thread was lost");
}

#[test]
fn bad_panic_with_a_non_string_payload() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    let got = s.call(job(|_, _| std::panic::panic_any(42u32)));
    assert!(matches!(got, Err(CallError::Exited(ExitReason::Panic(_)))), "{got:?}");
    assert!(matches!(s.wait_exit(DEADLINE), Some(ExitReason::Panic(_))));
}

#[test]
fn bad_panicking_terminate_becomes_the_exit_reason() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    s.call(job(|st, _| {
        st.on_terminate = Some(Box::new(|| panic!("terminate panics")));
        0
    }))
    .unwrap();
    let stopped = s.stop(ExitReason::Normal, DEADLINE);
    assert!(
        stopped.is_ok() || matches!(stopped, Err(CallError::Exited(_))),
        "{stopped:?}"
    );
    let reason = s.wait_exit(DEADLINE);
    assert!(matches!(reason, Some(ExitReason::Panic(_))), "{reason:?}");
}

#[test]
fn bad_stop_reports_a_panicking_terminate() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    s.call(job(|st, _| {
        st.on_terminate = Some(Box::new(|| panic!("terminate panics")));
        0
    }))
    .unwrap();
    let stopped = s.stop(ExitReason::Normal, DEADLINE);
    assert!(
        matches!(stopped, Err(CallError::Exited(ExitReason::Panic(_)))),
        "stop: {stopped:?}"
    );
}

// ---- depth and volume -----------------------------------------------------------------

/// Starts the next level from its own `init`, `depth` levels deep.
struct Nest;

impl GenServer for Nest {
    type Args = (usize, Arc<AtomicUsize>);
    type Info = ();
    type Call = ();
    type Reply = ();

    fn init((depth, made): (usize, Arc<AtomicUsize>), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        made.fetch_add(1, Ordering::SeqCst);
        if depth > 1 {
            Nest::start_link((depth - 1, made), StartOpts::new()).map_err(ExitReason::custom)?;
        }
        Ok(Nest)
    }
}

#[test]
fn bad_init_nested_ten_thousand_deep() {
    // Each nested `init` runs on its starter's thread: past 100 levels the start fails with
    // a typed error instead of overflowing the stack, and the chain unwinds cleanly.
    let rt = rt(2);
    let made = Arc::new(AtomicUsize::new(0));
    let top = rt.start::<Nest>((10_000, made.clone()));
    assert!(matches!(top, Err(StartError::Init(_))), "{:?}", top.err());
    assert_eq!(made.load(Ordering::SeqCst), 100);
    assert!(wait_until(|| rt.process_count() == 0));
}

#[test]
fn bad_init_nested_a_hundred_deep() {
    let rt = rt(2);
    let made = Arc::new(AtomicUsize::new(0));
    let top = rt.start::<Nest>((100, made.clone())).unwrap();
    assert_eq!(made.load(Ordering::SeqCst), 100);
    assert_eq!(rt.process_count(), 100);
    top.kill();
    assert!(
        wait_until(|| rt.process_count() == 0),
        "the chain of links takes them all down"
    );
}

#[test]
fn bad_a_million_messages_to_a_server_that_never_reads() {
    let rt = rt(2);
    let (s, _) = fun(&rt);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    s.send(act(move |_, _| {
        let _ = rx.recv_timeout(DEADLINE);
        Flow::Continue
    }))
    .unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    for _ in 0..1_000_000 {
        let c = Counted(dropped.clone());
        s.send(act(move |_, _| {
            drop(c);
            Flow::Continue
        }))
        .unwrap();
    }
    assert!(s.mailbox_len() >= 1_000_000);
    // Another server is not held up.
    let (t, _) = fun(&rt);
    assert_eq!(t.call(job(|_, _| 1)), Ok(1));
    s.kill();
    tx.send(()).ok();
    assert!(
        wait_until(|| dropped.load(Ordering::Relaxed) == 1_000_000),
        "every queued message is dropped with the server: {}",
        dropped.load(Ordering::Relaxed)
    );
}
