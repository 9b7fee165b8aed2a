//! Static Supervisor: S52–S62 of `docs/behaviours.md`, one test (or a few) per item.

mod common;

use arbor_core::*;
use arbor_supervisor::*;
use common::*;
use std::time::Duration;

fn opts(rt: &Runtime, strategy: Strategy) -> SupervisorOpts {
    SupervisorOpts::new(strategy).runtime(rt.handle())
}

fn probes(ids: &[&str], log: &Log) -> Vec<Probe> {
    ids.iter().map(|id| Probe::new(id, log)).collect()
}

fn specs(ps: &[Probe]) -> Vec<ChildSpec> {
    ps.iter().map(Probe::spec).collect()
}

fn pid_of(sup: &Supervisor, id: &str) -> Option<Pid> {
    sup.child_pid(id).unwrap()
}

/// Waits until child `id` runs as a pid other than `old`; returns it.
fn restarted(sup: &Supervisor, id: &str, old: Pid) -> Pid {
    let mut new = None;
    assert!(eventually(|| {
        new = pid_of(sup, id).filter(|p| *p != old);
        new.is_some()
    }));
    new.unwrap()
}

#[test]
fn s52_children_start_in_list_order_before_start_link_returns() {
    let rt = rt();
    let log = Log::default();
    let ps = probes(&["a", "b", "c"], &log);
    let sup = Supervisor::start_link(specs(&ps), opts(&rt, Strategy::OneForOne)).unwrap();
    assert_eq!(log.get(), vec!["start:a", "start:b", "start:c"]);
    assert_eq!(sup.count_children().unwrap().active, 3);
    sup.stop().unwrap();
}

#[test]
fn s52_default_intensity_and_options() {
    let o = SupervisorOpts::new(Strategy::OneForOne);
    let rt = rt();
    let sup = Supervisor::start_link(vec![], o.runtime(rt.handle())).unwrap();
    assert_eq!(sup.count_children().unwrap(), ChildCounts::default());
    sup.stop().unwrap();
    let err = Supervisor::start_link(vec![], opts(&rt, Strategy::OneForAll).max_seconds(0)).unwrap_err();
    assert_eq!(err, SupervisorStartError::Options(OptionsError::ZeroMaxSeconds));
}

#[test]
fn s53_boot_failure_stops_started_children_in_reverse() {
    let rt = rt();
    let log = Log::default();
    let mut ps = probes(&["a", "b"], &log);
    ps.push(Probe::new("c", &log).script([Init::Fail(ExitReason::custom("boom"))]));
    ps.push(Probe::new("d", &log));
    let err = Supervisor::start_link(specs(&ps), opts(&rt, Strategy::OneForOne)).unwrap_err();
    assert_eq!(
        err,
        SupervisorStartError::ChildFailed {
            id: "c".into(),
            error: StartError::Init(ExitReason::custom("boom"))
        }
    );
    // Stopped before start_link returned, in reverse order; d never started.
    assert_eq!(
        log.get(),
        vec!["start:a", "start:b", "terminate:b:Shutdown", "terminate:a:Shutdown"]
    );
    assert_eq!(ps[3].counters.started(), 0);
    assert!(eventually(|| rt.process_count() == 0));
}

#[test]
fn s53_bad_specs_rejected_before_anything_starts() {
    let rt = rt();
    let log = Log::default();
    let ps = probes(&["a", "a"], &log);
    let err = Supervisor::start_link(specs(&ps), opts(&rt, Strategy::OneForOne)).unwrap_err();
    assert_eq!(err, SupervisorStartError::Spec(SpecError::DuplicateId("a".into())));
    let ps2 = probes(&["ok", ""], &log);
    let err = Supervisor::start_link(specs(&ps2), opts(&rt, Strategy::OneForOne)).unwrap_err();
    assert_eq!(err, SupervisorStartError::Spec(SpecError::EmptyId));
    assert!(log.get().is_empty());
    assert_eq!(rt.process_count(), 0);
}

#[test]
fn s53_boot_failure_cleanup_inside_a_worker_on_one_thread() {
    // The inner supervisor boots inside the outer one's handler, on the only worker; its
    // failure cleanup waits for a trapping child's slow terminate, which needs a worker too.
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let log = Log::default();
    let outer = DynamicSupervisor::start_link(DynamicOpts::new().runtime(rt.handle())).unwrap();
    let a = Probe::new("a", &log).terminate_sleep(Duration::from_millis(20));
    let bad = Probe::new("bad", &log).script([Init::Fail(ExitReason::custom("no"))]);
    let inner = Supervisor::child_spec(
        "inner",
        vec![a.spec(), bad.spec()],
        SupervisorOpts::new(Strategy::OneForOne),
    );
    let err = outer.start_child(inner).unwrap_err();
    assert!(
        matches!(
            err,
            StartChildError::Start(StartError::Init(ExitReason::ShutdownWith(_)))
        ),
        "{err:?}"
    );
    assert_eq!(log.get(), vec!["start:a", "terminate:a:Shutdown"]);
    assert_eq!(outer.count_children().unwrap().specs, 0);
    outer.stop().unwrap();
}

#[test]
fn s54_ignored_child_kept_stopped_temporary_dropped() {
    let rt = rt();
    let log = Log::default();
    let a = Probe::new("a", &log);
    let b = Probe::new("b", &log).script([Init::Ignore]);
    let t = Probe::new("t", &log).script([Init::Ignore]);
    let sup = Supervisor::start_link(
        vec![a.spec(), b.spec(), t.spec().restart(Restart::Temporary)],
        opts(&rt, Strategy::OneForOne),
    )
    .unwrap();
    let which = sup.which_children().unwrap();
    let got: Vec<(&str, ChildStatus)> = which.iter().map(|c| (c.id.as_str(), c.status)).collect();
    let a_pid = pid_of(&sup, "a").unwrap();
    assert_eq!(
        got,
        vec![("b", ChildStatus::Stopped), ("a", ChildStatus::Running(a_pid))]
    );
    sup.stop().unwrap();
}

#[test]
fn s55_which_children_most_recent_first() {
    let rt = rt();
    let log = Log::default();
    let ps = probes(&["a", "b", "c"], &log);
    let sup = Supervisor::start_link(specs(&ps), opts(&rt, Strategy::OneForOne)).unwrap();
    let ids: Vec<String> = sup.which_children().unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec!["c", "b", "a"]);
    sup.stop().unwrap();
}

#[test]
fn s56_start_child_appends_with_every_result() {
    let rt = rt();
    let log = Log::default();
    let sup = Supervisor::start_link(specs(&probes(&["a"], &log)), opts(&rt, Strategy::OneForOne)).unwrap();
    let b = Probe::new("b", &log);
    let b_pid = sup.start_child(b.spec()).unwrap().unwrap();
    assert_eq!(sup.start_child(b.spec()), Err(StartChildError::AlreadyStarted(b_pid)));
    let ign = Probe::new("ign", &log).script([Init::Ignore]);
    assert_eq!(sup.start_child(ign.spec()), Ok(None));
    assert_eq!(sup.start_child(ign.spec()), Err(StartChildError::AlreadyPresent));
    let bad = Probe::new("bad", &log).script([Init::Fail(ExitReason::custom("x"))]);
    assert_eq!(
        sup.start_child(bad.spec()),
        Err(StartChildError::Start(StartError::Init(ExitReason::custom("x"))))
    );
    assert_eq!(
        sup.start_child(Probe::new("", &log).spec()),
        Err(StartChildError::Spec(SpecError::EmptyId))
    );
    let ids: Vec<String> = sup.which_children().unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec!["ign", "b", "a"]);
    sup.stop().unwrap();
}

#[test]
fn s57_child_life_cycle_by_id() {
    let rt = rt();
    let log = Log::default();
    let a = Probe::new("a", &log);
    let t = Probe::new("t", &log);
    let sup = Supervisor::start_link(
        vec![a.spec(), t.spec().restart(Restart::Temporary)],
        opts(&rt, Strategy::OneForOne),
    )
    .unwrap();
    assert_eq!(sup.restart_child("a"), Err(ChildError::Running));
    assert_eq!(sup.delete_child("a"), Err(ChildError::Running));
    assert_eq!(sup.terminate_child("a"), Ok(()));
    assert_eq!(sup.terminate_child("a"), Ok(()), "already stopped is fine");
    assert_eq!(sup.terminate_child("nope"), Err(ChildError::NotFound));
    let c = sup.count_children().unwrap();
    assert_eq!((c.specs, c.active), (2, 1));
    let new = sup.restart_child("a").unwrap().unwrap();
    assert_eq!(pid_of(&sup, "a"), Some(new));
    assert_eq!(sup.terminate_child("a"), Ok(()));
    assert_eq!(sup.delete_child("a"), Ok(()));
    assert_eq!(sup.delete_child("a"), Err(ChildError::NotFound));
    assert_eq!(sup.restart_child("a"), Err(ChildError::NotFound));
    // A temporary child's spec goes when it is terminated.
    assert_eq!(sup.terminate_child("t"), Ok(()));
    assert_eq!(sup.count_children().unwrap(), ChildCounts::default());
    assert_eq!((a.counters.started(), a.counters.terminated()), (2, 2));
    assert_eq!((t.counters.started(), t.counters.terminated()), (1, 1));
    sup.stop().unwrap();
}

#[test]
fn s58_restart_types_in_a_static_supervisor() {
    let rt = rt();
    let log = Log::default();
    let p = Probe::new("p", &log);
    let tr = Probe::new("tr", &log);
    let te = Probe::new("te", &log);
    let sup = Supervisor::start_link(
        vec![
            p.spec(),
            tr.spec().restart(Restart::Transient),
            te.spec().restart(Restart::Temporary),
        ],
        opts(&rt, Strategy::OneForOne),
    )
    .unwrap();
    let p_pid = pid_of(&sup, "p").unwrap();
    exit_probe(p_pid, ExitReason::Normal);
    restarted(&sup, "p", p_pid);
    exit_probe(pid_of(&sup, "tr").unwrap(), ExitReason::Normal);
    exit_probe(pid_of(&sup, "te").unwrap(), ExitReason::custom("crash"));
    assert!(eventually(|| {
        let which = sup.which_children().unwrap();
        which.len() == 2 && which.iter().any(|c| c.id == "tr" && c.status == ChildStatus::Stopped)
    }));
    assert_eq!(
        (p.counters.started(), tr.counters.started(), te.counters.started()),
        (2, 1, 1)
    );
    sup.stop().unwrap();
}

fn crash_b(strategy: Strategy, log: &Log) -> (Supervisor, Vec<Probe>, Runtime) {
    let rt = rt();
    let ps = probes(&["a", "b", "c"], log);
    let sup = Supervisor::start_link(specs(&ps), opts(&rt, strategy)).unwrap();
    let b = pid_of(&sup, "b").unwrap();
    log.clear();
    exit_probe(b, ExitReason::custom("crash"));
    restarted(&sup, "b", b);
    (sup, ps, rt)
}

#[test]
fn s59_one_for_one_restarts_only_the_child() {
    let log = Log::default();
    let (sup, ps, _rt) = crash_b(Strategy::OneForOne, &log);
    assert_eq!(log.get(), vec!["terminate:b:Error(\"crash\")", "start:b"]);
    assert_eq!(
        ps.iter().map(|p| p.counters.started()).collect::<Vec<_>>(),
        vec![1, 2, 1]
    );
    sup.stop().unwrap();
}

#[test]
fn s59_one_for_all_stops_others_in_reverse_then_starts_all_in_order() {
    let log = Log::default();
    let (sup, ps, _rt) = crash_b(Strategy::OneForAll, &log);
    assert!(eventually(|| log.get().len() == 6));
    assert_eq!(
        log.get(),
        vec![
            "terminate:b:Error(\"crash\")",
            "terminate:c:Shutdown",
            "terminate:a:Shutdown",
            "start:a",
            "start:b",
            "start:c"
        ]
    );
    assert_eq!(
        ps.iter().map(|p| p.counters.started()).collect::<Vec<_>>(),
        vec![2, 2, 2]
    );
    let restarts: Vec<u64> = sup.which_children().unwrap().iter().map(|c| c.restarts).collect();
    assert_eq!(restarts, vec![1, 1, 1]);
    sup.stop().unwrap();
}

#[test]
fn s59_rest_for_one_restarts_the_child_and_those_after_it() {
    let log = Log::default();
    let (sup, ps, _rt) = crash_b(Strategy::RestForOne, &log);
    assert!(eventually(|| log.get().len() == 4));
    assert_eq!(
        log.get(),
        vec![
            "terminate:b:Error(\"crash\")",
            "terminate:c:Shutdown",
            "start:b",
            "start:c"
        ]
    );
    assert_eq!(
        ps.iter().map(|p| p.counters.started()).collect::<Vec<_>>(),
        vec![1, 2, 2]
    );
    sup.stop().unwrap();
}

#[test]
fn s59_temporary_bystanders_are_not_restarted() {
    let rt = rt();
    let log = Log::default();
    let a = Probe::new("a", &log);
    let t = Probe::new("t", &log);
    let sup = Supervisor::start_link(
        vec![a.spec(), t.spec().restart(Restart::Temporary)],
        opts(&rt, Strategy::OneForAll),
    )
    .unwrap();
    let a_pid = pid_of(&sup, "a").unwrap();
    exit_probe(a_pid, ExitReason::custom("crash"));
    restarted(&sup, "a", a_pid);
    let ids: Vec<String> = sup.which_children().unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec!["a"]);
    assert_eq!((t.counters.started(), t.counters.terminated()), (1, 1));
    sup.stop().unwrap();
}

#[test]
fn s59_each_strategy_event_counts_once() {
    let rt = rt();
    let log = Log::default();
    let ps = probes(&["a", "b", "c"], &log);
    let sup = Supervisor::start_link(specs(&ps), opts(&rt, Strategy::OneForAll).max_restarts(1)).unwrap();
    let b = pid_of(&sup, "b").unwrap();
    exit_probe(b, ExitReason::custom("crash"));
    restarted(&sup, "b", b);
    assert!(eventually(|| ps.iter().all(|p| p.counters.started() == 2)));
    assert!(sup.is_alive(), "three children restarted = one restart");
    sup.stop().unwrap();
}

#[test]
fn s60_intensity_is_shared_across_children() {
    let rt = rt();
    let log = Log::default();
    let ps = probes(&["a", "b", "c"], &log);
    let sup = Supervisor::start_link(specs(&ps), opts(&rt, Strategy::OneForOne).max_restarts(2)).unwrap();
    let a = pid_of(&sup, "a").unwrap();
    exit_probe(a, ExitReason::custom("crash"));
    let a = restarted(&sup, "a", a);
    let b = pid_of(&sup, "b").unwrap();
    exit_probe(b, ExitReason::custom("crash"));
    restarted(&sup, "b", b);
    log.clear();
    exit_probe(a, ExitReason::custom("crash"));
    assert_eq!(sup.wait_exit(DEADLINE), Some(ExitReason::Shutdown));
    // The rest were stopped in reverse start order.
    assert_eq!(
        log.get(),
        vec![
            "terminate:a:Error(\"crash\")",
            "terminate:c:Shutdown",
            "terminate:b:Shutdown"
        ]
    );
}

#[test]
fn s60_zero_max_restarts_first_crash_is_fatal() {
    let rt = rt();
    let log = Log::default();
    let ps = probes(&["a"], &log);
    let sup = Supervisor::start_link(specs(&ps), opts(&rt, Strategy::OneForOne).max_restarts(0)).unwrap();
    exit_probe(pid_of(&sup, "a").unwrap(), ExitReason::custom("crash"));
    assert_eq!(sup.wait_exit(DEADLINE), Some(ExitReason::Shutdown));
    assert_eq!(ps[0].counters.started(), 1);
}

#[test]
fn s60_failed_restart_retries_then_succeeds() {
    let rt = rt();
    let log = Log::default();
    let fail = || Init::Fail(ExitReason::custom("not yet"));
    let a = Probe::new("a", &log).script([Init::Ok, fail(), fail(), Init::Ok]);
    let b = Probe::new("b", &log);
    let sup = Supervisor::start_link(
        vec![a.spec(), b.spec()],
        opts(&rt, Strategy::RestForOne).max_restarts(5),
    )
    .unwrap();
    let a_pid = pid_of(&sup, "a").unwrap();
    exit_probe(a_pid, ExitReason::custom("crash"));
    restarted(&sup, "a", a_pid);
    assert!(eventually(|| pid_of(&sup, "b").is_some()));
    assert_eq!((a.counters.started(), b.counters.started()), (4, 2));
    sup.stop().unwrap();
}

#[test]
fn s61_shutdown_is_sequential_in_reverse_with_per_child_timeouts() {
    let rt = rt();
    let log = Log::default();
    let a = Probe::new("a", &log).terminate_sleep(Duration::from_millis(50));
    let b = Probe::new("b", &log).terminate_sleep(Duration::from_millis(50));
    let c = Probe::new("c", &log).terminate_sleep(Duration::from_millis(1000));
    let sup = Supervisor::start_link(
        vec![
            a.spec(),
            b.spec(),
            c.spec().shutdown(Shutdown::Timeout(Duration::from_millis(150))),
        ],
        opts(&rt, Strategy::OneForOne),
    )
    .unwrap();
    for id in ["a", "b", "c"] {
        watch(rt.handle(), pid_of(&sup, id).unwrap(), id, &log);
    }
    sup.stop().unwrap();
    assert_eq!(
        log.with_prefix("down:"),
        vec!["down:c:Killed", "down:b:Shutdown", "down:a:Shutdown"]
    );
    // The timing (150 ms for c, then b's 50 ms, then a's 50 ms: sequential, not parallel)
    // is asserted exactly in virtual time, in `tests/sim.rs`
    // (`s61_a_static_supervisor_stops_in_reverse_order_killing_at_the_timeout`); a
    // wall-clock bound here only measured the machine's load.
}

#[test]
fn s61_brutal_kill_in_a_static_supervisor() {
    let rt = rt();
    let log = Log::default();
    let a = Probe::new("a", &log);
    let sup = Supervisor::start_link(
        vec![a.spec().shutdown(Shutdown::BrutalKill)],
        opts(&rt, Strategy::OneForOne),
    )
    .unwrap();
    watch(rt.handle(), pid_of(&sup, "a").unwrap(), "a", &log);
    assert_eq!(sup.stop(), Ok(()));
    assert_eq!(log.with_prefix("down:"), vec!["down:a:Killed"]);
    assert_eq!(a.counters.terminated(), 0);
}

#[test]
fn s61_calls_during_a_restart_wait_for_it() {
    // A terminate_child arriving while a one_for_all restart is stopping children is handled
    // after the restart, as if the restart were atomic.
    let rt = rt();
    let log = Log::default();
    let a = Probe::new("a", &log).terminate_sleep(Duration::from_millis(100));
    let b = Probe::new("b", &log);
    let sup = Supervisor::start_link(vec![a.spec(), b.spec()], opts(&rt, Strategy::OneForAll)).unwrap();
    let b_pid = pid_of(&sup, "b").unwrap();
    exit_probe(b_pid, ExitReason::custom("crash"));
    // The restart has begun once the supervisor is stopping `a` (its terminate sleeps
    // 100 ms): b's own terminate having run is not enough, the supervisor may not have
    // heard of b's exit yet.
    assert!(eventually(|| a.counters.terminating() == 1));
    assert_eq!(sup.terminate_child("a"), Ok(()));
    assert!(eventually(|| log.count("start:b") == 2));
    assert_eq!(
        log.with_prefix("terminate:a"),
        vec!["terminate:a:Shutdown", "terminate:a:Shutdown"]
    );
    assert_eq!(sup.which_children().unwrap()[1].status, ChildStatus::Stopped);
    sup.stop().unwrap();
}

#[test]
fn s62_spec_defaults() {
    let w = ChildSpec::new("w", || Err(StartError::NoRuntime));
    assert_eq!(w.get_restart(), Restart::Permanent);
    assert_eq!(w.get_shutdown(), Shutdown::Timeout(Duration::from_secs(5)));
    assert_eq!(w.get_child_type(), ChildType::Worker);
    let s = ChildSpec::supervisor("s", || Err(StartError::NoRuntime));
    assert_eq!(s.get_shutdown(), Shutdown::Infinity);
    assert_eq!(s.get_child_type(), ChildType::Supervisor);
    let explicit = ChildSpec::new("e", || Err(StartError::NoRuntime))
        .shutdown(Shutdown::BrutalKill)
        .child_type(ChildType::Supervisor);
    assert_eq!(explicit.get_shutdown(), Shutdown::BrutalKill);
    assert_eq!(
        DynamicSupervisor::child_spec("d", DynamicOpts::new()).get_shutdown(),
        Shutdown::Infinity
    );
}
