//! Bad and odd input to supervisors (issue 10): each test backs one row of the "Bad input"
//! table in `docs/semantics.md`. A bad spec or option is a typed error before any process
//! starts; an odd limit does what it says; nothing panics or hangs.

mod common;

use arbor_core::*;
use arbor_supervisor::*;
use common::*;
use std::time::Duration;

fn dyn_sup(rt: &Runtime, opts: DynamicOpts) -> DynamicSupervisor {
    DynamicSupervisor::start(opts.runtime(rt.handle())).unwrap()
}

#[test]
fn bad_empty_child_id() {
    let rt = rt();
    let log = Log::default();
    let spec = Probe::new("", &log).spec();
    let got = Supervisor::start(
        vec![spec.clone()],
        SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()),
    );
    assert!(
        matches!(got, Err(SupervisorStartError::Spec(SpecError::EmptyId))),
        "{:?}",
        got.err()
    );
    let sup = dyn_sup(&rt, DynamicOpts::new());
    assert_eq!(sup.start_child(spec), Err(StartChildError::Spec(SpecError::EmptyId)));
    assert_eq!(rt.process_count(), 1, "only the dynamic supervisor runs");
}

#[test]
fn bad_duplicate_child_ids() {
    let rt = rt();
    let log = Log::default();
    let a = Probe::new("same", &log);
    let b = Probe::new("same", &log);
    let got = Supervisor::start(
        vec![a.spec(), b.spec()],
        SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()),
    );
    assert!(
        matches!(got, Err(SupervisorStartError::Spec(SpecError::DuplicateId(ref id))) if id == "same"),
        "{:?}",
        got.err()
    );
    assert_eq!(
        a.counters.started() + b.counters.started(),
        0,
        "checked before any start"
    );
    // Added later to a running supervisor: AlreadyStarted with the running pid.
    let sup = Supervisor::start(
        vec![a.spec()],
        SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()),
    )
    .unwrap();
    let running = sup.child_pid("same").unwrap().unwrap();
    assert_eq!(sup.start_child(b.spec()), Err(StartChildError::AlreadyStarted(running)));
}

#[test]
fn bad_zero_shutdown_timeout() {
    let rt = rt();
    let log = Log::default();
    let spec = Probe::new("c", &log).spec().shutdown(Shutdown::Timeout(Duration::ZERO));
    let sup = dyn_sup(&rt, DynamicOpts::new());
    assert_eq!(
        sup.start_child(spec),
        Err(StartChildError::Spec(SpecError::InvalidShutdown("c".into())))
    );
}

#[test]
fn bad_zero_max_seconds() {
    let rt = rt();
    let got = DynamicSupervisor::start(DynamicOpts::new().max_seconds(0).runtime(rt.handle()));
    assert!(matches!(
        got,
        Err(SupervisorStartError::Options(OptionsError::ZeroMaxSeconds))
    ));
    let got = Supervisor::start(
        vec![],
        SupervisorOpts::new(Strategy::OneForAll)
            .max_period(Duration::ZERO)
            .runtime(rt.handle()),
    );
    assert!(matches!(
        got,
        Err(SupervisorStartError::Options(OptionsError::ZeroMaxSeconds))
    ));
    assert_eq!(rt.process_count(), 0);
}

#[test]
fn bad_max_children_zero() {
    let rt = rt();
    let log = Log::default();
    let p = Probe::new("c", &log);
    let sup = dyn_sup(&rt, DynamicOpts::new().max_children(0));
    assert_eq!(sup.start_child(p.spec()), Err(StartChildError::MaxChildren));
    assert_eq!(p.counters.started(), 0, "the child never started");
}

#[test]
fn bad_max_restarts_zero_makes_the_first_restart_fatal() {
    let rt = rt();
    let log = Log::default();
    let p = Probe::new("c", &log).trap(false);
    let sup = dyn_sup(&rt, DynamicOpts::new().max_restarts(0));
    let pid = sup.start_child(p.spec()).unwrap();
    exit_probe(pid, ExitReason::custom("crash"));
    assert_eq!(sup.wait_exit(DEADLINE), Some(ExitReason::Shutdown));
    assert_eq!(p.counters.started(), 1, "never restarted");
}

#[test]
fn bad_start_closure_that_panics() {
    let rt = rt();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    let spec = ChildSpec::new("boom", || panic!("the start closure panics"));
    let got = sup.start_child(spec);
    assert!(
        matches!(
            got,
            Err(StartChildError::Start(StartError::Failed(ExitReason::Panic(_))))
        ),
        "{got:?}"
    );
    assert!(sup.is_alive());
    assert_eq!(sup.count_children().unwrap().specs, 0);
}

#[test]
fn bad_start_closure_that_returns_a_dead_pid() {
    let rt = rt();
    let log = Log::default();
    let p = Probe::new("ghost", &log);
    let dead = rt.start::<ProbeServer>(p.clone()).unwrap();
    dead.kill();
    assert!(dead.wait_exit(DEADLINE).is_some());
    let pid = dead.pid();
    let sup = dyn_sup(&rt, DynamicOpts::new().max_restarts(1000));
    let spec = ChildSpec::new("ghost", move || Ok(pid)).restart(Restart::Temporary);
    // The supervisor cannot link to it: it learns of the exit at once (NoProc) and, being
    // temporary, the child is gone; nothing hangs.
    assert_eq!(
        sup.start_child(spec),
        Ok(pid),
        "as OTP: the start's answer, then the exit"
    );
    assert!(eventually(|| sup.count_children().is_ok_and(|c| c.active == 0)));
    assert!(sup.is_alive());
}

#[test]
fn bad_operations_on_a_dead_supervisor() {
    let rt = rt();
    let log = Log::default();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    sup.stop().unwrap();
    let p = Probe::new("c", &log);
    assert_eq!(
        sup.start_child(p.spec()),
        Err(StartChildError::Supervisor(CallError::NoProc))
    );
    assert_eq!(
        sup.terminate_child(sup.pid()),
        Err(ChildError::Supervisor(CallError::NoProc))
    );
    assert_eq!(sup.which_children(), Err(CallError::NoProc));
    assert_eq!(sup.stop(), Err(CallError::NoProc));
}

#[test]
fn bad_terminate_child_unknown_pid() {
    let rt = rt();
    let sup = dyn_sup(&rt, DynamicOpts::new());
    assert_eq!(sup.terminate_child(sup.pid()), Err(ChildError::NotFound));
    let st = Supervisor::start(vec![], SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle())).unwrap();
    assert_eq!(st.terminate_child("nobody"), Err(ChildError::NotFound));
    assert_eq!(st.restart_child("nobody"), Err(ChildError::NotFound));
    assert_eq!(st.delete_child("nobody"), Err(ChildError::NotFound));
}
