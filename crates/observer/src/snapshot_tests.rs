//! The data layer without HTTP: what a snapshot holds of a small supervised system.

use super::*;
use arbor_core::{Context, ExitReason, Flow, GenServer, Runtime, ServerRef};
use arbor_supervisor::{ChildSpec, DynamicOpts, DynamicSupervisor, Strategy, Supervisor, SupervisorOpts};

struct Job;

impl GenServer for Job {
    type Args = ();
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init(_: (), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Job)
    }
    fn handle_info(&mut self, _: (), _: &mut Context<'_, Self>) -> Flow {
        Flow::Stop(ExitReason::custom("asked to fail"))
    }
}

fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn a_snapshot_holds_the_tree_the_merged_history_and_busiest_processes_first() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let app = Supervisor::start_link(
        vec![
            DynamicSupervisor::child_spec("a", DynamicOpts::new()),
            DynamicSupervisor::child_spec("b", DynamicOpts::new()),
        ],
        SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()),
    )
    .unwrap();
    let sup = |id| DynamicSupervisor::from_pid(app.child_pid(id).unwrap().unwrap()).unwrap();
    let (a, b) = (sup("a"), sup("b"));
    let ja = a.start_child(ChildSpec::server::<Job>("ja", ())).unwrap();
    let jb = b.start_child(ChildSpec::server::<Job>("jb", ())).unwrap();
    // A second, unsupervised tree root: a lone dynamic supervisor.
    let lone = DynamicSupervisor::start(DynamicOpts::new().runtime(rt.handle())).unwrap();

    ServerRef::<Job>::from_pid(ja).unwrap().send(()).unwrap();
    assert!(eventually(
        || a.report(Duration::from_secs(1)).unwrap().history.len() == 1
    ));
    ServerRef::<Job>::from_pid(jb).unwrap().send(()).unwrap();
    assert!(eventually(
        || b.report(Duration::from_secs(1)).unwrap().history.len() == 1
    ));

    let progress = Progress::new(Duration::from_secs(60));
    let s = Snapshot::collect(rt.handle(), &Limits::default(), &[], &progress);
    assert_eq!(s.stats.processes, rt.process_count());
    assert_eq!(s.processes.len(), rt.process_count());
    assert_eq!(s.processes_omitted, 0);
    // Roots in start order: the application, then the lone supervisor.
    assert_eq!(s.trees.len(), 2);
    assert_eq!(s.trees[0].pid, Some(app.pid()));
    assert_eq!(s.trees[1].pid, Some(lone.pid()));
    assert_eq!(s.trees[1].supervisor.as_ref().unwrap().kind, "dynamic");
    let ids: Vec<_> = s.trees[0].children.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    for c in &s.trees[0].children {
        assert_eq!(c.kind, "supervisor");
        assert_eq!(c.shutdown, "infinity");
        assert_eq!(c.children.len(), 1);
        assert_eq!(c.children[0].restarts, 1);
        assert_eq!(c.supervisor.as_ref().unwrap().intensity_used, 1);
    }
    // Both exits, newest first, each with its supervisor.
    assert_eq!(s.restarts.len(), 2);
    assert_eq!(
        (s.restarts[0].exit.id.as_str(), s.restarts[0].supervisor),
        ("jb", b.pid())
    );
    assert_eq!(
        (s.restarts[1].exit.id.as_str(), s.restarts[1].supervisor),
        ("ja", a.pid())
    );
    assert!(s.restarts[0].exit.at >= s.restarts[1].exit.at);
    assert!(s.stuck.is_empty());

    // The limit keeps the busiest: a process with mail waiting comes first.
    let limits = Limits {
        max_processes: 2,
        max_restarts: 1,
        ..Limits::default()
    };
    let s = Snapshot::collect(rt.handle(), &limits, &[], &progress);
    assert_eq!(s.processes.len(), 2);
    assert_eq!(s.processes_omitted, rt.process_count() - 2);
    assert_eq!(s.restarts.len(), 1);
    assert_eq!(s.restarts[0].exit.id, "jb");
    let sorted = s
        .processes
        .windows(2)
        .all(|w| (w[0].mailbox_len, w[0].messages_handled) >= (w[1].mailbox_len, w[1].messages_handled));
    assert!(sorted);
}
