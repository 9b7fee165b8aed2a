//! Runtime lifecycle: builder, shutdown, drop.

mod common;
use arbor_core::*;
use common::*;
use std::time::Duration;

#[test]
fn builder_names_threads_and_sizes_the_pool() {
    let rt = Runtime::builder()
        .worker_threads(3)
        .thread_name("unit")
        .build()
        .unwrap();
    assert_eq!(rt.worker_count(), 3);
    assert_eq!(rt.name(), "unit");
    struct Name;
    impl GenServer for Name {
        type Args = ();
        type Info = ();
        type Call = ();
        type Reply = String;
        fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
            Ok(Name)
        }
        fn handle_call(&mut self, _: (), _f: ReplyTo<String>, _ctx: &mut Context<'_, Self>) -> CallFlow<String> {
            CallFlow::Reply(std::thread::current().name().unwrap_or("").to_string())
        }
    }
    let s = rt.start::<Name>(()).unwrap();
    assert!(s.call(()).unwrap().starts_with("unit-"));
}

#[test]
fn shutdown_stops_every_process_and_runs_trapping_terminates() {
    let rt = rt(2);
    let log = Log::default();
    let plain = probe(&rt, "plain", &log, InitMode::Ok).unwrap();
    let trap = probe(&rt, "trap", &log, InitMode::Trap).unwrap();
    let _tree = rt.start::<Parent>((log.clone(), InitMode::Trap, false)).unwrap();
    assert_eq!(rt.process_count(), 4);
    rt.shutdown();
    assert!(!plain.is_alive() && !trap.is_alive());
    assert!(log.contains("trap:terminate:shutdown"));
    // The linked child of a non-trapping parent died with it (its parent stopped it).
    assert!(log.contains("child:terminate:shutdown"));
    assert!(!log.contains("plain:terminate:shutdown"));
}

#[test]
fn drop_shuts_down_and_start_after_is_refused() {
    let rt = rt(1);
    let handle = rt.handle().clone();
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Trap).unwrap();
    drop(rt);
    assert!(!s.is_alive());
    assert!(log.contains("a:terminate:shutdown"));
    let err = Probe::start(("b".into(), log, InitMode::Ok), StartOpts::new().runtime(&handle)).unwrap_err();
    assert_eq!(err, StartError::ShuttingDown);
}

#[test]
fn shutdown_kills_what_does_not_stop_in_time() {
    struct Stubborn;
    impl GenServer for Stubborn {
        type Args = ();
        type Info = ();
        type Call = ();
        type Reply = ();
        fn init(_: (), ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
            ctx.trap_exits(true);
            Ok(Stubborn)
        }
        // The runtime's shutdown reaches a root as a stop request: ignoring it is how a
        // server stays (an override of `handle_exit` never sees it).
        fn handle_stop(&mut self, _r: ExitReason, _ctx: &mut Context<'_, Self>) -> Flow {
            Flow::Continue
        }
    }
    let rt = Runtime::builder()
        .worker_threads(1)
        .shutdown_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let s = rt.start::<Stubborn>(()).unwrap();
    rt.shutdown();
    assert!(!s.is_alive());
    assert_eq!(s.wait_exit(DEADLINE), Some(ExitReason::Killed));
}

#[test]
fn start_outside_a_process_needs_a_runtime() {
    let log = Log::default();
    let err = Probe::start(("a".into(), log, InitMode::Ok), StartOpts::new()).unwrap_err();
    assert_eq!(err, StartError::NoRuntime);
}

#[test]
fn a_stale_pid_never_reaches_a_new_process() {
    let rt = rt(1);
    let log = Log::default();
    let old = probe(&rt, "old", &log, InitMode::Ok).unwrap();
    let old_pid = old.pid();
    old.kill();
    assert!(wait_until(|| rt.process_count() == 0));
    // The new process may reuse the slot, never the pid.
    let new = probe(&rt, "new", &log, InitMode::Ok).unwrap();
    assert_ne!(new.pid(), old_pid);
    assert!(ServerRef::<Probe>::from_pid(old_pid).is_none());
    assert!(!is_alive(old_pid));
    kill(old_pid);
    assert!(new.is_alive());
}

#[test]
fn wait_exit_by_pid() {
    let rt = rt(2);
    let log = Log::default();
    let target = probe(&rt, "t", &log, InitMode::Ok).unwrap();
    let pid = target.pid();
    assert_eq!(
        rt.wait_exit(pid, std::time::Duration::from_millis(20)),
        None,
        "still alive"
    );
    let h = rt.handle().clone();
    let waiter = std::thread::spawn(move || h.wait_exit(pid, DEADLINE));
    // The exit reason stays readable until the process is finalized, and a monitor set
    // before that hears it: either way the waiter gets the reason, never a hang.
    target.exit(ExitReason::custom("bye"));
    let got = waiter.join().unwrap();
    assert!(
        got == Some(ExitReason::custom("bye")) || got == Some(ExitReason::NoProc),
        "{got:?}"
    );
    assert!(wait_until(|| rt.process_count() == 0));
    assert_eq!(rt.wait_exit(pid, DEADLINE), Some(ExitReason::NoProc));
}

/// Two processes bouncing a message forever run back to back through the worker's LIFO
/// slot; on a one-worker runtime, a third process must still get its turn.
#[test]
fn a_bouncing_pair_cannot_starve_another_process() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    struct Bouncer {
        peer: Option<ServerRef<Bouncer>>,
        hops: Arc<AtomicU64>,
        stop: Arc<AtomicBool>,
    }
    enum Msg {
        Peer(ServerRef<Bouncer>),
        Ball,
    }
    impl GenServer for Bouncer {
        type Args = (Arc<AtomicU64>, Arc<AtomicBool>);
        type Info = Msg;
        type Call = ();
        type Reply = ();
        fn init((hops, stop): Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
            Ok(Bouncer { peer: None, hops, stop })
        }
        fn handle_info(&mut self, msg: Msg, _ctx: &mut Context<'_, Self>) -> Flow {
            match msg {
                Msg::Peer(p) => self.peer = Some(p),
                Msg::Ball => {
                    self.hops.fetch_add(1, Ordering::Relaxed);
                    if !self.stop.load(Ordering::Relaxed) {
                        let _ = self.peer.as_ref().expect("peer set first").send(Msg::Ball);
                    }
                }
            }
            Flow::Continue
        }
    }
    struct Echo;
    impl GenServer for Echo {
        type Args = ();
        type Info = ();
        type Call = u32;
        type Reply = u32;
        fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
            Ok(Echo)
        }
        fn handle_call(&mut self, x: u32, _f: ReplyTo<u32>, _ctx: &mut Context<'_, Self>) -> CallFlow<u32> {
            CallFlow::Reply(x + 1)
        }
    }

    let rt = rt(1);
    let hops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let a = rt.start::<Bouncer>((hops.clone(), stop.clone())).unwrap();
    let b = rt.start::<Bouncer>((hops.clone(), stop.clone())).unwrap();
    let echo = rt.start::<Echo>(()).unwrap();
    a.send(Msg::Peer(b.clone())).unwrap();
    b.send(Msg::Peer(a.clone())).unwrap();
    a.send(Msg::Ball).unwrap();
    assert!(wait_until(|| hops.load(Ordering::Relaxed) > 10_000), "the pair bounces");
    for i in 0..100 {
        assert_eq!(echo.call_timeout(i, Duration::from_secs(5)), Ok(i + 1));
    }
    let before = hops.load(Ordering::Relaxed);
    assert!(
        wait_until(|| hops.load(Ordering::Relaxed) > before + 10_000),
        "the pair still bounces"
    );
    stop.store(true, Ordering::Relaxed);
}

fn named(n: &str) -> Runtime {
    Runtime::builder().worker_threads(1).thread_name(n).build().unwrap()
}

fn start_plain() -> Result<ServerRef<Jobs>, StartError> {
    Jobs::start((), StartOpts::new())
}

#[test]
fn the_thread_that_builds_a_runtime_starts_on_it_without_saying_so() {
    assert_eq!(start_plain().err(), Some(StartError::NoRuntime));
    let a = named("a");
    assert_eq!(start_plain().unwrap().runtime().name(), "a");
    assert_eq!(RuntimeHandle::current().unwrap().name(), "a");
    {
        let b = named("b");
        assert_eq!(start_plain().unwrap().runtime().name(), "b", "the newest");
        b.shutdown();
    }
    assert_eq!(start_plain().unwrap().runtime().name(), "a", "back to a once b is gone");
    drop(a);
    assert_eq!(start_plain().err(), Some(StartError::NoRuntime));
    assert!(RuntimeHandle::current().is_none());
}

#[test]
fn other_threads_enter_a_runtime_with_a_guard() {
    let a = named("a");
    let b = named("b");
    let (ha, hb) = (a.handle().clone(), b.handle().clone());
    std::thread::spawn(move || {
        assert_eq!(start_plain().err(), Some(StartError::NoRuntime), "nothing entered");
        let ga = ha.enter();
        assert_eq!(start_plain().unwrap().runtime().name(), "a");
        {
            let _gb = hb.enter();
            assert_eq!(start_plain().unwrap().runtime().name(), "b", "nested");
        }
        assert_eq!(start_plain().unwrap().runtime().name(), "a", "restored");
        drop(ga);
        assert_eq!(start_plain().err(), Some(StartError::NoRuntime));
    })
    .join()
    .unwrap();
}

#[test]
fn inside_a_process_its_own_runtime_wins() {
    let a = named("a");
    let server = a.start::<Jobs>(()).unwrap();
    let _b = named("b"); // current on this thread now
    let (tx, rx) = std::sync::mpsc::channel();
    server
        .call(job(move |_, _, _| {
            tx.send(start_plain().map(|s| s.runtime().name().to_string())).unwrap();
            Some(String::new())
        }))
        .unwrap();
    assert_eq!(rx.recv().unwrap().unwrap(), "a");
    assert_eq!(start_plain().unwrap().runtime().name(), "b");
}

#[test]
fn enter_guards_and_dead_runtimes_leave_the_right_runtime_current() {
    let a = named("a");
    for _ in 0..100_000 {
        let _g = a.enter();
    }
    for _ in 0..200 {
        let _r = named("short-lived");
    }
    assert_eq!(start_plain().unwrap().runtime().name(), "a");
}

/// Answers every call with its request plus one.
struct Incr;

impl GenServer for Incr {
    type Args = ();
    type Info = ();
    type Call = u64;
    type Reply = u64;
    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Incr)
    }
    fn handle_call(&mut self, n: u64, _f: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(n + 1)
    }
}

/// Calls from outside, each leaving the pool without work until the next: an idle worker
/// spins for work after each unless `busy_wait` is off.
fn idle_spins_after_calls(busy_wait: bool) -> u64 {
    let rt = Runtime::builder()
        .worker_threads(1)
        .busy_wait(busy_wait)
        .build()
        .unwrap();
    let s = rt.start::<Incr>(()).unwrap();
    for n in 0..1_000u64 {
        assert_eq!(s.call(n), Ok(n + 1), "every call answered");
    }
    rt.stats().idle_spins
}

#[test]
fn busy_wait_off_parks_an_idle_worker_without_spinning() {
    assert_eq!(idle_spins_after_calls(false), 0);
    // The default spins: the counter above would see it.
    assert!(idle_spins_after_calls(true) > 0);
}
