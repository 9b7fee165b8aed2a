//! DynamicSupervisor: S38–S51 of `docs/behaviours.md`, one test (or a few) per item.

mod common;

use arbor_core::*;
use arbor_supervisor::*;
use common::*;
use std::time::{Duration, Instant};

fn dyn_sup(rt: &Runtime, opts: DynamicOpts) -> DynamicSupervisor {
    DynamicSupervisor::start_link(opts.runtime(rt.handle())).unwrap()
}

fn only_child(sup: &DynamicSupervisor) -> Option<ChildInfo> {
    let mut c = sup.which_children().ok()?;
    (c.len() == 1).then(|| c.remove(0))
}

#[test]
fn s38_default_options() {
    let rt = rt();
    assert_eq!(DEFAULT_MAX_RESTARTS, 3);
    assert_eq!(DEFAULT_MAX_SECONDS, Duration::from_secs(5));
    let sup = dyn_sup(&rt, DynamicOpts::new());
    assert_eq!(sup.count_children().unwrap(), ChildCounts::default());
    assert!(sup.which_children().unwrap().is_empty());
    sup.stop().unwrap();
}

#[test]
fn s39_invalid_options_rejected_before_start() {
    let rt = rt();
    let before = rt.process_count();
    let err = DynamicSupervisor::start_link(DynamicOpts::new().max_seconds(0).runtime(rt.handle())).unwrap_err();
    assert_eq!(err, SupervisorStartError::Options(OptionsError::ZeroMaxSeconds));
    let err = DynamicSupervisor::start(DynamicOpts::new().max_period(Duration::ZERO).runtime(rt.handle())).unwrap_err();
    assert_eq!(err, SupervisorStartError::Options(OptionsError::ZeroMaxSeconds));
    assert_eq!(rt.process_count(), before);
}

#[test]
fn s40_start_child_result_table() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());

    // {:ok, pid}: stored.
    let ok = Probe::new("ok", &log);
    let pid = sup.start_child(ok.spec()).unwrap();
    assert!(is_alive(pid));

    // init returns {:stop, r}: error, not stored, not restarted.
    let fail = Probe::new("fail", &log).script([Init::Fail(ExitReason::custom("boom"))]);
    assert_eq!(
        sup.start_child(fail.spec()).unwrap_err(),
        StartChildError::Start(StartError::Init(ExitReason::custom("boom")))
    );
    // init returns :ignore: not stored.
    let ignore = Probe::new("ignore", &log).script([Init::Ignore]);
    assert_eq!(
        sup.start_child(ignore.spec()).unwrap_err(),
        StartChildError::Start(StartError::Ignore)
    );
    // init raises.
    let panics = Probe::new("panics", &log).script([Init::Panic]);
    assert!(matches!(
        sup.start_child(panics.spec()).unwrap_err(),
        StartChildError::Start(StartError::Init(ExitReason::Panic(_)))
    ));
    // start fn returns {:error, x}.
    let err = sup
        .start_child(ChildSpec::new("err", || {
            Err(StartError::Failed(ExitReason::custom("x")))
        }))
        .unwrap_err();
    assert_eq!(err, StartChildError::Start(StartError::Failed(ExitReason::custom("x"))));
    // start fn raises.
    let err = sup
        .start_child(ChildSpec::new("raise", || panic!("start fn raises")))
        .unwrap_err();
    assert!(matches!(
        err,
        StartChildError::Start(StartError::Failed(ExitReason::Panic(_)))
    ));

    let counts = sup.count_children().unwrap();
    assert_eq!((counts.specs, counts.active, counts.workers), (1, 1, 1));
    assert_eq!(only_child(&sup).unwrap().status, ChildStatus::Running(pid));
    // None of the failed ones was tried again.
    for p in [&fail, &ignore, &panics] {
        assert_eq!(p.counters.started(), 1, "{} started once", p.id);
    }
    assert!(sup.is_alive());
    sup.stop().unwrap();
    assert_eq!(ok.counters.terminated(), 1);
}

#[test]
fn s41_ids_are_ignored() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let p = Probe::new("same", &log);
    let a = sup.start_child(p.spec()).unwrap();
    let b = sup.start_child(p.spec()).unwrap();
    assert_ne!(a, b);
    assert_eq!(sup.count_children().unwrap().specs, 2);
    sup.stop().unwrap();
    assert_eq!(p.counters.started(), 2);
    assert_eq!(p.counters.terminated(), 2);
}

#[test]
fn s42_invalid_spec_rejected_before_contact() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let p = Probe::new("", &log);
    assert_eq!(
        sup.start_child(p.spec()).unwrap_err(),
        StartChildError::Spec(SpecError::EmptyId)
    );
    let p2 = Probe::new("zero", &log);
    let spec = p2.spec().shutdown(Shutdown::Timeout(Duration::ZERO));
    assert_eq!(
        sup.start_child(spec).unwrap_err(),
        StartChildError::Spec(SpecError::InvalidShutdown("zero".into()))
    );
    // Rejected without contacting even a dead supervisor.
    sup.stop().unwrap();
    assert_eq!(
        sup.start_child(Probe::new("", &log).spec()).unwrap_err(),
        StartChildError::Spec(SpecError::EmptyId)
    );
    assert_eq!(p.counters.started() + p2.counters.started(), 0);
}

#[test]
fn s43_max_children_counts_restarting_children() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new().max_children(1).max_restarts(1_000));
    // The first start succeeds; every restart fails, so the child stays restarting.
    let slow_fail = || Init::FailAfter(Duration::from_millis(10), ExitReason::custom("nope"));
    let p =
        Probe::new("flaky", &log).script(std::iter::once(Init::Ok).chain(std::iter::repeat_with(slow_fail).take(100)));
    let pid = sup.start_child(p.spec()).unwrap();
    assert_eq!(
        sup.start_child(Probe::new("x", &log).spec()).unwrap_err(),
        StartChildError::MaxChildren
    );
    exit_probe(pid, ExitReason::custom("crash"));
    assert!(eventually(
        || only_child(&sup).is_some_and(|c| c.status == ChildStatus::Restarting)
    ));
    assert_eq!(
        sup.start_child(Probe::new("y", &log).spec()).unwrap_err(),
        StartChildError::MaxChildren
    );
    let counts = sup.count_children().unwrap();
    assert_eq!((counts.specs, counts.active, counts.workers), (1, 0, 1));
    // S48: a restarting child can be terminated, by its last pid.
    sup.terminate_child(pid).unwrap();
    assert_eq!(sup.count_children().unwrap().specs, 0);
    sup.start_child(Probe::new("z", &log).spec()).unwrap();
    sup.stop().unwrap();
}

fn reasons() -> Vec<ExitReason> {
    vec![
        ExitReason::Normal,
        ExitReason::Shutdown,
        ExitReason::shutdown_with("x"),
        ExitReason::custom("custom"),
        ExitReason::Killed,
    ]
}

/// Makes one child of type `restart` exit with `reason`; true if it was restarted.
fn restarted(rt: &Runtime, restart: Restart, reason: ExitReason) -> bool {
    let log = Log::default();
    let sup = dyn_sup(rt, DynamicOpts::new());
    let p = Probe::new("child", &log).trap(false);
    let pid = sup.start_child(p.spec().restart(restart)).unwrap();
    exit_probe(pid, reason.clone());
    let mut outcome = None;
    assert!(eventually(|| {
        let c = sup.which_children().unwrap();
        outcome = match c.first() {
            None => Some(false),
            Some(info) if info.status.pid().is_some_and(|p| p != pid) => Some(true),
            _ => None,
        };
        outcome.is_some()
    }));
    let expected_starts = if outcome == Some(true) { 2 } else { 1 };
    assert_eq!(p.counters.started(), expected_starts, "{restart:?} {reason:?}");
    sup.stop().unwrap();
    outcome.unwrap()
}

#[test]
fn s44_permanent_restarted_regardless_of_reason() {
    let rt = rt();
    for r in reasons() {
        assert!(restarted(&rt, Restart::Permanent, r.clone()), "permanent, {r:?}");
    }
}

#[test]
fn s44_transient_restarted_unless_clean() {
    let rt = rt();
    for r in reasons() {
        let expected = !r.is_clean();
        assert_eq!(
            restarted(&rt, Restart::Transient, r.clone()),
            expected,
            "transient, {r:?}"
        );
    }
}

#[test]
fn s44_temporary_never_restarted() {
    let rt = rt();
    for r in reasons() {
        assert!(!restarted(&rt, Restart::Temporary, r.clone()), "temporary, {r:?}");
    }
}

#[test]
fn s45_restart_calls_start_again_with_a_new_pid() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let p = Probe::new("c", &log);
    let first = sup.start_child(p.spec()).unwrap();
    exit_probe(first, ExitReason::custom("crash"));
    assert!(eventually(|| only_child(&sup)
        .and_then(|c| c.status.pid())
        .is_some_and(|p| p != first)));
    let info = only_child(&sup).unwrap();
    assert_eq!(info.restarts, 1);
    assert_eq!(p.counters.started(), 2);
    assert_eq!(log.count("start:c"), 2);
    sup.stop().unwrap();
}

#[test]
fn s46_fourth_restart_in_window_shuts_the_supervisor_down() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let bystander = Probe::new("bystander", &log);
    sup.start_child(bystander.spec()).unwrap();
    let crasher = Probe::new("crasher", &log).trap(false);
    let mut pid = sup.start_child(crasher.spec()).unwrap();
    for n in 1..=3 {
        exit_probe(pid, ExitReason::custom("crash"));
        assert!(eventually(|| crasher.counters.started() == n + 1));
        assert!(eventually(|| sup
            .which_children()
            .unwrap()
            .iter()
            .any(|c| c.id == "crasher" && c.status.pid().is_some_and(|p| p != pid))));
        pid = sup.which_children().unwrap()[1].status.pid().unwrap();
    }
    exit_probe(pid, ExitReason::custom("crash"));
    assert_eq!(sup.wait_exit(DEADLINE), Some(ExitReason::Shutdown));
    assert_eq!(crasher.counters.started(), 4, "the 4th exit is not restarted");
    assert_eq!(bystander.counters.terminated(), 1);
    assert_eq!(
        log.with_prefix("terminate:bystander"),
        vec!["terminate:bystander:Shutdown"]
    );
}

#[test]
fn s46_window_slides_with_a_driven_clock() {
    let rt = rt();
    let log = Log::default();
    let clock = ManualClock::new();
    let sup = dyn_sup(
        &rt,
        DynamicOpts::new().max_restarts(1).max_seconds(1).clock(clock.clone()),
    );
    let p = Probe::new("c", &log).trap(false);
    let mut pid = sup.start_child(p.spec()).unwrap();
    // Crashes 2.1 s apart never exceed 1 restart per second (SUITE multiple_restarts).
    for n in 1..=5 {
        clock.advance(Duration::from_millis(2100));
        exit_probe(pid, ExitReason::custom("crash"));
        assert!(eventually(|| only_child(&sup)
            .and_then(|c| c.status.pid())
            .is_some_and(|q| q != pid)));
        pid = only_child(&sup).unwrap().status.pid().unwrap();
        assert_eq!(p.counters.started(), n + 1);
    }
    // A second crash within the same second exceeds it.
    clock.advance(Duration::from_millis(900));
    exit_probe(pid, ExitReason::custom("crash"));
    assert_eq!(sup.wait_exit(DEADLINE), Some(ExitReason::Shutdown));
}

#[test]
fn s47_failed_restart_is_retried_asynchronously() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new().max_restarts(10));
    let fail = || Init::Fail(ExitReason::custom("not yet"));
    let p = Probe::new("c", &log).script([Init::Ok, fail(), fail(), Init::Ok]);
    let pid = sup.start_child(p.spec()).unwrap();
    exit_probe(pid, ExitReason::custom("crash"));
    assert!(eventually(
        || only_child(&sup).is_some_and(|c| matches!(c.status, ChildStatus::Running(q) if q != pid))
    ));
    assert_eq!(p.counters.started(), 4);
    assert!(sup.is_alive());
    sup.stop().unwrap();
}

#[test]
fn s47_failed_retries_count_toward_intensity() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let p = Probe::new("c", &log).script(
        std::iter::once(Init::Ok).chain(std::iter::repeat_with(|| Init::Fail(ExitReason::custom("no"))).take(10)),
    );
    let pid = sup.start_child(p.spec()).unwrap();
    exit_probe(pid, ExitReason::custom("crash"));
    assert_eq!(sup.wait_exit(DEADLINE), Some(ExitReason::Shutdown));
    // One start, then three failed restarts; the fourth attempt exceeds 3 in 5 s.
    assert_eq!(p.counters.started(), 4);
}

#[test]
fn s47_restart_that_ignores_removes_the_child() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let p = Probe::new("c", &log).script([Init::Ok, Init::Ignore]);
    let pid = sup.start_child(p.spec()).unwrap();
    exit_probe(pid, ExitReason::custom("crash"));
    assert!(eventually(|| sup.count_children().unwrap().specs == 0));
    assert_eq!(p.counters.started(), 2);
    sup.stop().unwrap();
}

#[test]
fn s48_terminate_child_by_pid() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let p = Probe::new("c", &log);
    let pid = sup.start_child(p.spec()).unwrap();
    assert_eq!(sup.terminate_child(pid), Ok(()));
    assert!(!is_alive(pid));
    assert_eq!(sup.terminate_child(pid), Err(ChildError::NotFound));
    assert_eq!(sup.terminate_child(sup.pid()), Err(ChildError::NotFound));
    assert_eq!(log.with_prefix("terminate:"), vec!["terminate:c:Shutdown"]);
    // Never restarted, even though permanent.
    assert_eq!(sup.count_children().unwrap(), ChildCounts::default());
    assert_eq!((p.counters.started(), p.counters.terminated()), (1, 1));
    sup.stop().unwrap();
}

#[test]
fn s49_children_are_stopped_in_parallel() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let probes: Vec<Probe> = (0..2)
        .map(|i| Probe::new(&format!("c{i}"), &log).terminate_sleep(Duration::from_millis(300)))
        .collect();
    for p in &probes {
        sup.start_child(p.spec()).unwrap();
    }
    let t = Instant::now();
    sup.stop().unwrap();
    let took = t.elapsed();
    for p in &probes {
        assert_eq!(p.counters.terminated(), 1);
    }
    assert!(took < Duration::from_millis(550), "parallel shutdown took {took:?}");
}

#[test]
fn s49_brutal_kill_skips_terminate() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let p = Probe::new("c", &log);
    let pid = sup.start_child(p.spec().shutdown(Shutdown::BrutalKill)).unwrap();
    watch(rt.handle(), pid, "c", &log);
    sup.stop().unwrap();
    assert_eq!(log.with_prefix("down:"), vec!["down:c:Killed"]);
    assert_eq!(p.counters.terminated(), 0);
}

// s49_timeout_expires_then_kill moved to `tests/sim.rs`
// (`s49_a_shutdown_timeout_kills_at_exactly_the_timeout`): in virtual time the kill lands at
// the timeout exactly, where the wall clock could only bound it (100..900 ms).

#[test]
fn s49_infinity_waits_for_terminate() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let p = Probe::new("slow", &log).terminate_sleep(Duration::from_millis(300));
    let pid = sup.start_child(p.spec().shutdown(Shutdown::Infinity)).unwrap();
    watch(rt.handle(), pid, "slow", &log);
    sup.stop().unwrap();
    assert_eq!(log.with_prefix("down:"), vec!["down:slow:Shutdown"]);
    assert_eq!(log.with_prefix("terminate:"), vec!["terminate:slow:Shutdown"]);
}

#[test]
fn s49_non_trapping_child_dies_at_once_without_terminate() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let p = Probe::new("c", &log).trap(false);
    let pid = sup.start_child(p.spec()).unwrap();
    watch(rt.handle(), pid, "c", &log);
    sup.stop().unwrap();
    assert_eq!(log.with_prefix("down:"), vec!["down:c:Shutdown"]);
    assert_eq!(p.counters.terminated(), 0);
}

#[test]
fn s50_which_children_in_insertion_order() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let ids = ["a", "b", "c", "d"];
    let pids: Vec<Pid> = ids
        .iter()
        .map(|id| sup.start_child(Probe::new(id, &log).spec()).unwrap())
        .collect();
    let sup_spec = DynamicSupervisor::child_spec("inner", DynamicOpts::new());
    let inner = sup.start_child(sup_spec).unwrap();
    let which = sup.which_children().unwrap();
    let got: Vec<(String, Option<Pid>)> = which.iter().map(|c| (c.id.clone(), c.status.pid())).collect();
    let mut want: Vec<(String, Option<Pid>)> = ids.iter().zip(&pids).map(|(i, p)| (i.to_string(), Some(*p))).collect();
    want.push(("inner".into(), Some(inner)));
    assert_eq!(got, want);
    assert_eq!(which[4].kind, ChildType::Supervisor);
    assert_eq!(
        sup.count_children().unwrap(),
        ChildCounts {
            specs: 5,
            active: 5,
            supervisors: 1,
            workers: 4
        }
    );
    sup.stop().unwrap();
}

#[test]
fn s51_stop_returns_ok_and_stops_children() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let p = Probe::new("c", &log);
    sup.start_child(p.spec()).unwrap();
    assert_eq!(sup.stop(), Ok(()));
    assert!(!sup.is_alive());
    assert_eq!(p.counters.terminated(), 1);
    assert!(matches!(sup.stop(), Err(CallError::NoProc)));
    assert!(matches!(
        sup.start_child(p.spec()),
        Err(StartChildError::Supervisor(CallError::NoProc))
    ));
}

#[test]
fn s51_killed_supervisor_takes_its_children_down() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let trapping = Probe::new("trapping", &log);
    let plain = Probe::new("plain", &log).trap(false);
    let a = sup.start_child(trapping.spec()).unwrap();
    let b = sup.start_child(plain.spec()).unwrap();
    watch(rt.handle(), b, "plain", &log);
    kill(sup.pid());
    assert!(eventually(|| !is_alive(a) && !is_alive(b)));
    assert!(eventually(
        || log.with_prefix("terminate:") == vec!["terminate:trapping:Killed"]
    ));
    assert_eq!(log.with_prefix("down:"), vec!["down:plain:Killed"]);
}

#[test]
fn parent_exit_stops_the_supervisor_and_its_children() {
    let rt = rt();
    let log = Log::default();
    // A root started from outside has the runtime as its parent: runtime shutdown stops it.
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let p = Probe::new("c", &log);
    sup.start_child(p.spec()).unwrap();
    let sup_pid = sup.pid();
    watch(rt.handle(), sup_pid, "sup", &log);
    drop(sup);
    rt.shutdown();
    assert_eq!(p.counters.terminated(), 1);
    assert_eq!(log.get(), vec!["start:c", "terminate:c:Shutdown", "down:sup:Shutdown"]);
}
