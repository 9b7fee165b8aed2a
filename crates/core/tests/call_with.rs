//! `ServerRef::call_with` / `request_with`: calls whose outcome goes to a callback. Each
//! test counts the callback's runs: exactly once, whatever settles the call (reply,
//! `NoProc`, `CallingSelf`, timeout, the server's exit, a dropped reply handle).

mod common;
use arbor_core::*;
use common::{hold, job, rt, wait_until, Jobs, DEADLINE};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(3600);

/// Records the order in which calls and messages reach it.
struct Recorder {
    seen: Arc<Mutex<Vec<u64>>>,
}

impl GenServer for Recorder {
    type Args = Arc<Mutex<Vec<u64>>>;
    type Info = u64;
    type Call = u64;
    type Reply = u64;

    fn init(seen: Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Recorder { seen })
    }

    fn handle_call(&mut self, n: u64, _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
        self.seen.lock().push(n);
        CallFlow::Reply(n + 1)
    }

    fn handle_info(&mut self, n: u64, _: &mut Context<'_, Self>) -> Flow {
        self.seen.lock().push(n);
        Flow::Continue
    }
}

/// A typed request for `Jobs`: held until its handle is dropped or answered.
struct Hold;
impl Request for Hold {
    type Reply = String;
}

impl HandleRequest<Hold> for Jobs {
    fn handle_request(&mut self, _: Hold, from: ReplyTo<String>, _: &mut Context<'_, Self>) -> CallFlow<String> {
        self.held.push(from);
        CallFlow::NoReply
    }
}

/// A callback that sends its outcome and the thread it ran on, and counts its runs.
type Outcome<R> = (Result<R, CallError>, std::thread::ThreadId);

fn recorder<R: Send + 'static>(
    runs: &Arc<AtomicUsize>,
) -> (
    impl FnOnce(Result<R, CallError>) + Send + 'static,
    mpsc::Receiver<Outcome<R>>,
) {
    let (tx, rx) = mpsc::channel();
    let runs = Arc::clone(runs);
    let f = move |r: Result<R, CallError>| {
        runs.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send((r, std::thread::current().id()));
    };
    (f, rx)
}

#[test]
fn replies_reach_the_callback_once_each_and_in_order_with_messages() {
    let rt = rt(2);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = rt.start::<Recorder>(Arc::clone(&seen)).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let per_call: Arc<Vec<AtomicUsize>> = Arc::new((0..1000).map(|_| AtomicUsize::new(0)).collect());
    let (tx, rx) = mpsc::channel();
    // One sender: calls and plain messages interleaved, nothing waited for in between.
    for i in 0..1000u64 {
        if i % 3 == 0 {
            server.send(i).unwrap();
            continue;
        }
        let (runs, per_call, tx) = (Arc::clone(&runs), Arc::clone(&per_call), tx.clone());
        server.call_with(i, LONG, move |r| {
            runs.fetch_add(1, Ordering::SeqCst);
            per_call[i as usize].fetch_add(1, Ordering::SeqCst);
            tx.send((i, r)).unwrap();
        });
    }
    let calls = (0..1000).filter(|i| i % 3 != 0).count();
    let mut got = Vec::new();
    for _ in 0..calls {
        got.push(rx.recv_timeout(DEADLINE).expect("every callback runs"));
    }
    for (i, r) in got {
        assert_eq!(r, Ok(i + 1));
    }
    // The last message (999, a plain send) follows the last call: its callback can run
    // before the server has handled it.
    assert!(wait_until(|| seen.lock().len() == 1000), "every message handled");
    assert_eq!(
        seen.lock().clone(),
        (0..1000).collect::<Vec<u64>>(),
        "handled in the order sent"
    );
    assert_eq!(runs.load(Ordering::SeqCst), calls);
    for (i, n) in per_call.iter().enumerate() {
        assert_eq!(n.load(Ordering::SeqCst), usize::from(i % 3 != 0), "call {i}");
    }
    // No timer was armed for calls without a deadline; nothing is held.
    assert_eq!(rt.timer_count(), 0);
    assert_eq!(rt.process_info(server.pid()).unwrap().held_calls, 0);
}

#[test]
fn noproc_runs_the_callback_at_once_on_the_calling_thread() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    server.stop(ExitReason::Normal, DEADLINE).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let (f, rx) = recorder::<String>(&runs);
    server.call_with(job(|_, _, _| Some("never".into())), LONG, f);
    // Before call_with returned.
    let (r, thread) = rx.try_recv().expect("settled at once");
    assert_eq!(r, Err(CallError::NoProc));
    assert_eq!(thread, std::thread::current().id());
    let (f, rx) = recorder::<String>(&runs);
    server.request_with(Hold, LONG, f);
    assert_eq!(rx.try_recv().expect("settled at once").0, Err(CallError::NoProc));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn calling_self_is_refused_at_once() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r2 = Arc::clone(&runs);
    let me = server.clone();
    let got = server
        .call(job(move |_, _, _| {
            let (f, rx) = recorder::<String>(&r2);
            me.call_with(job(|_, _, _| Some("never".into())), LONG, f);
            Some(format!("{:?}", rx.try_recv().map(|o| o.0)))
        }))
        .unwrap();
    assert_eq!(got, "Ok(Err(CallingSelf))");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn timeout_at_the_deadline_on_the_timer_thread_and_the_late_reply_is_dropped() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let (f, rx) = recorder::<String>(&runs);
    let timeout = Duration::from_millis(50);
    let t0 = Instant::now();
    server.call_with(hold(), timeout, f);
    let (r, thread) = rx.recv_timeout(DEADLINE).expect("settled at the deadline");
    assert!(t0.elapsed() >= timeout, "never early: {:?}", t0.elapsed());
    assert_eq!(r, Err(CallError::Timeout));
    assert_ne!(thread, std::thread::current().id());
    assert_eq!(rt.timer_count(), 0, "the timer fired and is gone");
    // The late reply: refused, and the callback does not run again.
    let accepted = server
        .call(job(|s, _, _| {
            Some(s.held.pop().unwrap().reply("late".into()).to_string())
        }))
        .unwrap();
    assert_eq!(accepted, "false");
    assert!(rx.recv_timeout(Duration::from_millis(20)).is_err());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn a_reply_before_the_deadline_cancels_the_timer() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    for i in 0..100 {
        let (f, rx) = recorder::<String>(&runs);
        server.call_with(job(move |_, _, _| Some(i.to_string())), LONG, f);
        assert_eq!(rx.recv_timeout(DEADLINE).unwrap().0, Ok(i.to_string()));
    }
    assert!(wait_until(|| rt.timer_count() == 0), "{} timers left", rt.timer_count());
    assert_eq!(runs.load(Ordering::SeqCst), 100);
}

#[test]
fn a_zero_timeout_sends_and_settles_with_timeout_at_once() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let (f, rx) = recorder::<String>(&runs);
    let h = Arc::clone(&handled);
    server.call_with(
        job(move |s, from, _| {
            h.fetch_add(1, Ordering::SeqCst);
            s.held.push(from);
            None
        }),
        Duration::ZERO,
        f,
    );
    let (r, thread) = rx.try_recv().expect("settled before call_with returned");
    assert_eq!(r, Err(CallError::Timeout));
    assert_eq!(thread, std::thread::current().id());
    assert!(
        wait_until(|| handled.load(Ordering::SeqCst) == 1),
        "the request was sent"
    );
    assert_eq!(rt.timer_count(), 0);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn the_exit_reason_when_the_server_dies_mid_call_held_or_queued() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    // One held by the server, then one queued behind a job that blocks until released.
    let (held, held_rx) = recorder::<String>(&runs);
    server.call_with(hold(), LONG, held);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (blocker, blocker_rx) = recorder::<String>(&runs);
    server.call_with(
        job(move |_, _, _| {
            started_tx.send(()).unwrap();
            let _ = go_rx.recv_timeout(DEADLINE);
            panic!("crash on purpose")
        }),
        LONG,
        blocker,
    );
    started_rx.recv_timeout(DEADLINE).unwrap();
    let (queued, queued_rx) = recorder::<String>(&runs);
    server.call_with(job(|_, _, _| Some("never".into())), LONG, queued);
    let (typed, typed_rx) = recorder::<String>(&runs);
    server.request_with(Hold, LONG, typed);
    go_tx.send(()).unwrap();
    let exited = |r: Result<String, CallError>| match r {
        Err(CallError::Exited(ExitReason::Panic(m))) => m.contains("crash on purpose"),
        other => panic!("expected the panic's exit reason, got {other:?}"),
    };
    for rx in [held_rx, blocker_rx, queued_rx, typed_rx] {
        assert!(exited(rx.recv_timeout(DEADLINE).expect("settled by the exit").0));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert_eq!(rt.timer_count(), 0);
}

#[test]
fn killed_mid_call_gives_killed() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let (f, rx) = recorder::<String>(&runs);
    server.call_with(hold(), Duration::from_secs(60), f);
    assert!(wait_until(|| rt.process_info(server.pid()).unwrap().held_calls == 1));
    server.kill();
    assert_eq!(
        rx.recv_timeout(DEADLINE).unwrap().0,
        Err(CallError::Exited(ExitReason::Killed))
    );
    assert!(wait_until(|| rt.timer_count() == 0), "the timer is cancelled");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn a_deferred_reply_runs_the_callback_on_the_replying_thread() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let (f, rx) = recorder::<String>(&runs);
    server.call_with(hold(), LONG, f);
    // Take the held handle out and answer from a plain thread.
    let (htx, hrx) = mpsc::channel();
    server
        .call(job(move |s, _, _| {
            htx.send(s.held.pop()).unwrap();
            Some(String::new())
        }))
        .unwrap();
    let reply_to = hrx.recv().unwrap().expect("held");
    let replier = std::thread::spawn(move || {
        assert!(reply_to.reply("later".into()));
        std::thread::current().id()
    });
    let replier_id = replier.join().unwrap();
    let (r, thread) = rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!(r, Ok("later".into()));
    assert_eq!(thread, replier_id);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn a_dropped_reply_handle_gives_noreply() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let (f, rx) = recorder::<String>(&runs);
    server.request_with(Hold, LONG, f);
    server
        .call(job(|s, _, _| {
            s.held.clear();
            Some(String::new())
        }))
        .unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap().0, Err(CallError::NoReply));
    assert_eq!(rt.process_info(server.pid()).unwrap().held_calls, 0);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_callback_is_contained() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    server.call_with(job(|_, _, _| Some("x".into())), LONG, |_| panic!("callback panics"));
    server.call_with(job(|_, _, _| Some("x".into())), Duration::from_millis(1), |_| {
        panic!("callback panics")
    });
    // The server and the runtime carry on.
    assert_eq!(
        server.call(job(|_, _, _| Some("still here".into()))),
        Ok("still here".into())
    );
    let runs = Arc::new(AtomicUsize::new(0));
    let (f, rx) = recorder::<String>(&runs);
    server.call_with(hold(), Duration::from_millis(5), f);
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap().0, Err(CallError::Timeout));
}

/// Replies, timeouts and exits racing: every call's callback runs exactly once.
#[test]
fn exactly_once_when_reply_timeout_and_exit_race() {
    let rt = rt(2);
    let n = 20_000;
    let per_call: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    let settled = Arc::new(AtomicUsize::new(0));
    let mut server = rt.start::<Jobs>(()).unwrap();
    for i in 0..n {
        if i % 500 == 499 {
            server.kill();
            server = rt.start::<Jobs>(()).unwrap();
        }
        let (per_call, settled) = (Arc::clone(&per_call), Arc::clone(&settled));
        // Timeouts of 0 to 199 µs against replies that come at once or after a spin.
        let timeout = Duration::from_micros((i * 7 % 200) as u64);
        let f = move |_r: Result<String, CallError>| {
            per_call[i].fetch_add(1, Ordering::SeqCst);
            settled.fetch_add(1, Ordering::SeqCst);
        };
        match i % 3 {
            0 => server.call_with(job(|_, _, _| Some(String::new())), timeout, f),
            1 => server.call_with(
                job(|_, _, _| {
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_micros(50) {
                        std::hint::spin_loop();
                    }
                    Some(String::new())
                }),
                timeout,
                f,
            ),
            _ => server.request_with(Hold, timeout, f),
        }
    }
    server.kill();
    assert!(
        wait_until(|| settled.load(Ordering::SeqCst) == n),
        "{} of {n} settled",
        settled.load(Ordering::SeqCst)
    );
    for (i, c) in per_call.iter().enumerate() {
        assert_eq!(c.load(Ordering::SeqCst), 1, "call {i}");
    }
    assert!(wait_until(|| rt.timer_count() == 0), "{} timers left", rt.timer_count());
}
