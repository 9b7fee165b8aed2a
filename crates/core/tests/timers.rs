//! Timers: S25–S30, and the beyond-OTP cancel guarantee.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn count(log: &Log, entry: &str) -> usize {
    log.get().iter().filter(|e| *e == entry).count()
}

#[test]
fn s25_send_after_delivers_once_after_the_delay() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    let start = Instant::now();
    s.call(Req::SendAfter(Duration::from_millis(30), "t".into())).unwrap();
    assert!(log.wait_for("a:info:t"));
    assert!(start.elapsed() >= Duration::from_millis(30), "never early");
    // Zero delay still goes through the mailbox, once.
    s.call(Req::SendAfter(Duration::ZERO, "z".into())).unwrap();
    assert!(log.wait_for("a:info:z"));
    assert_eq!(s.call(Req::Echo(0)), Ok(Rep::N(0)));
    assert_eq!(count(&log, "a:info:t"), 1);
    assert_eq!(count(&log, "a:info:z"), 1);
}

#[test]
fn s26_read_timer_reports_time_left_then_none() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    s.call(Req::SendAfter(Duration::from_secs(60), "late".into())).unwrap();
    let Rep::Left(Some(left)) = s.call(Req::Read(0)).unwrap() else {
        panic!("pending timer has time left")
    };
    assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50));
    s.call(Req::SendAfter(Duration::from_millis(1), "soon".into())).unwrap();
    assert!(log.wait_for("a:info:soon"));
    assert_eq!(s.call(Req::Read(1)), Ok(Rep::Left(None)));
    assert!(matches!(s.call(Req::Cancel(0)), Ok(Rep::Left(Some(_)))));
    assert_eq!(s.call(Req::Read(0)), Ok(Rep::Left(None)));
}

#[test]
fn s27_cancel_returns_time_left_and_the_message_never_comes() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    s.call(Req::SendAfter(Duration::from_millis(50), "x".into())).unwrap();
    let Rep::Left(Some(left)) = s.call(Req::Cancel(0)).unwrap() else {
        panic!("pending timer cancels")
    };
    assert!(left <= Duration::from_millis(50));
    assert_eq!(s.call(Req::Cancel(0)), Ok(Rep::Left(None)), "second cancel");
    // Wait past the deadline with a timer that must fire, then check x never came.
    s.call(Req::SendAfter(Duration::from_millis(80), "after".into()))
        .unwrap();
    assert!(log.wait_for("a:info:after"));
    assert!(!log.contains("a:info:x"));
}

#[test]
fn s27_beyond_otp_cancel_suppresses_a_message_already_in_the_mailbox() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    s.call(Req::SendAfter(Duration::from_millis(5), "stale".into()))
        .unwrap();
    // The server sleeps past the deadline (the message lands in its mailbox), then cancels.
    let r = s.call(Req::SleepThenCancel(Duration::from_millis(60), 0)).unwrap();
    assert_eq!(r, Rep::Left(None), "it had fired");
    assert_eq!(s.call(Req::Echo(1)), Ok(Rep::N(1)));
    assert!(!log.contains("a:info:stale"), "OTP would deliver it; arbor does not");
}

#[test]
fn s29_timers_die_with_their_process() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    s.call(Req::ArmMany(100, Duration::from_secs(60))).unwrap();
    assert_eq!(rt.timer_count(), 100);
    s.kill();
    assert!(wait_until(|| rt.timer_count() == 0));
}

#[test]
fn s30_timers_fire_in_deadline_order_and_creation_order() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    s.call(Req::SendAfter(Duration::from_millis(40), "forty".into()))
        .unwrap();
    s.call(Req::SendAfter(Duration::from_millis(20), "twenty".into()))
        .unwrap();
    s.call(Req::ArmMany(5, Duration::from_millis(10))).unwrap();
    assert!(log.wait_for("a:info:forty"));
    let infos: Vec<String> = log.get().into_iter().filter(|e| e.starts_with("a:info:")).collect();
    let want: Vec<String> = ["many0", "many1", "many2", "many3", "many4", "twenty", "forty"]
        .iter()
        .map(|m| format!("a:info:{m}"))
        .collect();
    assert_eq!(infos, want);
}

#[test]
fn many_pending_timers_and_cheap_cancel() {
    let n: usize = std::env::var("ARBOR_TIMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    s.call_timeout(Req::ArmMany(n, Duration::from_secs(3600)), DEADLINE)
        .unwrap();
    assert_eq!(rt.timer_count(), n);
    let start = Instant::now();
    for i in 0..1000 {
        assert!(matches!(s.call(Req::Cancel(i)), Ok(Rep::Left(Some(_)))));
    }
    assert!(start.elapsed() < DEADLINE);
    assert_eq!(rt.timer_count(), n - 1000);
    s.kill();
    assert!(wait_until(|| rt.timer_count() == 0));
}
