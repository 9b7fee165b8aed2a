//! GenServer behaviours S1–S18, one test per item.

mod common;
use arbor_core::*;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn s1_start_runs_init_before_returning() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    assert_eq!(log.get(), vec!["a:init"]);
    assert!(s.is_alive());
    assert_eq!(s.call(Req::Echo(7)), Ok(Rep::N(7)));
}

#[test]
fn s1_start_link_links_the_calling_process() {
    let rt = rt(2);
    let log = Log::default();
    let parent = rt.start::<Parent>((log.clone(), InitMode::Ok, false)).unwrap();
    let child_pid = log
        .get()
        .iter()
        .find_map(|e| e.strip_prefix("child:").map(String::from))
        .unwrap();
    // Killing the parent takes the linked child with it (S34).
    parent.kill();
    assert!(
        wait_until(|| rt.process_count() == 0),
        "{child_pid} should die with its parent"
    );
}

#[test]
fn s2_init_ignore_returns_ignore_and_never_runs() {
    let rt = rt(2);
    let log = Log::default();
    let err = probe(&rt, "a", &log, InitMode::Ignore).unwrap_err();
    assert_eq!(err, StartError::Ignore);
    assert!(!log.contains("a:terminate:normal"));
    assert!(wait_until(|| rt.process_count() == 0));
}

#[test]
fn s3_init_stop_returns_error_without_terminate() {
    let rt = rt(2);
    let log = Log::default();
    let err = probe(&rt, "a", &log, InitMode::Fail(ExitReason::custom("nope"))).unwrap_err();
    assert_eq!(err, StartError::Init(ExitReason::custom("nope")));
    assert!(log.get().iter().all(|e| !e.contains("terminate")));
    assert_eq!(rt.process_count(), 0);
}

#[test]
fn s3_failed_init_does_not_kill_a_linked_caller() {
    let rt = rt(2);
    let log = Log::default();
    let err = rt
        .start::<Parent>((log.clone(), InitMode::Fail(ExitReason::custom("child failed")), false))
        .unwrap_err();
    // The parent's init saw the child's error as a return value and failed with it.
    assert!(matches!(err, StartError::Init(ExitReason::Error(_))));
    assert!(wait_until(|| rt.process_count() == 0));
}

#[test]
fn s4_init_panic_returns_panic_reason() {
    let rt = rt(2);
    let log = Log::default();
    let err = probe(&rt, "a", &log, InitMode::Panic).unwrap_err();
    assert_eq!(err, StartError::Init(ExitReason::panic("boom in init")));
    assert_eq!(rt.process_count(), 0);
    // The worker threads survived: the runtime still runs servers.
    let s = probe(&rt, "b", &log, InitMode::Ok).unwrap();
    assert_eq!(s.call(Req::Echo(1)), Ok(Rep::N(1)));
}

#[test]
fn s5_init_error_is_returned_as_is() {
    let rt = rt(1);
    let log = Log::default();
    let err = probe(&rt, "a", &log, InitMode::Fail(ExitReason::Shutdown)).unwrap_err();
    assert_eq!(err, StartError::Init(ExitReason::Shutdown));
}

#[test]
fn s6_start_timeout_fails_a_slow_init() {
    let rt = rt(2);
    let log = Log::default();
    let start = Instant::now();
    let err = Probe::start(
        ("slow".into(), log.clone(), InitMode::Sleep(Duration::from_millis(300))),
        StartOpts::new().runtime(&rt).timeout(Duration::from_millis(30)),
    )
    .unwrap_err();
    assert_eq!(err, StartError::Timeout);
    assert!(start.elapsed() < Duration::from_millis(250));
    assert!(wait_until(|| rt.process_count() == 0));
    // A fast init within the timeout starts normally.
    let ok = Probe::start(
        ("fast".into(), log, InitMode::Ok),
        StartOpts::new().runtime(&rt).timeout(Duration::from_secs(5)),
    )
    .unwrap();
    assert_eq!(ok.call(Req::Echo(3)), Ok(Rep::N(3)));
}

/// A one-name naming scheme for core's own tests.
#[derive(Clone, Default)]
struct OneName(Arc<parking_lot::Mutex<Option<Pid>>>);

impl Naming for OneName {
    fn register(&self, pid: Pid) -> Result<(), NameError> {
        let mut slot = self.0.lock();
        match *slot {
            Some(holder) if is_alive(holder) => Err(NameError::Taken(holder)),
            _ => {
                *slot = Some(pid);
                Ok(())
            }
        }
    }
    fn unregister(&self, pid: Pid) {
        let mut slot = self.0.lock();
        if *slot == Some(pid) {
            *slot = None;
        }
    }
    fn whereis(&self) -> Option<Pid> {
        *self.0.lock()
    }
    fn describe(&self) -> String {
        "one-name".into()
    }
}

#[test]
fn s7_taken_name_returns_already_started_and_never_runs_init() {
    let rt = rt(2);
    let log = Log::default();
    let name = OneName::default();
    let first = Probe::start(
        ("first".into(), log.clone(), InitMode::Ok),
        StartOpts::new().runtime(&rt).name(name.clone()),
    )
    .unwrap();
    let err = Probe::start(
        ("second".into(), log.clone(), InitMode::Ok),
        StartOpts::new().runtime(&rt).name(name.clone()),
    )
    .unwrap_err();
    assert_eq!(err, StartError::AlreadyStarted(first.pid()));
    assert!(!log.contains("second:init"));
    assert_eq!(rt.process_count(), 1);
    // S23: whereis by name.
    assert_eq!(ServerRef::<Probe>::whereis(&name), Some(first.clone()));
    // The name is released when the holder exits, before anyone learns of it.
    first.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    assert_eq!(name.whereis(), None);
}

#[test]
fn s8_continue_runs_before_queued_messages() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::SendSelfThenContinue).unwrap();
    assert!(log.wait_for("a:info:queued"));
    assert_eq!(log.get(), vec!["a:init", "a:continue", "a:info:queued"]);
    drop(s);
}

#[test]
fn s10_call_replies_and_per_sender_fifo() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    for i in 0..200 {
        s.send(format!("m{i}")).unwrap();
    }
    assert_eq!(s.call(Req::Echo(9)), Ok(Rep::N(9)));
    let seen: Vec<String> = log.get().into_iter().filter(|e| e.starts_with("a:info:m")).collect();
    let want: Vec<String> = (0..200).map(|i| format!("a:info:m{i}")).collect();
    assert_eq!(seen, want);
}

#[test]
fn s10_send_to_dead_server_hands_message_back() {
    let rt = rt(1);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    s.kill();
    assert_eq!(s.send("late".to_string()), Err(SendError("late".to_string())));
}

#[test]
fn s11_call_timeout_drops_the_late_reply() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    let start = Instant::now();
    let r = s.call_timeout(Req::Sleep(Duration::from_millis(200), 1), Duration::from_millis(20));
    assert_eq!(r, Err(CallError::Timeout));
    assert!(start.elapsed() < Duration::from_millis(150));
    // The server keeps running and finishes the request; the next call gets its own reply.
    assert_eq!(s.call(Req::Echo(2)), Ok(Rep::N(2)));
    assert!(s.is_alive());
}

/// A timeout of a second or more counts from the end of the caller's spin rather than
/// from the call (no clock read when the reply comes within the spin): it still never
/// fires before the timeout has passed.
#[test]
fn s11_long_timeout_never_fires_early() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    let timeout = Duration::from_millis(1100);
    let start = Instant::now();
    let r = s.call_timeout(Req::Sleep(Duration::from_secs(3), 1), timeout);
    assert_eq!(r, Err(CallError::Timeout));
    assert!(start.elapsed() >= timeout, "timed out after {:?}", start.elapsed());
}

#[test]
fn s11_zero_timeout_sends_and_does_not_wait() {
    let rt = rt(1);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    // Held in a handler, so the zero-timeout call cannot be answered in time.
    let s2 = s.clone();
    let busy = std::thread::spawn(move || s2.call(Req::Sleep(Duration::from_millis(100), 1)));
    assert!(log.wait_for("a:sleeping"));
    assert_eq!(s.call_timeout(Req::Echo(7), Duration::ZERO), Err(CallError::Timeout));
    // It was sent (as OTP's call(.., 0)) and is handled; its reply is dropped, and the
    // next call gets its own.
    assert_eq!(busy.join().unwrap(), Ok(Rep::N(1)));
    assert_eq!(s.call(Req::Echo(2)), Ok(Rep::N(2)));
}

#[test]
fn s12_call_to_dead_pid_is_noproc_at_once() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    s.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    let start = Instant::now();
    assert_eq!(s.call(Req::Echo(1)), Err(CallError::NoProc));
    assert!(start.elapsed() < Duration::from_millis(100));
    assert!(ServerRef::<Probe>::from_pid(s.pid()).is_none());
}

struct SelfCaller;
impl GenServer for SelfCaller {
    type Args = ();
    type Info = ();
    type Call = bool;
    type Reply = Option<CallError>;
    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(SelfCaller)
    }
    fn handle_call(
        &mut self,
        stop: bool,
        _f: ReplyTo<Self::Reply>,
        ctx: &mut Context<'_, Self>,
    ) -> CallFlow<Self::Reply> {
        let me = ctx.myself();
        if stop {
            CallFlow::Reply(me.stop(ExitReason::Normal, Duration::from_secs(1)).err())
        } else {
            CallFlow::Reply(me.call_timeout(false, Duration::from_secs(1)).err())
        }
    }
}

#[test]
fn s13_calling_self_is_an_error() {
    let rt = rt(1);
    let s = rt.start::<SelfCaller>(()).unwrap();
    assert_eq!(s.call(false), Ok(Some(CallError::CallingSelf)));
}

#[test]
fn s18_stopping_self_is_calling_self() {
    let rt = rt(1);
    let s = rt.start::<SelfCaller>(()).unwrap();
    assert_eq!(s.call(true), Ok(Some(CallError::CallingSelf)));
}

#[test]
fn s14_server_dying_mid_call_returns_its_reason_at_once() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    assert_eq!(
        s.call(Req::StopNoReply(ExitReason::Shutdown)),
        Err(CallError::Exited(ExitReason::Shutdown))
    );
    let s = probe(&rt, "b", &log, InitMode::Ok).unwrap();
    let start = Instant::now();
    assert_eq!(
        s.call(Req::Panic),
        Err(CallError::Exited(ExitReason::panic("boom in handle_call")))
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    // terminate ran after the panic (S19).
    assert!(log.contains("b:terminate:panic: boom in handle_call"));
}

#[test]
fn s14_killed_server_fails_in_flight_and_queued_calls_with_killed() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    let s2 = s.clone();
    let busy = std::thread::spawn(move || s2.call(Req::Sleep(Duration::from_millis(300), 1)));
    assert!(log.wait_for("a:sleeping"));
    let s3 = s.clone();
    let queued = std::thread::spawn(move || s3.call(Req::Echo(2)));
    assert!(wait_until(|| s.mailbox_len() == 1));
    let start = Instant::now();
    s.kill();
    assert_eq!(queued.join().unwrap(), Err(CallError::Exited(ExitReason::Killed)));
    assert_eq!(busy.join().unwrap(), Err(CallError::Exited(ExitReason::Killed)));
    assert!(
        start.elapsed() < Duration::from_millis(250),
        "calls fail at the kill, not after the handler"
    );
    assert!(!log.get().iter().any(|e| e.contains("terminate")));
}

#[test]
fn s15_stop_with_reply_runs_terminate_first() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    assert_eq!(s.call(Req::Stop(ExitReason::Normal, 5)), Ok(Rep::N(5)));
    // The reply came after terminate had run.
    assert!(log.contains("a:terminate:normal"));
    assert!(wait_until(|| !s.is_alive()));
}

#[test]
fn s16_deferred_reply_through_reply_to() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    let s2 = s.clone();
    let waiting = std::thread::spawn(move || s2.call(Req::Defer));
    assert!(log.wait_for("a:deferred"));
    // Another caller makes the server answer the first one.
    assert_eq!(s.call(Req::ReplyDeferred(11)), Ok(Rep::Bool(true)));
    assert_eq!(waiting.join().unwrap(), Ok(Rep::N(11)));
}

#[test]
fn s16_dropped_reply_handle_fails_the_call_at_once() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    let s2 = s.clone();
    let waiting = std::thread::spawn(move || s2.call(Req::Defer));
    assert!(log.wait_for("a:deferred"));
    assert_eq!(s.call(Req::DropDeferred), Ok(Rep::Unit));
    assert_eq!(waiting.join().unwrap(), Err(CallError::NoReply));
}

struct NoHandlers;
impl GenServer for NoHandlers {
    type Args = ();
    type Info = u8;
    type Call = u8;
    type Reply = u8;
    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(NoHandlers)
    }
}

#[test]
fn s17_defaults_info_is_ignored_call_crashes() {
    let rt = rt(2);
    let s = rt.start::<NoHandlers>(()).unwrap();
    s.send(1).unwrap();
    // Still alive after an unexpected info message.
    let r = s.call(1);
    match r {
        Err(CallError::Exited(ExitReason::Panic(m))) => {
            assert!(m.contains("no handle_call/3 clause was provided"), "{m}")
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    assert!(!s.is_alive());
}

#[test]
fn s18_stop_handles_queued_messages_then_terminate() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    s.send("m1".into()).unwrap();
    s.send("m2".into()).unwrap();
    assert_eq!(s.stop(ExitReason::Normal, Duration::MAX), Ok(()));
    assert_eq!(
        log.get(),
        vec![
            "a:init",
            "a:info:m1",
            "a:info:m2",
            "a:stop:normal",
            "a:terminate:normal"
        ]
    );
    assert_eq!(s.stop(ExitReason::Normal, Duration::MAX), Err(CallError::NoProc));
}

#[test]
fn panicking_drop_of_state_does_not_take_the_runtime_down() {
    struct BadDrop;
    impl Drop for BadDrop {
        fn drop(&mut self) {
            panic!("bad drop");
        }
    }
    struct Holder(#[allow(dead_code)] BadDrop);
    impl GenServer for Holder {
        type Args = ();
        type Info = ();
        type Call = ();
        type Reply = ();
        fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
            Ok(Holder(BadDrop))
        }
    }
    let rt = rt(1);
    let h = rt.start::<Holder>(()).unwrap();
    assert_eq!(h.stop(ExitReason::Normal, Duration::from_secs(5)), Ok(()));
    let log = Log::default();
    let s = probe(&rt, "after", &log, InitMode::Ok).unwrap();
    assert_eq!(s.call(Req::Echo(4)), Ok(Rep::N(4)));
}

#[test]
fn state_is_dropped_exactly_once() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Counted;
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
        }
    }
    impl GenServer for Counted {
        type Args = ();
        type Info = ();
        type Call = ();
        type Reply = ();
        fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
            Ok(Counted)
        }
    }
    let rt = rt(2);
    let servers: Vec<_> = (0..100).map(|_| rt.start::<Counted>(()).unwrap()).collect();
    for (i, s) in servers.iter().enumerate() {
        if i % 2 == 0 {
            s.kill();
            s.kill();
        } else {
            let _ = s.stop(ExitReason::Normal, Duration::from_secs(5));
            s.kill();
        }
    }
    assert!(wait_until(|| rt.process_count() == 0));
    assert_eq!(DROPS.load(Ordering::SeqCst), 100);
}

use std::sync::mpsc;

/// Blocks in `handle_info` until released; answers calls with their argument.
struct Gate {
    entered: mpsc::Sender<u32>,
    release: mpsc::Receiver<()>,
}
impl GenServer for Gate {
    type Args = (mpsc::Sender<u32>, mpsc::Receiver<()>);
    type Info = u32;
    type Call = u32;
    type Reply = u32;
    fn init((entered, release): Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Gate { entered, release })
    }
    fn handle_info(&mut self, n: u32, _ctx: &mut Context<'_, Self>) -> Flow {
        let _ = self.entered.send(n);
        let _ = self.release.recv_timeout(Duration::from_secs(30));
        Flow::Continue
    }
    fn handle_call(&mut self, x: u32, _f: ReplyTo<u32>, _ctx: &mut Context<'_, Self>) -> CallFlow<u32> {
        CallFlow::Reply(x)
    }
}

/// A `Gate` blocked in its first `handle_info`; the receiver reports each blocking message
/// entered, the sender releases one.
fn blocked_gate(rt: &Runtime) -> (ServerRef<Gate>, mpsc::Receiver<u32>, mpsc::Sender<()>) {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let s = rt.start::<Gate>((entered_tx, release_rx)).unwrap();
    s.send(1).unwrap();
    assert_eq!(entered.recv_timeout(Duration::from_secs(5)), Ok(1));
    (s, entered, release)
}

/// The runner takes a busy inbox as a whole batch; calls and stop requests in that batch,
/// stuck behind a handler that does not return, still fail at the kill, as the inbox's do.
#[test]
fn s14_calls_in_the_runners_batch_fail_at_once_when_the_server_is_killed() {
    let rt = rt(2);
    let (s, entered, release) = blocked_gate(&rt);
    // While the first handler blocks, queue a second blocking message, two calls and a
    // stop request: the runner takes all four as one batch when the first handler returns.
    s.send(2).unwrap();
    let callers: Vec<_> = (0..2)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || s.call_timeout(i, Duration::from_secs(10)))
        })
        .collect();
    assert!(wait_until(|| s.mailbox_len() == 3));
    let stopper = {
        let s = s.clone();
        std::thread::spawn(move || s.stop(ExitReason::Normal, Duration::from_secs(10)))
    };
    assert!(wait_until(|| s.mailbox_len() == 4));
    release.send(()).unwrap();
    // The second handler now blocks, with the calls and the stop in the runner's batch.
    assert_eq!(entered.recv_timeout(Duration::from_secs(5)), Ok(2));
    let start = Instant::now();
    s.kill();
    for c in callers {
        assert_eq!(c.join().unwrap(), Err(CallError::Exited(ExitReason::Killed)));
    }
    assert_eq!(stopper.join().unwrap(), Err(CallError::Exited(ExitReason::Killed)));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "calls fail at the kill, not after the handler"
    );
    release.send(()).unwrap();
}

/// A stop request taken from the inbox in a batch is registered with the process like a
/// call, then, once handled, waits for the exit like any stop request (S18): `Ok`, not the
/// exit reason.
#[test]
fn s18_a_stop_request_taken_in_a_batch_is_answered_once_the_server_is_gone() {
    let rt = rt(2);
    let (s, _entered, release) = blocked_gate(&rt);
    let caller = {
        let s = s.clone();
        std::thread::spawn(move || s.call_timeout(7, Duration::from_secs(10)))
    };
    assert!(wait_until(|| s.mailbox_len() == 1));
    let stopper = {
        let s = s.clone();
        std::thread::spawn(move || s.stop(ExitReason::Normal, Duration::from_secs(10)))
    };
    assert!(wait_until(|| s.mailbox_len() == 2));
    release.send(()).unwrap();
    assert_eq!(caller.join().unwrap(), Ok(7));
    assert_eq!(stopper.join().unwrap(), Ok(()));
    assert!(!s.is_alive());
}

/// A server that logs its inactivity timeouts (S9).
struct Sleepy {
    log: Log,
    armed_at: Instant,
    /// Timeouts `handle_timeout` re-arms before it stops re-arming.
    rearm: u32,
}

enum SleepyMsg {
    /// Logs "ping" and, after `Probe`'s delay, sends itself `Probe`; sets no timeout.
    Ping(Duration),
    Probe,
    /// Sends itself `Probe`, then asks for a zero timeout.
    ProbeThenZero,
}

enum SleepyInit {
    /// Asks for this timeout from `init`.
    Timeout(Duration),
    /// Sends itself `Ping` from `init`, then asks for this timeout.
    PingFirst(Duration, Duration),
    /// Asks for this timeout from `init`, re-arming it from `handle_timeout` this often.
    Rearm(Duration, u32),
    Nothing,
}

impl GenServer for Sleepy {
    type Args = (Log, SleepyInit);
    type Info = SleepyMsg;
    /// A timeout to ask for when replying.
    type Call = Duration;
    type Reply = ();

    fn init((log, init): Self::Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        let mut rearm = 0;
        match init {
            SleepyInit::Timeout(t) => ctx.set_timeout(t),
            SleepyInit::PingFirst(probe_after, t) => {
                ctx.send_self(SleepyMsg::Ping(probe_after));
                ctx.set_timeout(t);
            }
            SleepyInit::Rearm(t, n) => {
                ctx.set_timeout(t);
                rearm = n;
            }
            SleepyInit::Nothing => {}
        }
        Ok(Sleepy {
            log,
            armed_at: Instant::now(),
            rearm,
        })
    }

    fn handle_info(&mut self, msg: SleepyMsg, ctx: &mut Context<'_, Self>) -> Flow {
        match msg {
            SleepyMsg::Ping(probe_after) => {
                self.log.push("ping");
                ctx.send_after(probe_after, SleepyMsg::Probe);
            }
            SleepyMsg::Probe => self.log.push("probe"),
            SleepyMsg::ProbeThenZero => {
                ctx.send_self(SleepyMsg::Probe);
                ctx.set_timeout(Duration::ZERO);
            }
        }
        Flow::Continue
    }

    fn handle_call(&mut self, t: Duration, _from: ReplyTo<()>, ctx: &mut Context<'_, Self>) -> CallFlow<()> {
        self.armed_at = Instant::now();
        ctx.set_timeout(t);
        CallFlow::Reply(())
    }

    fn handle_timeout(&mut self, ctx: &mut Context<'_, Self>) -> Flow {
        let waited = self.armed_at.elapsed();
        self.log.push(format!("timeout after {} ms", waited.as_millis()));
        self.log.push("timeout");
        if self.rearm > 0 {
            self.rearm -= 1;
            self.armed_at = Instant::now();
            ctx.set_timeout(Duration::from_millis(5));
        }
        Flow::Continue
    }
}

fn timeouts(log: &Log) -> usize {
    log.get().iter().filter(|e| *e == "timeout").count()
}

#[test]
fn s9_a_timeout_from_init_fires_after_that_much_inactivity() {
    let rt = rt(2);
    let log = Log::default();
    let _s = rt
        .start::<Sleepy>((log.clone(), SleepyInit::Timeout(Duration::from_millis(30))))
        .unwrap();
    assert!(log.wait_for("timeout"));
    let waited = log.get().into_iter().find(|e| e.starts_with("timeout after")).unwrap();
    let ms: u64 = waited.split(' ').nth(2).unwrap().parse().unwrap();
    assert!(ms >= 30, "fired after {ms} ms, before its 30 ms");
}

#[test]
fn s9_a_message_that_arrives_first_cancels_the_timeout() {
    let rt = rt(2);
    let log = Log::default();
    // `init` queues a Ping before its 50 ms timeout is armed, so the Ping arrives first;
    // the Ping's handler sets no timeout and sends a Probe 150 ms later. Had the timeout
    // survived the Ping, it would have fired 100 ms before the Probe.
    let _s = rt
        .start::<Sleepy>((
            log.clone(),
            SleepyInit::PingFirst(Duration::from_millis(150), Duration::from_millis(50)),
        ))
        .unwrap();
    assert!(log.wait_for("probe"));
    assert_eq!(log.get(), vec!["ping", "probe"]);
}

#[test]
fn s9_a_reply_can_set_a_timeout() {
    let rt = rt(2);
    let log = Log::default();
    let s = rt.start::<Sleepy>((log.clone(), SleepyInit::Nothing)).unwrap();
    s.call(Duration::from_millis(20)).unwrap();
    assert!(log.wait_for("timeout"));
    assert_eq!(timeouts(&log), 1);
}

#[test]
fn s9_a_zero_timeout_fires_at_once_when_nothing_waits() {
    let rt = rt(2);
    let log = Log::default();
    let s = rt.start::<Sleepy>((log.clone(), SleepyInit::Nothing)).unwrap();
    s.call(Duration::ZERO).unwrap();
    assert!(log.wait_for("timeout"));
}

#[test]
fn s9_a_zero_timeout_does_not_fire_when_a_message_waits() {
    let rt = rt(2);
    let log = Log::default();
    let s = rt.start::<Sleepy>((log.clone(), SleepyInit::Nothing)).unwrap();
    s.send(SleepyMsg::ProbeThenZero).unwrap();
    assert!(log.wait_for("probe"));
    // A call is handled after anything the zero timeout could have queued.
    s.call(Duration::MAX).unwrap();
    assert_eq!(log.get(), vec!["probe"]);
}

#[test]
fn s9_handle_timeout_can_set_the_next_timeout() {
    let rt = rt(2);
    let log = Log::default();
    let s = rt
        .start::<Sleepy>((log.clone(), SleepyInit::Rearm(Duration::from_millis(5), 3)))
        .unwrap();
    assert!(wait_until(|| timeouts(&log) == 4));
    // The server still answers, and sets no further timeout of its own.
    s.call(Duration::MAX).unwrap();
    assert_eq!(timeouts(&log), 4);
}
