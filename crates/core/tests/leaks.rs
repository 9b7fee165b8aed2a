//! Leak tests: every structure that can grow (watchers, held monitors, held calls, exit
//! hooks, timers, OS threads) goes through a million operations (in release; set
//! `ARBOR_LEAK_OPS` to change it, and a debug build does 20,000 by default), then its count
//! must be back to its baseline. CI runs this file in release.

mod common;
use arbor_core::*;
use common::{hold, job, rt, wait_until, Jobs};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

fn ops() -> usize {
    std::env::var("ARBOR_LEAK_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 20_000 } else { 1_000_000 })
}

fn info(rt: &Runtime, pid: Pid) -> ProcessInfo {
    rt.process_info(pid).expect("alive")
}

#[test]
fn leak_monitors_held_by_dead_watchers() {
    let rt = rt(2);
    let target = rt.start::<Jobs>(()).unwrap();
    let t = target.pid();
    for _ in 0..ops() {
        let w = rt.start::<Jobs>(()).unwrap();
        w.call(job(move |_, _, ctx| {
            ctx.monitor(t);
            Some(String::new())
        }))
        .unwrap();
        w.kill();
    }
    assert!(
        wait_until(|| rt.process_count() == 1),
        "{} processes",
        rt.process_count()
    );
    assert_eq!(info(&rt, t).monitored_by, 0);
}

#[test]
fn leak_monitors_a_watcher_held_on_dead_targets() {
    let rt = rt(2);
    let watcher = rt.start::<Jobs>(()).unwrap();
    let n = ops();
    let batch = 1000.min(n);
    for _ in 0..n / batch {
        let targets: Vec<_> = (0..batch).map(|_| rt.start::<Jobs>(()).unwrap()).collect();
        let pids: Vec<Pid> = targets.iter().map(|t| t.pid()).collect();
        watcher
            .call(job(move |_, _, ctx| {
                for p in pids {
                    ctx.monitor(p);
                }
                Some(String::new())
            }))
            .unwrap();
        for t in targets {
            t.kill();
        }
    }
    assert!(wait_until(|| rt.process_count() == 1));
    assert!(wait_until(|| info(&rt, watcher.pid()).monitors == 0));
    // The `Down`s themselves were delivered and handled (the mailbox drains).
    assert!(wait_until(|| info(&rt, watcher.pid()).mailbox_len == 0));
}

#[test]
fn leak_held_calls_of_timed_out_callers() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let clear = |server: &ServerRef<Jobs>| {
        server
            .call(job(|s, _, _| {
                s.held.clear();
                Some(String::new())
            }))
            .unwrap()
    };
    // Each caller waits out its (tiny) timeout, which costs a timed park: 16 callers at
    // once keep a million of them within seconds.
    const CALLERS: usize = 16;
    let per = ops() / CALLERS;
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    let r = server.call_timeout(hold(), Duration::from_micros(1));
                    // NoReply when another caller's clearing dropped it while it waited.
                    assert!(matches!(r, Err(CallError::Timeout | CallError::NoReply)), "{r:?}");
                    if i % 1000 == 999 {
                        clear(&server);
                    }
                }
            })
        })
        .collect();
    for c in callers {
        c.join().unwrap();
    }
    clear(&server);
    assert_eq!(info(&rt, server.pid()).held_calls, 0);
}

/// A typed request that the server holds unanswered.
struct HoldMe;
impl Request for HoldMe {
    type Reply = String;
}

impl HandleRequest<HoldMe> for Jobs {
    fn handle_request(&mut self, _: HoldMe, from: ReplyTo<String>, _: &mut Context<'_, Self>) -> CallFlow<String> {
        self.held.push(from);
        CallFlow::NoReply
    }
}

/// Futures of calls and requests the server holds, dropped mid-call: a third before their first poll,
/// the others after it armed their timeout. Each drop must close its slot and cancel its
/// timer, and the server's held-call entries go when it drops the reply handles.
#[test]
fn leak_dropped_call_futures() {
    use std::task::{Context as TaskContext, Wake, Waker};
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let clear = || {
        server
            .call(job(|s, _, _| {
                s.held.clear();
                Some(String::new())
            }))
            .unwrap()
    };
    for i in 0..ops() {
        // Calls and typed requests alternate: both kinds of slot go through the same drop.
        let mut fut = if i % 2 == 0 {
            server.call_timeout_async(hold(), Duration::from_secs(3600))
        } else {
            server.request_timeout_async(HoldMe, Duration::from_secs(3600))
        };
        if i % 3 != 0 {
            let polled = std::pin::Pin::new(&mut fut).poll(&mut TaskContext::from_waker(&waker));
            assert!(polled.is_pending());
        }
        drop(fut);
        if i % 1000 == 999 {
            clear();
        }
    }
    clear();
    assert_eq!(info(&rt, server.pid()).held_calls, 0);
    assert_eq!(rt.timer_count(), 0);
}

/// A million `call_with`s: answered (their timeout's timer cancelled), timed out (the
/// server holds them; their late handles are dropped), to a dead server (`NoProc` at
/// once), and held by a server killed mid-call (`Exited`). Every callback runs once; held
/// calls, timers, monitors and processes are back to their baselines.
#[test]
fn leak_call_with_every_outcome() {
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let dead = rt.start::<Jobs>(()).unwrap();
    dead.kill();
    assert!(wait_until(|| rt.process_count() == 1));
    let n = ops();
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..n).map(|_| AtomicU8::new(0)).collect());
    let settled = Arc::new(AtomicUsize::new(0));
    let (mut replied, mut timed_out, mut noproc, mut exited) = (0usize, 0usize, 0usize, 0usize);
    let batch = 1000.min(n);
    let mut i = 0;
    while i < n {
        let victim = rt.start::<Jobs>(()).unwrap();
        let end = (i + batch).min(n);
        for k in i..end {
            let (runs, settled) = (Arc::clone(&runs), Arc::clone(&settled));
            let hold = hold();
            let check = move |expect: fn(&Result<String, CallError>) -> bool| {
                move |r: Result<String, CallError>| {
                    assert!(expect(&r), "call {k}: {r:?}");
                    runs[k].fetch_add(1, Ordering::SeqCst);
                    settled.fetch_add(1, Ordering::SeqCst);
                }
            };
            match k % 4 {
                0 => {
                    replied += 1;
                    server.call_with(
                        job(|_, _, _| Some(String::new())),
                        Duration::from_secs(3600),
                        check(|r| r.is_ok()),
                    )
                }
                1 => {
                    timed_out += 1;
                    server.call_with(
                        hold,
                        Duration::from_micros(500),
                        check(|r| *r == Err(CallError::Timeout)),
                    )
                }
                2 => {
                    noproc += 1;
                    dead.call_with(hold, Duration::from_secs(3600), check(|r| *r == Err(CallError::NoProc)))
                }
                _ => {
                    exited += 1;
                    victim.call_with(
                        hold,
                        Duration::from_secs(3600),
                        check(|r| *r == Err(CallError::Exited(ExitReason::Killed))),
                    )
                }
            }
        }
        // Killed with its calls held or still queued: `Exited(Killed)` for both.
        victim.kill();
        assert!(
            wait_until(|| settled.load(Ordering::SeqCst) == end),
            "{} of {end} settled",
            settled.load(Ordering::SeqCst)
        );
        // The timed-out calls' handles: dropped (their callbacks have run already).
        server
            .call(job(|s, _, _| {
                s.held.clear();
                Some(String::new())
            }))
            .unwrap();
        i = end;
    }
    assert_eq!(replied + timed_out + noproc + exited, n);
    assert!(
        runs.iter().all(|r| r.load(Ordering::SeqCst) == 1),
        "every callback ran once"
    );
    assert_eq!(info(&rt, server.pid()).held_calls, 0);
    assert_eq!(info(&rt, server.pid()).monitored_by, 0);
    assert_eq!(info(&rt, server.pid()).monitors, 0);
    assert!(wait_until(|| rt.timer_count() == 0), "{} timers left", rt.timer_count());
    assert!(
        wait_until(|| rt.process_count() == 1),
        "{} processes",
        rt.process_count()
    );
}

#[test]
fn leak_exit_hooks_added_and_removed() {
    let rt = rt(2);
    let s = rt.start::<Jobs>(()).unwrap();
    for _ in 0..ops() {
        let hook = rt.on_exit(s.pid(), |_: Pid, _: &ExitReason| {}).unwrap();
        assert!(rt.remove_exit_hook(s.pid(), hook));
    }
    assert_eq!(info(&rt, s.pid()).exit_hooks, 0);
}

#[test]
fn leak_timers_armed_and_cancelled() {
    let rt = rt(2);
    let s = rt.start::<Jobs>(()).unwrap();
    let n = ops();
    let batch = 1000.min(n);
    for _ in 0..n / batch {
        s.call(job(move |_, _, ctx| {
            for _ in 0..batch {
                let t = ctx.send_after(Duration::from_secs(3600), ());
                assert!(ctx.cancel_timer(t).is_some());
            }
            Some(String::new())
        }))
        .unwrap();
    }
    assert_eq!(rt.timer_count(), 0);
}

#[test]
fn leak_shared_timers_armed_and_cancelled_from_outside() {
    let rt = rt(2);
    let s = rt.start::<Jobs>(()).unwrap();
    for _ in 0..ops() {
        let t = s.send_after(Duration::from_secs(3600), ());
        assert!(t.cancel().is_some());
    }
    assert_eq!(rt.timer_count(), 0);
    assert_eq!(s.mailbox_len(), 0);
}

#[test]
fn leak_shared_timers_fired_and_handled() {
    let rt = rt(2);
    let s = rt.start::<Jobs>(()).unwrap();
    let n = ops();
    let batch = 10_000.min(n);
    for _ in 0..n / batch {
        let timers: Vec<Timer> = (0..batch).map(|_| s.send_after(Duration::ZERO, ())).collect();
        assert!(wait_until(|| timers.iter().all(|t| !t.is_active())));
    }
    assert_eq!(rt.timer_count(), 0);
    let handled = n / batch * batch;
    assert!(wait_until(|| info(&rt, s.pid()).messages_handled as usize == handled));
    assert_eq!(s.mailbox_len(), 0);
}

#[test]
fn leak_intervals_ticking_then_cancelled() {
    let rt = rt(2);
    let s = rt.start::<Jobs>(()).unwrap();
    let n = ops();
    let batch = 1000.min(n);
    for _ in 0..n / batch {
        let timers: Vec<Timer> = (0..batch)
            .map(|_| s.send_interval(Duration::from_micros(100), ()))
            .collect();
        assert!(wait_until(|| timers.iter().all(|t| t.deadlines() >= 1)));
        for t in &timers {
            assert!(t.cancel().is_some());
        }
    }
    // A tick firing while its timer is cancelled may re-arm after `cancel` returned; it
    // then sees the cancel and removes that arming itself.
    assert!(
        wait_until(|| rt.timer_count() == 0),
        "a cancelled interval leaves nothing on the wheel: {} left",
        rt.timer_count()
    );
    assert!(wait_until(|| s.mailbox_len() == 0));
}

#[test]
fn leak_os_threads_after_blocked_calls() {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let server = rt.start::<Jobs>(()).unwrap();
    let callers: Vec<_> = (0..4).map(|_| rt.start::<Jobs>(()).unwrap()).collect();
    let per = ops() / 4;
    let threads: Vec<_> = callers
        .into_iter()
        .map(|c| {
            let server = server.clone();
            std::thread::spawn(move || {
                c.call_timeout(
                    job(move |_, _, _| {
                        for _ in 0..per {
                            server.call(job(|_, _, _| Some(String::new()))).unwrap();
                        }
                        Some(String::new())
                    }),
                    Duration::from_secs(3600),
                )
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), Ok(String::new()));
    }
    // Compensating threads retire after their keep-alive (5 s).
    assert!(
        wait_until(|| rt.worker_count() == 1),
        "{} worker threads",
        rt.worker_count()
    );
    assert_eq!(rt.stats().blocked_workers, 0);
}

#[test]
fn leak_process_table_after_a_million_starts() {
    let rt = rt(2);
    let baseline = rt.process_count();
    for _ in 0..ops() {
        let s = rt.start::<Jobs>(()).unwrap();
        s.kill();
    }
    assert!(wait_until(|| rt.process_count() == baseline));
    let _ = Arc::new(());
}

#[test]
fn leak_plain_names_of_servers_started_and_killed() {
    let rt = rt(2);
    for i in 0..ops() / 4 {
        let name = format!("n{}", i % 64);
        let s = Jobs::start((), StartOpts::new().runtime(&rt).local_name(name.as_str())).unwrap();
        assert_eq!(rt.whereis(&name), Some(s.pid()));
        s.kill();
        s.wait_exit(common::DEADLINE);
    }
    assert_eq!(rt.name_count(), 0);
    assert!(wait_until(|| rt.process_count() == 0));
}

#[test]
fn leak_deterministic_runtime_numbers_ready_set_and_timers() {
    // A deterministic runtime keeps a number per live process (for its trace), a ready set
    // and a timer wheel: a million starts, calls, timers armed and cancelled, and exits
    // leave each back at its baseline. The trace is kept as a digest only.
    let sim = arbor_core::sim::SimConfig::new(1).keep_trace(false).build();
    let base = sim.numbered_processes();
    for i in 0..ops() {
        let w = sim.start::<Jobs>(()).unwrap();
        w.call(job(move |_, _, ctx| {
            let t = ctx.send_after(Duration::from_secs(60), ());
            if i % 2 == 0 {
                ctx.cancel_timer(t);
            }
            Some(String::new())
        }))
        .unwrap();
        if i % 3 == 0 {
            w.kill();
        } else {
            w.stop(ExitReason::Normal, Duration::from_secs(1)).unwrap();
        }
    }
    sim.run_until_idle();
    assert_eq!(sim.process_count(), 0);
    assert_eq!(sim.numbered_processes(), base);
    assert_eq!(sim.timer_count(), 0, "a dead process's timers are cancelled");
    assert_eq!(sim.stats().run_queue, 0);
    assert!(sim.trace().is_empty());
}

#[test]
fn leak_inline_runners_entered_used_and_dropped() {
    let rt = rt(1);
    let server = rt.start::<Jobs>(()).unwrap();
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..ops() {
        let runner = InlineRunner::enter(|| {}).expect("not a runner yet");
        let a = Arc::clone(&answered);
        InlineRunner::keep(|| {
            server.call_with(job(|_, _, _| Some(String::new())), Duration::from_secs(5), move |r| {
                assert!(r.is_ok());
                a.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
        });
        assert!(runner.run_pending());
        assert_eq!(rt.stats().inline_runners, 1);
    }
    assert_eq!(
        answered.load(std::sync::atomic::Ordering::Relaxed),
        ops(),
        "each call answered once"
    );
    assert_eq!(rt.stats().inline_runners, 0);
    assert_eq!(info(&rt, server.pid()).held_calls, 0);
}
