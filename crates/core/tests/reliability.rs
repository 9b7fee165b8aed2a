//! Regression tests of the reliability defects (orphans, leaks, zombies, thread growth):
//! each is named after the defect it pins, and fails without its fix.

mod common;
use arbor_core::*;
use common::{hold, job, rt, wait_until, Jobs, DEADLINE};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A server that does nothing; counts its `init` runs.
struct Idle;

impl GenServer for Idle {
    type Args = Arc<AtomicUsize>;
    type Info = ();
    type Call = ();
    type Reply = ();

    fn init(inits: Arc<AtomicUsize>, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        inits.fetch_add(1, Ordering::SeqCst);
        Ok(Idle)
    }

    fn handle_call(&mut self, _: (), _from: ReplyTo<()>, _ctx: &mut Context<'_, Self>) -> CallFlow<()> {
        CallFlow::Reply(())
    }
}

/// Starts a call on `jobs` whose handler signals `started`, then blocks until `go`, then
/// runs `then`. Returns the thread making the call.
fn blocked_call(
    jobs: &ServerRef<Jobs>,
    then: impl FnOnce(&mut Jobs, ReplyTo<String>, &mut Context<'_, Jobs>) -> Option<String> + Send + 'static,
) -> (mpsc::Sender<()>, std::thread::JoinHandle<Result<String, CallError>>) {
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let j = jobs.clone();
    let caller = std::thread::spawn(move || {
        j.call_timeout(
            job(move |s, from, ctx| {
                started_tx.send(()).unwrap();
                let _ = go_rx.recv_timeout(DEADLINE);
                then(s, from, ctx)
            }),
            DEADLINE,
        )
    });
    started_rx.recv_timeout(DEADLINE).expect("the handler started");
    (go_tx, caller)
}

#[test]
fn orphan_start_link_from_a_killed_parent_fails_before_init() {
    let rt = rt(2);
    let jobs = rt.start::<Jobs>(()).unwrap();
    let inits = Arc::new(AtomicUsize::new(0));
    let (res_tx, res_rx) = mpsc::channel();
    let i2 = inits.clone();
    let (go, caller) = blocked_call(&jobs, move |_, _, _| {
        res_tx.send(Idle::start_link(i2, StartOpts::new())).unwrap();
        Some(String::new())
    });
    jobs.kill();
    assert_eq!(caller.join().unwrap(), Err(CallError::Exited(ExitReason::Killed)));
    go.send(()).unwrap();
    let started = res_rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!(started.err(), Some(StartError::CallerExited(ExitReason::Killed)));
    assert!(
        wait_until(|| rt.process_count() == 0),
        "an orphan is left: {:?}",
        rt.processes()
    );
    assert_eq!(inits.load(Ordering::SeqCst), 0, "init ran for a child of a dead parent");
}

#[test]
fn orphan_link_from_a_killed_process_takes_the_other_side_down() {
    let rt = rt(2);
    let jobs = rt.start::<Jobs>(()).unwrap();
    let other = rt.start::<Idle>(Arc::default()).unwrap();
    let (res_tx, res_rx) = mpsc::channel();
    let target = other.pid();
    let (go, caller) = blocked_call(&jobs, move |_, _, ctx| {
        res_tx.send(ctx.link(target)).unwrap();
        None
    });
    jobs.kill();
    assert_eq!(caller.join().unwrap(), Err(CallError::Exited(ExitReason::Killed)));
    go.send(()).unwrap();
    assert_eq!(
        res_rx.recv_timeout(DEADLINE).unwrap(),
        Err(NoProc),
        "a link that does not exist"
    );
    assert_eq!(other.wait_exit(DEADLINE), Some(ExitReason::Killed));
    assert!(wait_until(|| rt.process_count() == 0));
}

#[test]
fn orphan_monitor_from_a_killed_process_leaves_nothing_on_its_target() {
    let rt = rt(2);
    let jobs = rt.start::<Jobs>(()).unwrap();
    let target = rt.start::<Idle>(Arc::default()).unwrap();
    let t = target.pid();
    let (go, caller) = blocked_call(&jobs, move |_, _, ctx| {
        ctx.monitor(t);
        None
    });
    jobs.kill();
    assert_eq!(caller.join().unwrap(), Err(CallError::Exited(ExitReason::Killed)));
    go.send(()).unwrap();
    assert!(wait_until(|| !rt.processes().contains(&jobs.pid())));
    assert_eq!(rt.process_info(t).unwrap().monitored_by, 0);
}

#[test]
fn orphan_init_never_runs_after_a_start_timeout() {
    let rt = rt(1);
    let jobs = rt.start::<Jobs>(()).unwrap();
    // The only worker is busy, so the new server's init waits in the run queue past the
    // start's deadline.
    let (go, caller) = blocked_call(&jobs, |_, _, _| Some(String::new()));
    let inits = Arc::new(AtomicUsize::new(0));
    let started = Idle::start(
        inits.clone(),
        StartOpts::new().runtime(&rt).timeout(Duration::from_millis(20)),
    );
    assert_eq!(started.err(), Some(StartError::Timeout));
    go.send(()).unwrap();
    assert_eq!(caller.join().unwrap(), Ok(String::new()));
    assert!(wait_until(|| rt.process_count() == 1), "{:?}", rt.processes());
    // The init task has run (the process is gone) and found the process dead.
    assert_eq!(inits.load(Ordering::SeqCst), 0);
}

#[test]
fn a_start_link_timeout_does_not_kill_the_caller() {
    let rt = rt(2);
    let jobs = rt.start::<Jobs>(()).unwrap();
    struct Slow;
    impl GenServer for Slow {
        type Args = mpsc::Receiver<()>;
        type Info = ();
        type Call = ();
        type Reply = ();
        fn init(gate: mpsc::Receiver<()>, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
            let _ = gate.recv_timeout(DEADLINE);
            Ok(Slow)
        }
    }
    let (gate_tx, gate_rx) = mpsc::channel();
    let r = jobs.call(job(move |_, _, _| {
        let e = Slow::start_link(gate_rx, StartOpts::new().timeout(Duration::from_millis(20)));
        Some(format!("{:?}", e.err()))
    }));
    assert_eq!(r, Ok("Some(Timeout)".to_string()));
    gate_tx.send(()).unwrap();
    assert!(wait_until(|| rt.process_count() == 1));
    assert!(
        jobs.is_alive(),
        "the caller of a timed-out start_link was killed by its child"
    );
    assert_eq!(rt.process_info(jobs.pid()).unwrap().links, Vec::<Pid>::new());
}

#[test]
fn held_call_entry_is_removed_when_a_timed_out_call_is_dropped_unanswered() {
    let rt = rt(2);
    let jobs = rt.start::<Jobs>(()).unwrap();
    let r = jobs.call_timeout(hold(), Duration::from_millis(20));
    assert_eq!(r, Err(CallError::Timeout));
    assert_eq!(rt.process_info(jobs.pid()).unwrap().held_calls, 1);
    let dropped = jobs.call(job(|s, _, _| {
        s.held.clear();
        Some(String::new())
    }));
    assert_eq!(dropped, Ok(String::new()));
    assert_eq!(rt.process_info(jobs.pid()).unwrap().held_calls, 0);
}

#[test]
fn a_second_reply_on_a_clone_does_not_unregister_another_call() {
    let rt = rt(2);
    let jobs = rt.start::<Jobs>(()).unwrap();
    // Call A: answered through one handle, a clone kept.
    let a = jobs.call(job(|s, from, _| {
        s.held.push(from.clone());
        assert!(from.reply("a".into()));
        None
    }));
    assert_eq!(a, Ok("a".to_string()));
    // Call B: deferred; it reuses A's slot in the held-call table.
    let j = jobs.clone();
    let b = std::thread::spawn(move || j.call_timeout(hold(), Duration::MAX));
    assert!(wait_until(|| rt.process_info(jobs.pid()).unwrap().held_calls == 1));
    // The second reply through A's clone loses, and must leave B held.
    let second = jobs.call(job(|s, _, _| Some(s.held[0].reply("again".into()).to_string())));
    assert_eq!(second, Ok("false".to_string()));
    assert_eq!(rt.process_info(jobs.pid()).unwrap().held_calls, 1);
    // So killing the server fails B at once (it waits with no timeout).
    jobs.kill();
    assert_eq!(b.join().unwrap(), Err(CallError::Exited(ExitReason::Killed)));
}

#[test]
fn compensation_threads_stop_at_the_cap_and_are_counted() {
    let rt = Runtime::builder()
        .worker_threads(1)
        .max_blocking_threads(3)
        .build()
        .unwrap();
    let target = rt.start::<Jobs>(()).unwrap();
    // 20 servers each block in a call that the target holds unanswered. At the cap the
    // blocked workers are not compensated: the inner calls then end at their timeout.
    let mut callers = Vec::new();
    for _ in 0..20 {
        let c = rt.start::<Jobs>(()).unwrap();
        let t = target.clone();
        callers.push(std::thread::spawn(move || {
            c.call_timeout(
                job(move |_, _, _| {
                    let r = t.call_timeout(hold(), Duration::from_millis(300));
                    Some(format!("{r:?}"))
                }),
                DEADLINE,
            )
        }));
    }
    let mut most = 0;
    assert!(wait_until(|| {
        most = most.max(rt.worker_count());
        rt.stats().compensation_refused > 0
    }));
    for t in callers {
        assert_eq!(t.join().unwrap(), Ok("Err(Timeout)".to_string()));
        most = most.max(rt.worker_count());
    }
    assert!(most <= 1 + 3, "{most} worker threads");
    // The runtime works on once the blocked workers resume.
    assert_eq!(
        target.call(job(|_, _, _| Some("alive".into()))),
        Ok("alive".to_string())
    );
}

/// Names of this program's threads that start with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_runtime_shut_down_from_its_own_worker_stops_its_threads() {
    let rt = Runtime::builder()
        .worker_threads(2)
        .thread_name("selfstop")
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let probe_pid = rt.start::<Jobs>(()).unwrap().pid();
    // A new thread names itself once it runs (until then it bears its parent's name).
    assert!(
        wait_until(|| threads_named("selfstop") >= 4),
        "two workers, the timer, the monitor"
    );
    assert_eq!(handle.worker_count(), 2);
    let holder = Arc::new(parking_lot::Mutex::new(Some(rt)));
    let h = holder.clone();
    let jobs = holder.lock().as_ref().unwrap().start::<Jobs>(()).unwrap();
    let _ = jobs.call(job(move |_, _, _| {
        let rt = h.lock().take().unwrap();
        let report = rt.shutdown();
        Some(format!("{report:?}"))
    }));
    assert!(
        wait_until(|| threads_named("selfstop") == 0 && handle.worker_count() == 0),
        "threads {:?}, workers {}",
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .collect::<Vec<_>>(),
        handle.worker_count()
    );
    assert!(RuntimeHandle::of(probe_pid).is_none(), "still registered");
}

/// A server that answers each message (a channel) by sending on it.
struct Pinger;

impl GenServer for Pinger {
    type Args = ();
    type Info = mpsc::Sender<()>;
    type Call = ();
    type Reply = ();

    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Pinger)
    }

    fn handle_info(&mut self, tx: mpsc::Sender<()>, _ctx: &mut Context<'_, Self>) -> Flow {
        let _ = tx.send(());
        Flow::Continue
    }
}

#[test]
fn a_handler_that_blocks_outside_arbor_does_not_hold_the_process_it_woke() {
    let rt = rt(2);
    let a = rt.start::<Jobs>(()).unwrap();
    let pinger = rt.start::<Pinger>(()).unwrap();
    // A wakes the pinger (which lands in the LIFO slot of A's worker), then blocks in std
    // code until the pinger has run: the idle worker must get it.
    let r = a.call(job(move |_, _, _| {
        let (tx, rx) = mpsc::channel();
        pinger.send(tx).unwrap();
        Some(rx.recv_timeout(DEADLINE).is_ok().to_string())
    }));
    assert_eq!(r, Ok("true".to_string()));
}

#[test]
fn blocking_code_marked_with_blocking_is_compensated() {
    let rt = rt(1);
    let a = rt.start::<Jobs>(()).unwrap();
    let pinger = rt.start::<Pinger>(()).unwrap();
    // One worker: only a thread standing in for it can run the pinger.
    let r = a.call(job(move |_, _, _| {
        let (tx, rx) = mpsc::channel();
        pinger.send(tx).unwrap();
        Some(blocking(|| rx.recv_timeout(DEADLINE)).is_ok().to_string())
    }));
    assert_eq!(r, Ok("true".to_string()));
}

/// A name whose `describe` panics (user code in a crash report).
struct BadName(parking_lot::Mutex<Option<Pid>>, bool);

impl Naming for BadName {
    fn register(&self, pid: Pid) -> Result<(), NameError> {
        if self.1 {
            panic!("register exploded");
        }
        *self.0.lock() = Some(pid);
        Ok(())
    }
    fn unregister(&self, pid: Pid) {
        let mut held = self.0.lock();
        if *held == Some(pid) {
            *held = None;
        }
    }
    fn whereis(&self) -> Option<Pid> {
        *self.0.lock()
    }
    fn describe(&self) -> String {
        panic!("describe exploded")
    }
}

#[test]
fn zombie_a_panic_in_a_crash_report_still_finishes_the_process() {
    let rt = rt(2);
    let s = Jobs::start(
        (),
        StartOpts::new()
            .runtime(&rt)
            .name(BadName(parking_lot::Mutex::new(None), false)),
    )
    .unwrap();
    let r = s.call(job(|_, _, _| panic!("the handler fails")));
    assert!(matches!(r, Err(CallError::Exited(ExitReason::Panic(_)))), "{r:?}");
    assert!(s.wait_exit(DEADLINE).is_some());
    assert!(wait_until(|| rt.process_count() == 0), "a zombie: {:?}", rt.processes());
    assert_eq!(s.call(job(|_, _, _| None)), Err(CallError::NoProc));
}

#[test]
fn zombie_a_naming_register_that_panics_fails_the_start_and_leaves_nothing() {
    let rt = rt(2);
    let r = Jobs::start(
        (),
        StartOpts::new()
            .runtime(&rt)
            .name(BadName(parking_lot::Mutex::new(None), true)),
    );
    assert!(matches!(r, Err(StartError::NameUnavailable(_))), "{:?}", r.err());
    assert_eq!(rt.process_count(), 0);
}

/// A trapping server whose `handle_exit` ignores every exit signal.
struct Deaf(Arc<AtomicUsize>);

impl GenServer for Deaf {
    type Args = Arc<AtomicUsize>;
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init(terminated: Arc<AtomicUsize>, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.trap_exits(true);
        Ok(Deaf(terminated))
    }
    fn handle_exit(&mut self, _from: Pid, _reason: ExitReason, _ctx: &mut Context<'_, Self>) -> Flow {
        Flow::Continue
    }
    fn terminate(&mut self, _reason: &ExitReason, _ctx: &mut Context<'_, Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_handle_exit_override_cannot_ignore_the_parents_exit() {
    let rt = rt(2);
    let parent = rt.start::<Jobs>(()).unwrap();
    let terminated = Arc::new(AtomicUsize::new(0));
    let t = terminated.clone();
    let child = parent
        .call(job(move |_, _, _| {
            Some(Deaf::start_link(t, StartOpts::new()).unwrap().pid().to_string())
        }))
        .unwrap();
    let child = rt.processes().into_iter().find(|p| p.to_string() == child).unwrap();
    // An exit from anyone else is the override's to ignore.
    exit(child, ExitReason::custom("stranger"));
    assert!(is_alive(child));
    parent.exit(ExitReason::Shutdown);
    assert_eq!(
        ServerRef::<Deaf>::from_pid(child).map(|c| c.wait_exit(DEADLINE)),
        Some(Some(ExitReason::Shutdown))
    );
    assert_eq!(terminated.load(Ordering::SeqCst), 1, "terminate runs exactly once");
}

#[test]
fn shutdown_does_not_wait_for_a_killed_handler_and_reports_it() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let jobs = rt.start::<Jobs>(()).unwrap();
    let (go, caller) = blocked_call(&jobs, |_, _, _| None);
    jobs.kill();
    assert_eq!(caller.join().unwrap(), Err(CallError::Exited(ExitReason::Killed)));
    let began = Instant::now();
    let report = rt.shutdown_timeout(Duration::from_secs(60));
    let took = began.elapsed();
    go.send(()).unwrap();
    assert_eq!(report.stuck.len(), 1, "{report:?}");
    assert_eq!(report.stuck[0].pid, jobs.pid());
    assert!(report.stuck[0].type_name.ends_with("Jobs"));
    // A bound, not a timing target: the dead handler is not waited for (the shutdown
    // timeout is a minute).
    assert!(took < Duration::from_secs(30), "shutdown took {took:?}");
}

#[test]
fn shutdown_timeout_bounds_a_live_stuck_handler() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let jobs = rt.start::<Jobs>(()).unwrap();
    // Trapping: the runtime's exit signal waits in the mailbox behind the stuck handler.
    jobs.call(job(|_, _, ctx| {
        ctx.trap_exits(true);
        Some(String::new())
    }))
    .unwrap();
    let (go, caller) = blocked_call(&jobs, |_, _, _| Some(String::new()));
    let report = rt.shutdown_timeout(Duration::from_millis(100));
    go.send(()).unwrap();
    let _ = caller.join();
    assert_eq!(report.killed, 1, "{report:?}");
    assert_eq!(report.stuck.len(), 1, "{report:?}");
}

#[test]
fn exit_hooks_can_be_removed_and_a_removed_hook_never_runs() {
    let rt = rt(2);
    let s = rt.start::<Idle>(Arc::default()).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    let hook = rt
        .on_exit(s.pid(), move |_: Pid, _: &ExitReason| {
            r2.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(rt.process_info(s.pid()).unwrap().exit_hooks, 1);
    assert!(rt.remove_exit_hook(s.pid(), hook));
    assert!(!rt.remove_exit_hook(s.pid(), hook));
    assert_eq!(rt.process_info(s.pid()).unwrap().exit_hooks, 0);
    s.kill();
    assert!(s.wait_exit(DEADLINE).is_some());
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

/// A server whose `init` starts the next one in a chain, `depth` more times.
struct Nest;

impl GenServer for Nest {
    type Args = (usize, Arc<parking_lot::Mutex<Option<StartError>>>);
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init((left, err): Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        if left > 0 {
            if let Err(e) = Nest::start_link((left - 1, err.clone()), StartOpts::new()) {
                let mut slot = err.lock();
                if slot.is_none() {
                    *slot = Some(e.clone());
                }
                return Err(ExitReason::custom(e.to_string()));
            }
        }
        Ok(Nest)
    }
}

#[test]
fn init_nested_ten_thousand_deep_is_a_typed_error_not_an_abort() {
    let rt = rt(2);
    let err = Arc::new(parking_lot::Mutex::new(None));
    // On a thread with a 2 MiB stack, as a spawned thread gets by default.
    let rt2 = rt.handle().clone();
    let e2 = err.clone();
    let r = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || Nest::start((10_000, e2), StartOpts::new().runtime(&rt2)).err())
        .unwrap()
        .join()
        .unwrap();
    assert!(matches!(r, Some(StartError::Init(_))), "{r:?}");
    assert!(matches!(*err.lock(), Some(StartError::NestedTooDeep(_))));
    assert!(wait_until(|| rt.process_count() == 0));
}

#[test]
fn stop_fails_with_the_reason_when_terminate_panics() {
    struct BadTerminate;
    impl GenServer for BadTerminate {
        type Args = ();
        type Info = ();
        type Call = ();
        type Reply = ();
        fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
            Ok(BadTerminate)
        }
        fn terminate(&mut self, _reason: &ExitReason, _ctx: &mut Context<'_, Self>) {
            panic!("terminate fails");
        }
    }
    let rt = rt(2);
    let s = rt.start::<BadTerminate>(()).unwrap();
    let r = s.stop(ExitReason::Normal, DEADLINE);
    assert!(matches!(r, Err(CallError::Exited(ExitReason::Panic(_)))), "{r:?}");
    let ok = rt.start::<Idle>(Arc::default()).unwrap();
    assert_eq!(ok.stop(ExitReason::Normal, DEADLINE), Ok(()));
}

#[test]
fn a_call_cycle_across_two_runtimes_is_a_deadlock_error_not_a_hang() {
    let rt_a = rt(1);
    let rt_b = rt(1);
    let a = rt_a.start::<Jobs>(()).unwrap();
    let b = rt_b.start::<Jobs>(()).unwrap();
    // a calls b, whose handler calls a back: a cycle spanning the two runtimes.
    let a2 = a.clone();
    let r = a.call_timeout(
        job(move |_, _, _| {
            let inner = b.call_timeout(
                job(move |_, _, _| Some(format!("{:?}", a2.call(job(|_, _, _| Some("unreachable".into())))))),
                Duration::MAX,
            );
            Some(format!("{inner:?}"))
        }),
        Duration::MAX,
    );
    assert_eq!(r, Ok("Ok(\"Err(Deadlock)\")".to_string()));
}

#[test]
fn a_second_blocked_worker_is_compensated_even_while_a_spare_idles() {
    // Two workers; two servers block in calls at once, each to a server that answers only
    // once both are blocked: both must be compensated, so that two workers stay runnable.
    let rt = rt(2);
    let gate = rt.start::<Jobs>(()).unwrap();
    let mut threads = Vec::new();
    for _ in 0..2 {
        let c = rt.start::<Jobs>(()).unwrap();
        let g = gate.clone();
        threads.push(std::thread::spawn(move || {
            c.call(job(move |_, _, _| {
                Some(format!(
                    "{:?}",
                    g.call(job(|s, from, _| {
                        s.held.push(from);
                        if s.held.len() == 2 {
                            for r in s.held.drain(..) {
                                r.reply("both".into());
                            }
                        }
                        None
                    }))
                ))
            }))
        }));
    }
    for t in threads {
        assert_eq!(t.join().unwrap(), Ok("Ok(\"both\")".to_string()));
    }
}

#[test]
fn demonitor_by_reference_alone_removes_both_sides() {
    let rt = rt(2);
    let watcher = rt.start::<Jobs>(()).unwrap();
    let target = rt.start::<Idle>(Arc::default()).unwrap();
    let t = target.pid();
    let r = watcher.call(job(move |_, _, ctx| {
        let m = ctx.monitor(t);
        let first = ctx.demonitor_ref(m);
        let second = ctx.demonitor_ref(m);
        Some(format!("{first} {second}"))
    }));
    assert_eq!(r, Ok("true false".to_string()));
    assert_eq!(rt.process_info(t).unwrap().monitored_by, 0);
    assert_eq!(rt.process_info(watcher.pid()).unwrap().monitors, 0);
}
