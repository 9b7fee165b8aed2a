//! Timers anyone may hold ([`Timer`]): `send_after` to any server from anywhere, the
//! drift-free interval, cancel from anywhere with exactly-once semantics.

mod common;
use arbor_core::*;
use common::{rt, wait_until};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Counts each tag it handles; a call can block it until released.
struct Counter {
    seen: Arc<Mutex<Vec<u64>>>,
    /// Set by the test after it cancels a timer: handling its tag then is a violation.
    cancelled: Arc<AtomicBool>,
    violations: Arc<AtomicU64>,
}

#[derive(Clone)]
struct Tag(u64);

enum Ask {
    Count,
    /// Says it has begun (the sender), then blocks until released (the receiver).
    Block(mpsc::Sender<()>, mpsc::Receiver<()>),
}

impl GenServer for Counter {
    type Args = (Arc<Mutex<Vec<u64>>>, Arc<AtomicBool>, Arc<AtomicU64>);
    type Info = Tag;
    type Call = Ask;
    type Reply = usize;

    fn init((seen, cancelled, violations): Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Counter {
            seen,
            cancelled,
            violations,
        })
    }

    fn handle_info(&mut self, Tag(t): Tag, _ctx: &mut Context<'_, Self>) -> Flow {
        if t == 0 && self.cancelled.load(Ordering::SeqCst) {
            self.violations.fetch_add(1, Ordering::SeqCst);
        }
        self.seen.lock().unwrap().push(t);
        Flow::Continue
    }

    fn handle_call(&mut self, ask: Ask, _: ReplyTo<usize>, _: &mut Context<'_, Self>) -> CallFlow<usize> {
        if let Ask::Block(begun, rx) = ask {
            let _ = begun.send(());
            let _ = rx.recv_timeout(common::DEADLINE);
        }
        CallFlow::Reply(self.seen.lock().unwrap().len())
    }
}

struct Fixture {
    rt: Runtime,
    server: ServerRef<Counter>,
    seen: Arc<Mutex<Vec<u64>>>,
    cancelled: Arc<AtomicBool>,
    violations: Arc<AtomicU64>,
}

/// Blocks the server in a call from another thread, and returns once its handler has
/// begun (so that what the test sends next queues behind it): the release, and the call.
fn block(f: &Fixture) -> (mpsc::Sender<()>, std::thread::JoinHandle<Result<usize, CallError>>) {
    let (release, blocked) = mpsc::channel();
    let (begun_tx, begun) = mpsc::channel();
    let server = f.server.clone();
    let busy = std::thread::spawn(move || server.call(Ask::Block(begun_tx, blocked)));
    begun.recv_timeout(common::DEADLINE).expect("the blocking call began");
    (release, busy)
}

/// After a cancelled interval: every deadline it passed was queued and handled, or counted
/// missed; but for the one tick that may have been waiting in the mailbox when `cancel`
/// won (at most one is queued at a time), which `cancel` drops.
fn assert_every_deadline_accounted(f: &Fixture, t: &Timer) {
    let handled = f.server.call(Ask::Count).unwrap() as u64;
    let accounted = handled + t.missed();
    assert!(
        accounted == t.deadlines() || accounted + 1 == t.deadlines(),
        "handled {handled} + missed {} against {} deadlines",
        t.missed(),
        t.deadlines()
    );
}

fn fixture() -> Fixture {
    let rt = rt(2);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let cancelled = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(AtomicU64::new(0));
    let server = rt
        .start::<Counter>((seen.clone(), cancelled.clone(), violations.clone()))
        .unwrap();
    Fixture {
        rt,
        server,
        seen,
        cancelled,
        violations,
    }
}

impl Fixture {
    fn count(&self, tag: u64) -> usize {
        self.seen.lock().unwrap().iter().filter(|&&t| t == tag).count()
    }
}

#[test]
fn send_after_to_another_server_from_a_plain_thread_delivers_once_never_early() {
    let f = fixture();
    let armed = Instant::now();
    let t = f.server.send_after(Duration::from_millis(20), Tag(1));
    assert!(t.read().is_some_and(|left| left <= Duration::from_millis(20)));
    assert!(wait_until(|| f.count(1) == 1));
    assert!(armed.elapsed() >= Duration::from_millis(20), "never early");
    assert_eq!(t.read(), None, "handled");
    assert_eq!(t.cancel(), None, "handled: nothing to cancel");
    assert!(!t.is_active());
    assert_eq!(f.server.call(Ask::Count), Ok(1), "once");
}

#[test]
fn send_after_from_inside_a_process_to_another_server() {
    let f = fixture();
    let target = f.server.clone();
    let sender = f.rt.start::<common::Jobs>(()).unwrap();
    let (tx, rx) = mpsc::channel();
    sender
        .call(common::job(move |_, _, _ctx| {
            tx.send(target.send_after(Duration::from_millis(5), Tag(7))).unwrap();
            Some(String::new())
        }))
        .unwrap();
    let timer = rx.recv().unwrap();
    assert!(wait_until(|| f.count(7) == 1));
    assert!(!timer.is_active());
}

#[test]
fn cancel_from_another_thread_returns_time_left_and_the_message_never_comes() {
    let f = fixture();
    let t = f.server.send_after(Duration::from_millis(60), Tag(0));
    let t2 = t.clone();
    let left = std::thread::spawn(move || t2.cancel()).join().unwrap();
    assert!(left.is_some_and(|l| l <= Duration::from_millis(60)), "{left:?}");
    f.cancelled.store(true, Ordering::SeqCst);
    assert_eq!(t.cancel(), None, "second cancel");
    assert_eq!(t.read(), None);
    // A later timer from the same timer thread: once it is handled, the cancelled one
    // would have been handled before it.
    f.server.send_after(Duration::from_millis(90), Tag(1));
    assert!(wait_until(|| f.count(1) == 1));
    assert_eq!(f.count(0), 0);
    assert_eq!(f.rt.timer_count(), 0);
}

#[test]
fn cancel_from_another_process_suppresses_a_message_already_in_the_mailbox() {
    let f = fixture();
    let (release, busy) = block(&f);
    let t = f.server.send_after(Duration::from_millis(1), Tag(0));
    // Fired: off the wheel, queued behind the blocked call.
    assert!(wait_until(|| f.rt.timer_count() == 0 && f.server.mailbox_len() == 1));
    assert_eq!(t.read(), Some(Duration::ZERO), "queued, unhandled");
    let canceller = f.rt.start::<common::Jobs>(()).unwrap();
    let (tx, rx) = mpsc::channel();
    let t2 = t.clone();
    canceller
        .call(common::job(move |_, _, _| {
            tx.send(t2.cancel()).unwrap();
            Some(String::new())
        }))
        .unwrap();
    assert_eq!(rx.recv().unwrap(), Some(Duration::ZERO), "cancelled, with nothing left");
    f.cancelled.store(true, Ordering::SeqCst);
    release.send(()).unwrap();
    assert_eq!(busy.join().unwrap(), Ok(0));
    assert_eq!(
        f.server.call(Ask::Count),
        Ok(0),
        "dropped unhandled (OTP would deliver it)"
    );
    assert_eq!(f.violations.load(Ordering::SeqCst), 0);
}

#[test]
fn racing_cancels_are_exactly_once() {
    // Each timer is either handled or cancelled (`Some`), never both, never neither.
    let f = fixture();
    let n = 2_000;
    let mut cancelled = 0;
    for i in 0..n {
        let t = f.server.send_after(Duration::from_micros(100 * (i % 5)), Tag(1));
        if i % 3 == 0 {
            std::thread::yield_now();
        }
        if t.cancel().is_some() {
            cancelled += 1;
        }
    }
    assert!(wait_until(|| f.rt.timer_count() == 0));
    let handled = f.server.call(Ask::Count).unwrap();
    assert_eq!(
        handled + cancelled,
        n as usize,
        "handled {handled}, cancelled {cancelled}"
    );
}

#[test]
fn interval_does_not_drift() {
    // Counting, not timing: the n-th deadline is `start + n × period`, so the deadlines
    // the timer has passed keep up with the deadlines elapsed on the clock. A timer
    // re-armed at "now + period" loses its lateness (at least the rounding to the
    // wheel's 100 µs tick) at every tick: over 500 ticks of 1 ms, 50 or more deadlines.
    let f = fixture();
    let period = Duration::from_millis(1);
    let n = 500;
    let start = Instant::now();
    let t = f.server.send_interval(period, Tag(1));
    assert!(wait_until(|| t.deadlines() >= n));
    let elapsed_deadlines = (start.elapsed().as_nanos() / period.as_nanos()) as u64;
    let passed = t.deadlines();
    assert!(t.cancel().is_some());
    assert!(passed <= elapsed_deadlines + 1, "early: {passed} > {elapsed_deadlines}");
    assert!(
        passed + 10 >= elapsed_deadlines,
        "drift: {passed} deadlines passed, {elapsed_deadlines} elapsed"
    );
    assert_every_deadline_accounted(&f, &t);
}

#[test]
fn interval_cancelled_from_a_plain_thread_delivers_nothing_after() {
    let f = fixture();
    let t = f.server.send_interval(Duration::from_millis(1), Tag(0));
    assert!(wait_until(|| f.count(0) >= 3));
    let t2 = t.clone();
    let left = std::thread::spawn(move || t2.cancel()).join().unwrap();
    assert!(left.is_some_and(|l| l <= Duration::from_millis(1)), "{left:?}");
    // A tick whose handler began before the cancel may finish; the call runs after it.
    let at_cancel = f.server.call(Ask::Count).unwrap();
    f.cancelled.store(true, Ordering::SeqCst);
    // Twenty periods later, with a one-shot as the witness that time has passed.
    f.server.send_after(Duration::from_millis(20), Tag(1));
    assert!(wait_until(|| f.count(1) == 1));
    assert_eq!(
        f.server.call(Ask::Count).unwrap(),
        at_cancel + 1,
        "no tick after the cancel"
    );
    assert_eq!(f.violations.load(Ordering::SeqCst), 0);
    assert_eq!(f.rt.timer_count(), 0, "nothing left on the wheel");
    assert_eq!(t.cancel(), None);
}

#[test]
fn interval_to_a_slow_receiver_queues_one_tick_at_a_time() {
    let f = fixture();
    let (release, busy) = block(&f);
    let t = f.server.send_interval(Duration::from_millis(1), Tag(1));
    assert!(wait_until(|| t.missed() >= 20));
    assert_eq!(f.server.mailbox_len(), 1, "one tick waits, the rest are counted missed");
    release.send(()).unwrap();
    busy.join().unwrap().unwrap();
    assert!(
        wait_until(|| f.count(1) >= 3),
        "ticks flow again once the receiver is free"
    );
    t.cancel().unwrap();
    assert_every_deadline_accounted(&f, &t);
}

#[test]
fn interval_stops_when_its_receiver_exits() {
    let f = fixture();
    let t = f.server.send_interval(Duration::from_millis(1), Tag(1));
    assert!(wait_until(|| f.count(1) >= 1));
    f.server.stop(ExitReason::Normal, common::DEADLINE).unwrap();
    assert!(wait_until(|| !t.is_active() && f.rt.timer_count() == 0));
    assert_eq!(t.cancel(), None, "nothing to cancel: the receiver is gone");
}

#[test]
fn send_after_to_an_exited_server_delivers_nothing() {
    let f = fixture();
    let t = f.server.send_after(Duration::from_millis(5), Tag(1));
    f.server.stop(ExitReason::Normal, common::DEADLINE).unwrap();
    assert!(wait_until(|| !t.is_active() && f.rt.timer_count() == 0));
    assert_eq!(t.cancel(), None);
}
