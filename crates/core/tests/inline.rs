//! `InlineRunner`: a thread outside the pool runs the turn of a process it made runnable.

mod common;
use arbor_core::*;
use common::{job, rt, wait_until, Jobs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn here() -> String {
    format!("{:?}", std::thread::current().id())
}

/// A call whose handler answers with the thread it ran on; the reply goes to `tx`.
fn call_where(server: &ServerRef<Jobs>, tx: mpsc::Sender<Result<String, CallError>>) {
    server.call_with(job(|_, _, _| Some(here())), Duration::from_secs(5), move |r| {
        let _ = tx.send(r);
    });
}

#[test]
fn a_kept_call_runs_on_the_runner_thread_and_an_unkept_one_on_a_worker() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let runner = InlineRunner::enter(|| {}).unwrap();
    let (tx, rx) = mpsc::channel();

    InlineRunner::keep(|| call_where(&server, tx.clone()));
    assert!(runner.has_pending());
    // Owed a turn: nobody else runs it meanwhile.
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    assert!(runner.run_pending());
    assert!(!runner.has_pending());
    assert_eq!(rx.recv().unwrap(), Ok(here()));
    assert!(!runner.run_pending(), "one turn, once");

    call_where(&server, tx);
    assert!(!runner.has_pending());
    let worker = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_ne!(worker, here());
    assert_eq!(rt.stats().inline_runners, 1);
    drop(runner);
    assert_eq!(rt.stats().inline_runners, 0);
}

#[test]
fn only_the_first_process_made_runnable_is_kept_the_rest_go_to_the_workers() {
    let rt = rt(1);
    let a = rt.start::<Jobs>(()).unwrap();
    let b = rt.start::<Jobs>(()).unwrap();
    let runner = InlineRunner::enter(|| {}).unwrap();
    let (ta, ra) = mpsc::channel();
    let (tb, rb) = mpsc::channel();
    InlineRunner::keep(|| {
        call_where(&a, ta);
        call_where(&b, tb);
    });
    // b runs on the worker while a waits for its turn here.
    assert_ne!(rb.recv_timeout(Duration::from_secs(5)).unwrap().unwrap(), here());
    assert!(runner.run_pending());
    assert_eq!(ra.recv().unwrap(), Ok(here()));
}

#[test]
fn a_process_already_queued_or_running_is_not_kept() {
    let rt = rt(1);
    let server = rt.start::<Jobs>(()).unwrap();
    let runner = InlineRunner::enter(|| {}).unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (tx, rx) = mpsc::channel();
    // The server is busy on the worker (waiting for `go`): a call to it is queued in its
    // mailbox, and it takes it on the worker after.
    server.call_with(
        job(move |_, _, _| {
            go_rx.recv().unwrap();
            Some(here())
        }),
        Duration::from_secs(5),
        |_| {},
    );
    assert!(wait_until(|| rt
        .process_info(server.pid())
        .is_some_and(|i| i.mailbox_len == 0)));
    InlineRunner::keep(|| call_where(&server, tx));
    assert!(!runner.has_pending());
    go_tx.send(()).unwrap();
    assert_ne!(rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap(), here());
}

#[test]
fn a_turn_that_blocks_in_arbor_tells_the_runner_once_from_its_own_thread() {
    let rt = rt(2);
    let server = rt.start::<Jobs>(()).unwrap();
    let other = rt.start::<Jobs>(()).unwrap();
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    let t = Arc::clone(&told);
    let runner = InlineRunner::enter(move || t.lock().unwrap().push(here())).unwrap();
    let (tx, rx) = mpsc::channel();
    // The handler calls another server (a wait arbor sees) twice, and uses `blocking`.
    InlineRunner::keep(|| {
        server.call_with(
            job(move |_, _, _| {
                let a = other.call(job(|_, _, _| Some("a".into()))).unwrap();
                let b = other.call(job(|_, _, _| Some("b".into()))).unwrap();
                let c = blocking(|| "c".to_string());
                Some(a + &b + &c)
            }),
            Duration::from_secs(5),
            move |r| {
                let _ = tx.send(r);
            },
        )
    });
    assert!(runner.run_pending());
    assert_eq!(rx.recv().unwrap(), Ok("abc".to_string()));
    assert_eq!(*told.lock().unwrap(), vec![here()], "once, from the turn's thread");
    // The next turn is told afresh.
    let (tx, rx) = mpsc::channel();
    InlineRunner::keep(|| {
        server.call_with(
            job(|_, _, _| Some(blocking(|| "d".to_string()))),
            Duration::from_secs(5),
            move |r| {
                let _ = tx.send(r);
            },
        )
    });
    assert!(runner.run_pending());
    assert_eq!(rx.recv().unwrap(), Ok("d".to_string()));
    assert_eq!(told.lock().unwrap().len(), 2);
}

#[test]
fn a_turn_that_runs_long_is_noticed_by_the_monitor_while_it_runs() {
    let rt = Runtime::builder()
        .worker_threads(1)
        .watchdog_threshold(Duration::from_millis(20))
        .build()
        .unwrap();
    let server = rt.start::<Jobs>(()).unwrap();
    let told = Arc::new(AtomicUsize::new(0));
    let t = Arc::clone(&told);
    let me = here();
    let from_elsewhere = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&from_elsewhere);
    let runner = InlineRunner::enter(move || {
        t.fetch_add(1, Ordering::SeqCst);
        if here() != me {
            f.fetch_add(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let seen = Arc::clone(&told);
    let stuck_seen = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&stuck_seen);
    let handle = rt.handle().clone();
    let pid = server.pid();
    InlineRunner::keep(|| {
        server.call_with(
            // Computes (blocks without telling arbor) until the monitor noticed, or 10 s.
            job(move |_, _, _| {
                let end = Instant::now() + Duration::from_secs(10);
                while (seen.load(Ordering::SeqCst) == 0 || s.load(Ordering::SeqCst) == 0) && Instant::now() < end {
                    if handle.stuck_handlers().iter().any(|h| h.pid == pid) {
                        s.store(1, Ordering::SeqCst);
                    }
                    std::hint::spin_loop();
                }
                Some("done".into())
            }),
            Duration::from_secs(15),
            move |r| {
                let _ = tx.send(r);
            },
        )
    });
    assert!(runner.run_pending());
    assert_eq!(rx.recv().unwrap(), Ok("done".to_string()));
    assert_eq!(told.load(Ordering::SeqCst), 1, "once a turn");
    assert_eq!(from_elsewhere.load(Ordering::SeqCst), 1, "told by the monitor's thread");
    assert_eq!(stuck_seen.load(Ordering::SeqCst), 1, "the watchdog reports the turn");
}

#[test]
fn a_panicking_turn_kills_its_process_not_the_runner() {
    let rt = rt(1);
    let server = rt.start::<Jobs>(()).unwrap();
    let runner = InlineRunner::enter(|| {}).unwrap();
    let (tx, rx) = mpsc::channel();
    InlineRunner::keep(|| {
        server.call_with(
            job(|_, _, _| panic!("boom in an inline turn")),
            Duration::from_secs(5),
            move |r| {
                let _ = tx.send(r);
            },
        )
    });
    assert!(runner.run_pending());
    assert!(matches!(rx.recv().unwrap(), Err(CallError::Exited(_))));
    assert!(wait_until(|| !rt.is_alive(server.pid())));
    // The runner goes on.
    let next = rt.start::<Jobs>(()).unwrap();
    let (tx, rx) = mpsc::channel();
    InlineRunner::keep(|| call_where(&next, tx));
    assert!(runner.run_pending());
    assert_eq!(rx.recv().unwrap(), Ok(here()));
}

#[test]
fn a_pending_turn_released_or_left_at_drop_runs_on_a_worker() {
    let rt = rt(1);
    let server = rt.start::<Jobs>(()).unwrap();
    let runner = InlineRunner::enter(|| {}).unwrap();
    let (tx, rx) = mpsc::channel();
    InlineRunner::keep(|| call_where(&server, tx.clone()));
    InlineRunner::release();
    assert!(!runner.has_pending());
    assert_ne!(rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap(), here());

    InlineRunner::keep(|| call_where(&server, tx));
    assert!(runner.has_pending());
    drop(runner);
    assert_ne!(rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap(), here());
}

#[test]
fn a_worker_or_a_runner_cannot_enter_again_and_keep_elsewhere_just_runs() {
    let rt = rt(1);
    let server = rt.start::<Jobs>(()).unwrap();
    // On a worker thread (inside a handler): no runner.
    let r = server
        .call(job(|_, _, _| Some(InlineRunner::enter(|| {}).is_none().to_string())))
        .unwrap();
    assert_eq!(r, "true");
    let runner = InlineRunner::enter(|| {}).unwrap();
    assert!(InlineRunner::enter(|| {}).is_none());
    drop(runner);
    // No runner on this thread: `keep` runs its closure, nothing is kept.
    let (tx, rx) = mpsc::channel();
    assert_eq!(InlineRunner::keep(|| 5), 5);
    InlineRunner::keep(|| call_where(&server, tx));
    assert_ne!(rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap(), here());
}
