//! Supervision trees: supervisors as children, nested stops, runtime shutdown, and the
//! printable tree.

mod common;

use arbor_core::*;
use arbor_supervisor::*;
use common::*;
use std::time::Duration;

struct Tree {
    rt: Runtime,
    root: Supervisor,
    log: Log,
    probes: Vec<Probe>,
}

/// root (one_for_one) = [a, mid (rest_for_one) = [b, jobs (dynamic) = [c1, c2]], d]
fn tree() -> Tree {
    let rt = rt();
    let log = Log::default();
    let probes: Vec<Probe> = ["a", "b", "c1", "c2", "d"]
        .iter()
        .map(|id| Probe::new(id, &log))
        .collect();
    let mid = Supervisor::child_spec(
        "mid",
        vec![
            probes[1].spec(),
            DynamicSupervisor::child_spec("jobs", DynamicOpts::new()),
        ],
        SupervisorOpts::new(Strategy::RestForOne),
    );
    let root = Supervisor::start_link(
        vec![probes[0].spec(), mid, probes[4].spec()],
        SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()),
    )
    .unwrap();
    let jobs = jobs(&root);
    jobs.start_child(probes[2].spec()).unwrap();
    jobs.start_child(probes[3].spec()).unwrap();
    Tree { rt, root, log, probes }
}

fn mid(root: &Supervisor) -> Supervisor {
    Supervisor::from_pid(root.child_pid("mid").unwrap().unwrap()).unwrap()
}

fn jobs(root: &Supervisor) -> DynamicSupervisor {
    DynamicSupervisor::from_pid(mid(root).child_pid("jobs").unwrap().unwrap()).unwrap()
}

fn watch_all(t: &Tree) {
    let mid = mid(&t.root);
    let jobs = jobs(&t.root);
    let h = t.rt.handle();
    for id in ["a", "mid", "d"] {
        watch(h, t.root.child_pid(id).unwrap().unwrap(), id, &t.log);
    }
    for id in ["b", "jobs"] {
        watch(h, mid.child_pid(id).unwrap().unwrap(), id, &t.log);
    }
    for (c, id) in jobs.which_children().unwrap().iter().zip(["c1", "c2"]) {
        watch(h, c.status.pid().unwrap(), id, &t.log);
    }
}

fn downs(log: &Log) -> Vec<String> {
    log.with_prefix("down:")
        .into_iter()
        .map(|s| s.trim_start_matches("down:").split(':').next().unwrap().to_string())
        .collect()
}

#[test]
fn stopping_the_root_stops_the_tree_deepest_last_started_first() {
    let t = tree();
    watch_all(&t);
    t.root.stop().unwrap();
    let order = downs(&t.log);
    assert_eq!(order.len(), 7, "{order:?}");
    assert_eq!(order[0], "d");
    // The dynamic supervisor stops its children in parallel: c1 and c2 in either order.
    let mut cs = order[1..3].to_vec();
    cs.sort();
    assert_eq!(cs, vec!["c1", "c2"]);
    assert_eq!(&order[3..], &["jobs", "b", "mid", "a"]);
    for p in &t.probes {
        assert_eq!((p.counters.started(), p.counters.terminated()), (1, 1), "{}", p.id);
    }
    assert!(eventually(|| t.rt.process_count() == 0));
}

#[test]
fn runtime_shutdown_stops_every_tree() {
    let t = tree();
    let log2 = Log::default();
    let other = DynamicSupervisor::start_link(DynamicOpts::new().runtime(t.rt.handle())).unwrap();
    let e = Probe::new("e", &log2);
    other.start_child(e.spec()).unwrap();
    let Tree { rt, probes, .. } = t;
    rt.shutdown();
    for p in probes.iter().chain([&e]) {
        assert_eq!((p.counters.started(), p.counters.terminated()), (1, 1), "{}", p.id);
    }
}

#[test]
fn a_child_supervisor_past_its_intensity_is_restarted_by_its_parent() {
    let t = tree();
    let jobs_before = jobs(&t.root);
    let mid_before = mid(&t.root);
    let b_before = mid_before.child_pid("b").unwrap().unwrap();
    let c1 = jobs_before.which_children().unwrap()[0].status.pid().unwrap();
    // Four crashes of one job exceed the dynamic supervisor's 3 in 5 s.
    let mut pid = c1;
    for _ in 0..4 {
        exit_probe(pid, ExitReason::custom("crash"));
        let mut next = None;
        let moved = eventually(|| {
            next = jobs_before
                .which_children()
                .ok()
                .and_then(|c| c.first().and_then(|i| i.status.pid()))
                .filter(|p| *p != pid);
            next.is_some() || !jobs_before.is_alive()
        });
        assert!(moved);
        if let Some(n) = next {
            pid = n;
        }
    }
    assert_eq!(jobs_before.wait_exit(DEADLINE), Some(ExitReason::Shutdown));
    // mid (rest_for_one) restarts jobs, the last child; b is untouched; root untouched.
    let mut jobs_after = None;
    assert!(eventually(|| {
        jobs_after = mid_before
            .child_pid("jobs")
            .ok()
            .flatten()
            .filter(|p| *p != jobs_before.pid());
        jobs_after.is_some()
    }));
    assert_eq!(mid_before.child_pid("b").unwrap(), Some(b_before));
    assert_eq!(mid(&t.root), mid_before);
    let jobs_after = DynamicSupervisor::from_pid(jobs_after.unwrap()).unwrap();
    assert_eq!(jobs_after.count_children().unwrap(), ChildCounts::default());
    t.root.stop().unwrap();
}

#[test]
fn render_tree_shows_ids_pids_restarts_and_status() {
    let t = tree();
    let a = t.root.child_pid("a").unwrap().unwrap();
    exit_probe(a, ExitReason::custom("crash"));
    let mut a2 = None;
    assert!(eventually(|| {
        a2 = t.root.child_pid("a").unwrap().filter(|p| *p != a);
        a2.is_some()
    }));
    t.root.terminate_child("d").unwrap();
    let text = render_tree(t.root.pid());
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "{text}");
    assert!(lines[0].starts_with(&format!("root {} supervisor running", t.root.pid())));
    assert_eq!(lines[1], format!("├── \"a\" {} worker running restarts=1", a2.unwrap()));
    assert!(lines[2].starts_with("├── \"mid\" ") && lines[2].contains(" supervisor running restarts=0"));
    assert!(lines[3].starts_with("│   ├── \"b\" "));
    assert!(lines[4].starts_with("│   └── \"jobs\" ") && lines[4].contains("dynamic supervisor running"));
    assert!(lines[5].starts_with("│       ├── \"c1\" "));
    assert!(lines[6].starts_with("│       └── \"c2\" "));
    assert_eq!(lines[7], "└── \"d\" undefined worker restarts=0");
    let tree = supervision_tree(t.root.pid()).unwrap();
    assert_eq!(tree.children[1].children[1].supervisor, Some(SupervisorKind::Dynamic));
    assert_eq!(
        render_tree(a2.unwrap()),
        format!("{} (not a running supervisor)\n", a2.unwrap())
    );
    t.root.stop().unwrap();
}

#[test]
fn trees_of_any_depth_start_and_stop() {
    let rt = rt();
    let log = Log::default();
    let leaf = Probe::new("leaf", &log).terminate_sleep(Duration::from_millis(1));
    let mut spec = leaf.spec();
    for depth in 0..20 {
        spec = Supervisor::child_spec(
            format!("level{depth}"),
            vec![spec],
            SupervisorOpts::new(Strategy::OneForOne),
        );
    }
    let root = Supervisor::start_link(
        vec![spec],
        SupervisorOpts::new(Strategy::OneForAll).runtime(rt.handle()),
    )
    .unwrap();
    assert_eq!(render_tree(root.pid()).lines().count(), 22);
    root.stop().unwrap();
    assert_eq!((leaf.counters.started(), leaf.counters.terminated()), (1, 1));
    assert!(eventually(|| rt.process_count() == 0));
}
