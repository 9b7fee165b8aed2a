//! The soak's own detectors, shown to fire: a soak whose checks cannot fail proves nothing.

use crate::ledger::{Kind, Ledger, Token};
use crate::rng::Rng;
use crate::worker::{check_call, CallClock};
use arbor::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Idle;

impl GenServer for Idle {
    type Args = ();
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init(_: (), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Idle)
    }
}

fn kinds(ledger: &Ledger) -> Vec<Kind> {
    ledger.violations().keys().copied().collect()
}

#[test]
fn a_token_dropped_while_its_process_lives_is_a_lost_message() {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let idle = rt.start::<Idle>(()).unwrap();
    let ledger = Arc::new(Ledger::default());
    drop(Token::new(&ledger, idle.pid()));
    assert_eq!(kinds(&ledger), vec![Kind::LostMessage]);
    idle.kill();
    idle.wait_exit(Duration::from_secs(5));
    let quiet = Arc::new(Ledger::default());
    drop(Token::new(&quiet, idle.pid()));
    assert!(kinds(&quiet).is_empty(), "dropped with its dead process");
    assert_eq!(quiet.dropped_dead.get(), 1);
    assert_eq!(quiet.tokens_made.get(), quiet.tokens_ended());
}

#[test]
fn handling_a_cancelled_timers_token_is_a_violation() {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let idle = rt.start::<Idle>(()).unwrap();
    let ledger = Arc::new(Ledger::default());
    let flag = Arc::new(AtomicBool::new(false));
    let mut token = Token::new(&ledger, idle.pid());
    token.on_timer(flag.clone());
    flag.store(true, Ordering::SeqCst);
    token.consume(idle.pid());
    assert_eq!(kinds(&ledger), vec![Kind::CancelledTimerHandled]);
}

#[test]
fn a_late_call_and_a_wrong_reply_are_violations() {
    let ledger = Ledger::default();
    let clock = CallClock::start();
    // Late: about 250 ms past a 1 ms timeout, spent sleeping (not waiting for a CPU).
    std::thread::sleep(Duration::from_millis(250));
    check_call(&ledger, "test", &clock, Duration::from_millis(1), 7, &Ok(7));
    let clock = CallClock::start();
    check_call(&ledger, "test", &clock, Duration::from_secs(1), 7, &Ok(8));
    assert_eq!(kinds(&ledger), vec![Kind::LateCall, Kind::WrongReply]);
}

#[test]
fn choices_follow_the_seed() {
    let a: Vec<u64> = (0..5)
        .map({
            let mut r = Rng::new(42, 3);
            move |_| r.next()
        })
        .collect();
    let b: Vec<u64> = (0..5)
        .map({
            let mut r = Rng::new(42, 3);
            move |_| r.next()
        })
        .collect();
    let c: Vec<u64> = (0..5)
        .map({
            let mut r = Rng::new(42, 4);
            move |_| r.next()
        })
        .collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn the_simulated_soak_holds_its_invariants_and_replays_its_seeds() {
    let ledger = Arc::new(Ledger::default());
    for seed in 0..20 {
        let a = crate::sim::run_seed(&ledger, seed);
        let b = crate::sim::run_seed(&ledger, seed);
        assert_eq!(
            (a.digest, a.steps, a.faults),
            (b.digest, b.steps, b.faults),
            "seed {seed}"
        );
    }
    assert!(kinds(&ledger).is_empty(), "{:?}", ledger.violations());
    assert_eq!(ledger.tokens_made.get(), ledger.tokens_ended());
    assert!(ledger
        .counters()
        .iter()
        .any(|(n, c)| *n == "calls answered" && *c > 100));
}

#[test]
fn the_simulated_soak_sees_a_late_call() {
    // Its lateness check is exact: a reply even one tick past the timeout is reported.
    let ledger = Arc::new(Ledger::default());
    crate::sim::check_lateness(&ledger, 1, Duration::from_millis(5), Duration::from_micros(5100));
    crate::sim::check_lateness(&ledger, 1, Duration::from_millis(5), Duration::from_millis(5));
    assert_eq!(kinds(&ledger), vec![Kind::LateCall]);
}
