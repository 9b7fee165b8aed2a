//! Exits, links and monitors: S19–S22 and S31–S37.

mod common;
use arbor_core::*;
use common::*;
use std::time::{Duration, Instant};

/// Starts a trapping `a` and a plain `b`, with `b` linked from `a`.
fn linked_pair(rt: &Runtime, log: &Log, a_mode: InitMode, b_mode: InitMode) -> (ServerRef<Probe>, ServerRef<Probe>) {
    let a = probe(rt, "a", log, a_mode).unwrap();
    let b = probe(rt, "b", log, b_mode).unwrap();
    assert_eq!(a.call(Req::Link(b.pid())), Ok(Rep::Linked(Ok(()))));
    (a, b)
}

#[test]
fn s19_trapping_child_runs_terminate_on_parent_exit_after_queued_messages() {
    let rt = rt(2);
    let log = Log::default();
    // The parent starts a trapping child with start_link.
    let parent = rt.start::<Parent>((log.clone(), InitMode::Trap, false)).unwrap();
    let child = rt.processes().into_iter().find(|p| *p != parent.pid()).unwrap();
    let child = ServerRef::<Probe>::from_pid(child).unwrap();
    child.send("m1".into()).unwrap();
    parent.exit(ExitReason::Shutdown);
    assert!(log.wait_for("child:terminate:shutdown"));
    let events = log.get();
    let m1 = events.iter().position(|e| e == "child:info:m1").unwrap();
    let t = events.iter().position(|e| e == "child:terminate:shutdown").unwrap();
    assert!(m1 < t, "{events:?}");
    // The parent's exit reaches `handle_stop`, never `handle_exit`.
    assert!(events.contains(&"child:stop:shutdown".to_string()), "{events:?}");
    assert!(!events.iter().any(|e| e.starts_with("child:exit:")), "{events:?}");
}

#[test]
fn s19_untrapped_exit_kills_at_once_without_terminate_or_queued_messages() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    let s2 = s.clone();
    let busy = std::thread::spawn(move || s2.call(Req::Sleep(Duration::from_millis(100), 1)));
    assert!(log.wait_for("a:sleeping"));
    s.send("queued".into()).unwrap();
    s.exit(ExitReason::custom("boom"));
    assert_eq!(s.wait_exit(DEADLINE), Some(ExitReason::custom("boom")));
    assert_eq!(busy.join().unwrap(), Err(CallError::Exited(ExitReason::custom("boom"))));
    assert!(!log.contains("a:info:queued"));
    assert!(!log.get().iter().any(|e| e.contains("terminate")));
}

#[test]
fn s19_kill_is_not_trappable_and_skips_terminate() {
    let rt = rt(2);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Trap).unwrap();
    s.kill();
    assert_eq!(s.wait_exit(DEADLINE), Some(ExitReason::Killed));
    assert!(!log.get().iter().any(|e| e.contains("terminate")));
}

#[test]
fn s20_exit_from_non_parent_to_trapping_server_is_a_message() {
    let rt = rt(2);
    let log = Log::default();
    let a = probe(&rt, "a", &log, InitMode::Trap).unwrap();
    let b = probe(&rt, "b", &log, InitMode::Ok).unwrap();
    b.call(Req::Exit(a.pid(), ExitReason::custom("boom"))).unwrap();
    assert!(log.wait_for("a:exit:other:error: boom"));
    assert!(a.is_alive());
    // The same signal kills a non-trapping server.
    a.call(Req::Exit(b.pid(), ExitReason::custom("boom"))).unwrap();
    assert_eq!(b.wait_exit(DEADLINE), Some(ExitReason::custom("boom")));
}

#[test]
fn s21_parent_normal_exit_stops_trapping_child_but_not_plain_child() {
    let rt = rt(2);
    let log = Log::default();
    let parent = rt.start::<Parent>((log.clone(), InitMode::Trap, false)).unwrap();
    parent.stop(ExitReason::Normal, DEADLINE).unwrap();
    assert!(log.wait_for("child:terminate:normal"));
    assert!(wait_until(|| rt.process_count() == 0));

    let log = Log::default();
    let parent = rt.start::<Parent>((log.clone(), InitMode::Ok, false)).unwrap();
    parent.stop(ExitReason::Normal, DEADLINE).unwrap();
    assert!(wait_until(|| rt.process_count() == 1));
    let child = ServerRef::<Probe>::from_pid(rt.processes()[0]).unwrap();
    assert_eq!(child.call(Req::Echo(1)), Ok(Rep::N(1)));
}

#[test]
fn s22_clean_reasons() {
    assert!(ExitReason::Normal.is_clean());
    assert!(ExitReason::Shutdown.is_clean());
    assert!(ExitReason::shutdown_with("bye").is_clean());
    assert!(!ExitReason::Killed.is_clean());
    assert!(!ExitReason::custom("x").is_clean());
    assert!(!ExitReason::panic("x").is_clean());
}

#[test]
fn s31_each_monitor_delivers_its_own_down() {
    let rt = rt(2);
    let log = Log::default();
    let w = probe(&rt, "w", &log, InitMode::Ok).unwrap();
    let t = probe(&rt, "t", &log, InitMode::Ok).unwrap();
    let m1 = w.call(Req::Monitor(t.pid())).unwrap();
    let m2 = w.call(Req::Monitor(t.pid())).unwrap();
    assert_ne!(m1, m2);
    t.exit(ExitReason::shutdown_with("done"));
    assert!(wait_until(|| log
        .get()
        .iter()
        .filter(|e| *e == "w:down:shutdown: done")
        .count()
        == 2));
    // Killed reads as killed, a panic as its message.
    let t = probe(&rt, "t2", &log, InitMode::Ok).unwrap();
    w.call(Req::Monitor(t.pid())).unwrap();
    t.kill();
    assert!(log.wait_for("w:down:killed"));
    let t = probe(&rt, "t3", &log, InitMode::Ok).unwrap();
    w.call(Req::Monitor(t.pid())).unwrap();
    t.send("panic".into()).unwrap();
    assert!(log.wait_for("w:down:panic: boom in handle_info"));
}

#[test]
fn s32_monitoring_a_dead_pid_delivers_noproc_at_once() {
    let rt = rt(2);
    let log = Log::default();
    let w = probe(&rt, "w", &log, InitMode::Ok).unwrap();
    let t = probe(&rt, "t", &log, InitMode::Ok).unwrap();
    t.kill();
    w.call(Req::Monitor(t.pid())).unwrap();
    assert!(log.wait_for("w:down:noproc"));
}

#[test]
fn s33_demonitor_stops_and_flushes_down() {
    let rt = rt(2);
    let log = Log::default();
    let w = probe(&rt, "w", &log, InitMode::Ok).unwrap();
    let t = probe(&rt, "t", &log, InitMode::Ok).unwrap();
    let Rep::Mon(m) = w.call(Req::Monitor(t.pid())).unwrap() else {
        panic!()
    };
    assert_eq!(w.call(Req::Demonitor(t.pid(), m)), Ok(Rep::Bool(true)));
    assert_eq!(w.call(Req::Demonitor(t.pid(), m)), Ok(Rep::Bool(false)));
    t.kill();
    assert_eq!(t.wait_exit(DEADLINE), Some(ExitReason::Killed));
    // A Down would be queued by now; the next call is handled after it.
    assert_eq!(w.call(Req::Echo(1)), Ok(Rep::N(1)));
    assert!(!log.contains("w:down:killed"));
}

#[test]
fn s34_links_propagate_abnormal_exits_with_the_same_reason() {
    let rt = rt(2);
    let log = Log::default();
    // Normal: the linked plain process survives.
    let (a, b) = linked_pair(&rt, &log, InitMode::Ok, InitMode::Ok);
    a.stop(ExitReason::Normal, DEADLINE).unwrap();
    assert_eq!(b.call(Req::Echo(1)), Ok(Rep::N(1)));
    // Custom reason: b dies with the same reason.
    let (a, b) = linked_pair(&rt, &log, InitMode::Ok, InitMode::Ok);
    a.send("crash".into()).unwrap();
    assert_eq!(b.wait_exit(DEADLINE), Some(ExitReason::custom("crash")));
    let _ = a;
    // Killed: b dies with Killed.
    let (a, b) = linked_pair(&rt, &log, InitMode::Ok, InitMode::Ok);
    a.kill();
    assert_eq!(b.wait_exit(DEADLINE), Some(ExitReason::Killed));
}

#[test]
fn s35_trapping_process_gets_every_linked_exit() {
    let rt = rt(2);
    let log = Log::default();
    let (_a, b) = linked_pair(&rt, &log, InitMode::Trap, InitMode::Ok);
    b.stop(ExitReason::Normal, DEADLINE).unwrap();
    assert!(log.wait_for("a:exit:other:normal"));
    let (_a2, b2) = {
        let a = probe(&rt, "a2", &log, InitMode::Trap).unwrap();
        let b = probe(&rt, "b2", &log, InitMode::Ok).unwrap();
        a.call(Req::Link(b.pid())).unwrap();
        (a, b)
    };
    b2.kill();
    assert!(log.wait_for("a2:exit:other:killed"));
}

#[test]
fn s36_exit_signal_rules() {
    let rt = rt(2);
    let log = Log::default();
    let a = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    // Normal from outside is ignored by a non-trapping process.
    a.exit(ExitReason::Normal);
    assert_eq!(a.call(Req::Echo(1)), Ok(Rep::N(1)));
    // Normal to oneself ends a non-trapping process, at once: the call that sent it
    // gets the exit instead of a reply.
    assert_eq!(
        a.call(Req::Exit(a.pid(), ExitReason::Normal)),
        Err(CallError::Exited(ExitReason::Normal))
    );
    assert_eq!(a.wait_exit(DEADLINE), Some(ExitReason::Normal));
    // A trapping process gets it as a message instead.
    let t = probe(&rt, "t", &log, InitMode::Trap).unwrap();
    t.call(Req::Exit(t.pid(), ExitReason::Normal)).unwrap();
    assert!(log.wait_for("t:exit:other:normal"));
    assert!(t.is_alive());
}

#[test]
fn s37_link_to_dead_pid_and_link_idempotence() {
    let rt = rt(2);
    let log = Log::default();
    let dead = probe(&rt, "dead", &log, InitMode::Ok).unwrap();
    dead.kill();
    assert_eq!(dead.wait_exit(DEADLINE), Some(ExitReason::Killed));
    let plain = probe(&rt, "plain", &log, InitMode::Ok).unwrap();
    assert_eq!(plain.call(Req::Link(dead.pid())), Ok(Rep::Linked(Err(NoProc))));
    let trap = probe(&rt, "trap", &log, InitMode::Trap).unwrap();
    assert_eq!(trap.call(Req::Link(dead.pid())), Ok(Rep::Linked(Ok(()))));
    assert!(log.wait_for("trap:exit:other:noproc"));
    // Linking twice or to oneself is a no-op.
    assert_eq!(plain.call(Req::Link(trap.pid())), Ok(Rep::Linked(Ok(()))));
    assert_eq!(plain.call(Req::Link(trap.pid())), Ok(Rep::Linked(Ok(()))));
    assert_eq!(plain.call(Req::Link(plain.pid())), Ok(Rep::Linked(Ok(()))));
    plain.kill();
    assert!(log.wait_for("trap:exit:other:killed"));
    assert_eq!(log.get().iter().filter(|e| *e == "trap:exit:other:killed").count(), 1);
}

#[test]
fn link_cycles_and_long_chains_propagate_iteratively() {
    let rt = rt(2);
    let log = Log::default();
    let n = 20_000;
    let servers: Vec<_> = (0..n)
        .map(|i| probe(&rt, &format!("p{i}"), &log, InitMode::Ok).unwrap())
        .collect();
    for i in 0..n {
        rt.link(servers[i].pid(), servers[(i + 1) % n].pid()).unwrap();
    }
    let start = Instant::now();
    servers[0].exit(ExitReason::custom("chain"));
    assert!(wait_until(|| rt.process_count() == 0));
    assert!(start.elapsed() < DEADLINE);
}
