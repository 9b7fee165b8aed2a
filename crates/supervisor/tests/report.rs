//! Supervisor reports: children with their specs, the exits a supervisor handled (who, why,
//! when, what it did) and the use of its restart intensity.

mod common;

use arbor_core::ExitReason;
use arbor_supervisor::{
    supervisor_report, DynamicOpts, DynamicSupervisor, ExitAction, Restart, Shutdown, Strategy, Supervisor,
    SupervisorKind, SupervisorOpts,
};
use common::*;
use std::time::{Duration, SystemTime};

const T: Duration = Duration::from_secs(5);

#[test]
fn dynamic_report_records_a_crash_and_its_restart() {
    let rt = rt();
    let log = Log::default();
    let sup = DynamicSupervisor::start_link(DynamicOpts::new().runtime(rt.handle())).unwrap();
    let before = SystemTime::now();
    let pid = sup.start_child(Probe::new("a", &log).spec()).unwrap();
    let empty = sup.report(T).unwrap();
    assert_eq!(empty.kind, SupervisorKind::Dynamic);
    assert_eq!(empty.children.len(), 1);
    assert_eq!(empty.children[0].info.id, "a");
    assert_eq!(empty.children[0].shutdown, Shutdown::Timeout(Duration::from_secs(5)));
    assert!(empty.history.is_empty());
    assert_eq!(empty.intensity.used, 0);
    assert_eq!(empty.intensity.max_restarts, 3);

    exit_probe(pid, ExitReason::custom("boom"));
    assert!(eventually(|| sup.report(T).unwrap().history.len() == 1));
    let r = sup.report(T).unwrap();
    let exit = &r.history[0];
    assert_eq!((exit.id.as_str(), exit.pid), ("a", pid));
    assert_eq!(exit.reason, ExitReason::custom("boom"));
    assert_eq!(exit.action, ExitAction::Restarted);
    assert!(exit.at >= before);
    assert_eq!(r.intensity.used, 1);
    assert_eq!(r.children[0].info.restarts, 1);
    assert_ne!(r.children[0].info.status.pid(), Some(pid));
    sup.stop().unwrap();
}

#[test]
fn giving_up_is_recorded_as_such() {
    let rt = rt();
    let log = Log::default();
    let app = Supervisor::start_link(
        vec![DynamicSupervisor::child_spec("dyn", DynamicOpts::new().max_restarts(1))],
        SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()),
    )
    .unwrap();
    let dyn_pid = app.child_pid("dyn").unwrap().unwrap();
    let sup = DynamicSupervisor::from_pid(dyn_pid).unwrap();
    let first = sup.start_child(Probe::new("w", &log).spec()).unwrap();
    exit_probe(first, ExitReason::custom("one"));
    assert!(eventually(|| sup.report(T).is_ok_and(|r| r.history.len() == 1)));
    let second = sup.report(T).unwrap().children[0].info.status.pid().unwrap();
    exit_probe(second, ExitReason::custom("two"));
    // The dynamic supervisor gives up; the root records its exit and restarts it.
    assert!(eventually(|| app.report(T).is_ok_and(|r| r.history.len() == 1)));
    let root = app.report(T).unwrap();
    assert_eq!(root.kind, SupervisorKind::Static);
    assert_eq!(root.strategy, Strategy::OneForOne);
    assert_eq!(root.history[0].id, "dyn");
    assert_eq!(root.history[0].pid, dyn_pid);
    assert_eq!(root.history[0].reason, ExitReason::Shutdown);
    assert_eq!(root.history[0].action, ExitAction::Restarted);
    assert_eq!(root.children[0].info.restarts, 1);
    assert_eq!(root.children[0].shutdown, Shutdown::Infinity);
    app.stop().unwrap();
}

#[test]
fn a_temporary_child_is_recorded_as_not_restarted() {
    let rt = rt();
    let log = Log::default();
    let app = Supervisor::start_link(
        vec![Probe::new("t", &log).spec().restart(Restart::Temporary)],
        SupervisorOpts::new(Strategy::OneForAll).runtime(rt.handle()),
    )
    .unwrap();
    let pid = app.child_pid("t").unwrap().unwrap();
    exit_probe(pid, ExitReason::custom("bye"));
    assert!(eventually(|| app.report(T).is_ok_and(|r| r.history.len() == 1)));
    let r = supervisor_report(app.pid(), T).unwrap().unwrap();
    assert_eq!(r.history[0].action, ExitAction::NotRestarted);
    assert_eq!(r.intensity.used, 0);
    assert!(r.children.is_empty());
    assert_eq!(r.strategy, Strategy::OneForAll);
    app.stop().unwrap();
}

#[test]
fn a_process_that_is_not_a_supervisor_has_no_report() {
    let rt = rt();
    let log = Log::default();
    let sup = DynamicSupervisor::start_link(DynamicOpts::new().runtime(rt.handle())).unwrap();
    let pid = sup.start_child(Probe::new("w", &log).spec()).unwrap();
    assert!(supervisor_report(pid, T).is_none());
    sup.stop().unwrap();
    assert!(supervisor_report(sup.pid(), T).is_none());
}
