//! Calls from async code: arbor's futures on tokio (current-thread and multi-thread) and on
//! a ten-line `block_on` of std alone, with every guarantee of the blocking call (NoProc at
//! once, the exit reason at once, CallingSelf, deferred replies, the timeout from arbor's
//! own timer service), and dropped futures that leave nothing behind.
#![cfg(not(loom))]

mod common;
use arbor_core::*;
use common::{rt, wait_until};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// A `block_on` made of std alone: proves the futures need no executor.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark()
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut TaskContext::from_waker(&waker)) {
            return v;
        }
        std::thread::park();
    }
}

/// A waker that does nothing, for polling by hand.
fn noop_waker() -> Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    Waker::from(Arc::new(Noop))
}

/// A reply whose drops are counted: proves every reply is delivered or dropped, once.
struct Counted(u64, Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

enum Req {
    /// Adds one and replies with the count.
    Bump,
    /// Holds the reply until `Release`.
    Hold,
    /// Replies through the held handles, then `Bump`s' value.
    Release,
    /// Crashes without replying.
    Crash,
    /// Calls itself through a future made inside the handler.
    CallSelf,
}

#[derive(Default)]
struct Server {
    count: u64,
    handled: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
    held: Vec<ReplyTo<Counted>>,
}

impl GenServer for Server {
    type Args = (Arc<AtomicUsize>, Arc<AtomicUsize>);
    type Info = ();
    type Call = Req;
    type Reply = Counted;

    fn init((handled, drops): Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Server {
            handled,
            drops,
            ..Server::default()
        })
    }

    fn handle_call(&mut self, req: Req, from: ReplyTo<Counted>, ctx: &mut Context<'_, Self>) -> CallFlow<Counted> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        match req {
            Req::Bump => {
                self.count += 1;
                CallFlow::Reply(Counted(self.count, self.drops.clone()))
            }
            Req::Hold => {
                self.held.push(from);
                CallFlow::NoReply
            }
            Req::Release => {
                for h in self.held.drain(..) {
                    h.reply(Counted(7, self.drops.clone()));
                }
                CallFlow::Reply(Counted(self.count, self.drops.clone()))
            }
            Req::Crash => panic!("asked to crash"),
            Req::CallSelf => {
                let me = ServerRef::<Server>::from_pid(ctx.pid()).unwrap();
                let fut = me.call_async(Req::Bump);
                assert!(fut.is_ready(), "a call to oneself fails at once");
                let got = block_on(fut);
                CallFlow::Reply(Counted(
                    u64::from(got.err() == Some(CallError::CallingSelf)),
                    self.drops.clone(),
                ))
            }
        }
    }
}

struct Fixture {
    rt: Runtime,
    server: ServerRef<Server>,
    handled: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

fn fixture(threads: usize) -> Fixture {
    let rt = rt(threads);
    let handled = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let server = rt.start::<Server>((handled.clone(), drops.clone())).unwrap();
    Fixture {
        rt,
        server,
        handled,
        drops,
    }
}

fn value(r: Result<Counted, CallError>) -> Result<u64, CallError> {
    r.map(|c| c.0)
}

#[test]
fn async_call_needs_no_executor() {
    let f = fixture(2);
    assert_eq!(value(block_on(f.server.call_async(Req::Bump))), Ok(1));
    assert_eq!(
        value(block_on(f.server.call_timeout_async(Req::Bump, Duration::MAX))),
        Ok(2)
    );
    assert_eq!(f.rt.timer_count(), 0);
}

#[test]
fn async_call_to_a_dead_server_is_noproc_at_first_poll() {
    let f = fixture(2);
    f.server.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    let fut = f.server.call_async(Req::Bump);
    assert!(fut.is_ready());
    let t = Instant::now();
    assert_eq!(value(block_on(fut)), Err(CallError::NoProc));
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(f.handled.load(Ordering::SeqCst), 0);
}

#[test]
fn async_call_gets_the_exit_reason_at_once_when_the_server_dies() {
    let f = fixture(2);
    let t = Instant::now();
    let fut = f.server.call_timeout_async(Req::Hold, Duration::from_secs(30));
    assert!(wait_until(|| f.handled.load(Ordering::SeqCst) == 1));
    f.server.kill();
    assert_eq!(value(block_on(fut)), Err(CallError::Exited(ExitReason::Killed)));
    assert!(t.elapsed() < Duration::from_secs(10), "not at the timeout");
    // The timer armed by the first poll is gone with the call.
    assert_eq!(f.rt.timer_count(), 0);
}

#[test]
fn async_call_gets_a_crash_reason() {
    let f = fixture(2);
    match block_on(f.server.call_async(Req::Crash)) {
        Err(CallError::Exited(ExitReason::Panic(_))) => {}
        other => panic!("unexpected {:?}", value(other)),
    }
}

#[test]
fn async_call_to_oneself_from_a_handler_is_calling_self() {
    let f = fixture(2);
    assert_eq!(value(block_on(f.server.call_async(Req::CallSelf))), Ok(1));
}

#[test]
fn async_call_times_out_on_arbors_timer_and_the_late_reply_is_dropped() {
    let f = fixture(2);
    let t = Instant::now();
    let r = block_on(f.server.call_timeout_async(Req::Hold, Duration::from_millis(50)));
    assert_eq!(value(r), Err(CallError::Timeout));
    assert!(t.elapsed() >= Duration::from_millis(50), "never early");
    assert_eq!(f.rt.timer_count(), 0, "the timer fired and is gone");
    // The held reply is answered late: dropped, never delivered to the next call.
    let before = f.drops.load(Ordering::SeqCst);
    assert_eq!(value(block_on(f.server.call_async(Req::Release))), Ok(0));
    assert_eq!(
        f.drops.load(Ordering::SeqCst),
        before + 2,
        "the late reply and the release's"
    );
    assert_eq!(f.rt.process_info(f.server.pid()).unwrap().held_calls, 0);
}

#[test]
fn async_call_zero_timeout_sends_and_does_not_wait() {
    // The one rule for zero timeouts (as OTP's `call(.., 0)`): the request is sent, and the
    // call ends with `Timeout` unless the reply is already there.
    let f = fixture(2);
    let r = value(block_on(f.server.call_timeout_async(Req::Bump, Duration::ZERO)));
    assert!(matches!(r, Err(CallError::Timeout) | Ok(_)), "{r:?}");
    assert!(
        wait_until(|| f.handled.load(Ordering::SeqCst) == 1),
        "the request was sent"
    );
}

#[test]
fn async_call_timer_is_cancelled_when_the_reply_wins() {
    let f = fixture(2);
    let fut = f.server.call_timeout_async(Req::Hold, Duration::from_secs(3600));
    let mut fut = std::pin::pin!(fut);
    let waker = &noop_waker();
    assert!(fut.as_mut().poll(&mut TaskContext::from_waker(waker)).is_pending());
    assert_eq!(f.rt.timer_count(), 1, "armed by the first poll that found no reply");
    assert_eq!(value(f.server.call(Req::Release)), Ok(0));
    assert_eq!(value(block_on(fut)), Ok(7), "the deferred reply");
    assert_eq!(f.rt.timer_count(), 0, "cancelled when the reply won");
}

#[test]
fn dropped_async_call_leaves_no_timer_and_no_held_call() {
    let f = fixture(2);
    let fut = f.server.call_timeout_async(Req::Hold, Duration::from_secs(3600));
    {
        let mut fut = std::pin::pin!(fut);
        assert!(fut
            .as_mut()
            .poll(&mut TaskContext::from_waker(&noop_waker()))
            .is_pending());
        assert_eq!(f.rt.timer_count(), 1);
    }
    assert_eq!(f.rt.timer_count(), 0, "the drop cancelled the timer");
    let before = f.drops.load(Ordering::SeqCst);
    assert_eq!(value(f.server.call(Req::Release)), Ok(0));
    assert_eq!(
        f.drops.load(Ordering::SeqCst),
        before + 2,
        "the abandoned call's reply was dropped"
    );
    assert_eq!(f.rt.process_info(f.server.pid()).unwrap().held_calls, 0);
}

#[test]
fn async_stop_and_wait_exit() {
    let f = fixture(2);
    let exit = f.server.wait_exit_async(Duration::from_secs(30));
    let timed_out = f.server.wait_exit_async(Duration::from_millis(10));
    assert_eq!(block_on(timed_out), None, "still running at the deadline");
    assert_eq!(
        block_on(f.server.stop_async(ExitReason::Shutdown, Duration::MAX)),
        Ok(())
    );
    assert_eq!(block_on(exit), Some(ExitReason::Shutdown));
    assert_eq!(
        block_on(f.server.stop_async(ExitReason::Normal, Duration::MAX)),
        Err(CallError::NoProc)
    );
    // Already gone: its reason while the process is still being finalized, NoProc after.
    let after = block_on(f.rt.wait_exit_async(f.server.pid(), Duration::from_secs(1)));
    assert!(
        matches!(after, Some(ExitReason::Shutdown | ExitReason::NoProc)),
        "{after:?}"
    );
    assert_eq!(f.rt.timer_count(), 0);
}

/// Counts the interval's ticks and its longest gap while the calls run.
async fn calls_beside_an_interval(server: ServerRef<Server>, tasks: usize, calls: usize) -> (Duration, u64) {
    let done = Arc::new(tokio::sync::Notify::new());
    let ticker = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = Instant::now();
            let mut worst = Duration::ZERO;
            let mut ticks = 0u64;
            let stop = done.notified();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = interval.tick() => {
                        worst = worst.max(last.elapsed());
                        last = Instant::now();
                        ticks += 1;
                    }
                    _ = &mut stop => return (worst, ticks),
                }
            }
        })
    };
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let s = server.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..calls {
                s.call_async(Req::Bump).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    done.notify_one();
    ticker.await.unwrap()
}

fn tasks_and_calls() -> (usize, usize) {
    let scale = std::env::var("ARBOR_ASYNC_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize);
    (1000 / scale.max(1), 100)
}

#[test]
fn current_thread_tokio_1000_tasks_of_100_calls_complete_beside_an_interval() {
    let f = fixture(2);
    let (tasks, calls) = tasks_and_calls();
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (worst, ticks) = tokio_rt.block_on(calls_beside_an_interval(f.server.clone(), tasks, calls));
    assert_eq!(
        f.handled.load(Ordering::SeqCst),
        tasks * calls,
        "every call handled once"
    );
    assert_eq!(
        f.drops.load(Ordering::SeqCst),
        tasks * calls,
        "every reply taken and dropped once"
    );
    assert!(ticks > 0, "the interval ticked while the calls ran");
    // A blocking call in this single tokio thread would stop the interval for the whole
    // run; here the longest gap is one scheduling round of the tokio thread. Generous for a
    // loaded 2-core machine.
    assert!(worst < Duration::from_millis(500), "the interval was held up {worst:?}");
    assert_eq!(f.rt.timer_count(), 0);
}

#[test]
fn multi_thread_tokio_1000_tasks_of_100_calls_complete_beside_an_interval() {
    let f = fixture(2);
    let (tasks, calls) = tasks_and_calls();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let (worst, ticks) = tokio_rt.block_on(calls_beside_an_interval(f.server.clone(), tasks, calls));
    assert_eq!(f.handled.load(Ordering::SeqCst), tasks * calls);
    assert_eq!(f.drops.load(Ordering::SeqCst), tasks * calls);
    assert!(ticks > 0);
    assert!(worst < Duration::from_millis(500), "the interval was held up {worst:?}");
    assert_eq!(f.rt.timer_count(), 0);
}

#[test]
fn current_thread_interval_keeps_ticking_while_every_task_waits_on_a_held_call() {
    // Deterministic: 1000 calls are held by the server until the interval has ticked 20
    // times on the same (only) tokio thread; a blocked call would make that impossible.
    let f = fixture(2);
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let server = f.server.clone();
    let handled = f.handled.clone();
    let results = tokio_rt.block_on(async move {
        let calls: Vec<_> = (0..1000)
            .map(|_| {
                let s = server.clone();
                tokio::spawn(async move {
                    s.call_timeout_async(Req::Hold, Duration::from_secs(60))
                        .await
                        .map(|c| c.0)
                })
            })
            .collect();
        let mut interval = tokio::time::interval(Duration::from_millis(1));
        for _ in 0..20 {
            interval.tick().await;
        }
        assert!(calls.iter().all(|c| !c.is_finished()), "held calls are still waiting");
        let deadline = Instant::now() + common::DEADLINE;
        while handled.load(Ordering::SeqCst) < 1000 {
            assert!(Instant::now() < deadline, "the held calls never all reached the server");
            interval.tick().await;
        }
        server.call_async(Req::Release).await.unwrap();
        let mut out = Vec::new();
        for c in calls {
            out.push(c.await.unwrap());
        }
        out
    });
    assert!(results.iter().all(|r| *r == Ok(7)));
    assert_eq!(f.rt.timer_count(), 0, "every timer cancelled when its reply won");
}

#[test]
fn dropping_futures_mid_call_under_load_leaves_nothing_behind() {
    dropping_futures_mid_call(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap(),
    );
}

#[test]
fn dropping_futures_mid_call_on_a_current_thread_runtime_leaves_nothing_behind() {
    dropping_futures_mid_call(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap(),
    );
}

fn dropping_futures_mid_call(tokio_rt: tokio::runtime::Runtime) {
    let f = fixture(2);
    let server = f.server.clone();
    let (tasks, calls) = tasks_and_calls();
    let abandoned = tokio_rt.block_on(async move {
        let mut handles = Vec::new();
        for t in 0..tasks {
            let s = server.clone();
            handles.push(tokio::spawn(async move {
                let mut abandoned = 0usize;
                for i in 0..calls {
                    // Half the calls are held by the server and abandoned by a tokio
                    // timeout (the future is dropped mid-call); the others complete.
                    if (t + i) % 2 == 0 {
                        let r = tokio::time::timeout(Duration::from_micros(200), s.call_async(Req::Hold)).await;
                        assert!(r.is_err());
                        abandoned += 1;
                    } else {
                        s.call_async(Req::Bump).await.unwrap();
                    }
                }
                abandoned
            }));
        }
        let mut abandoned = 0;
        for h in handles {
            abandoned += h.await.unwrap();
        }
        abandoned
    });
    // An abandoned request still reaches the server (it was sent): wait until all have.
    assert!(wait_until(|| f.handled.load(Ordering::SeqCst) >= tasks * calls));
    assert_eq!(
        f.handled.load(Ordering::SeqCst),
        tasks * calls,
        "every request handled once"
    );
    assert_eq!(f.rt.timer_count(), 0, "no timer left by a dropped future");
    // The held calls are answered now, long after their callers left: every late reply
    // is dropped once, and the server's held-call entries are gone.
    let before = f.drops.load(Ordering::SeqCst);
    assert_eq!(value(f.server.call(Req::Release)).map(|_| ()), Ok(()));
    assert_eq!(f.drops.load(Ordering::SeqCst), before + abandoned + 1);
    assert_eq!(
        f.drops.load(Ordering::SeqCst),
        tasks * calls + 1,
        "every reply dropped exactly once"
    );
    assert_eq!(f.rt.process_info(f.server.pid()).unwrap().held_calls, 0);
    assert!(f.server.is_alive(), "the server was not disturbed");
}
