//! A supervision tree of static and dynamic supervisors, with crashes injected at each
//! level, printed before and after.
//!
//! ```text
//! root (Supervisor, one_for_one)
//! ├── "config"    worker
//! ├── "pipeline"  Supervisor, rest_for_one
//! │   ├── "source"  worker
//! │   ├── "parser"  worker
//! │   └── "sink"    worker
//! └── "jobs"      DynamicSupervisor (3 restarts in 5 s)
//!     └── "job-1" .. "job-3"  workers, started on demand
//! ```
//!
//! `cargo run --example supervision_tree` prints the tree, then:
//! 1. crashes "config": one_for_one restarts it alone;
//! 2. crashes "parser": rest_for_one restarts it and "sink" (started after it), not "source";
//! 3. kills "job-2": the DynamicSupervisor restarts it;
//! 4. kills jobs one after another: the 4th restart within 5 s (job-2's counts) is past the
//!    limit of 3, so the DynamicSupervisor gives up and exits with `Shutdown`; the root
//!    restarts it, empty (a dynamic supervisor's children are not remembered), and a new job
//!    is started under it;
//!
//! and prints the tree again (restart counts and new pids show what happened), then shuts
//! the runtime down. Every wait has a deadline, so the program always ends.

use arbor::prelude::*;
use arbor::supervisor::{
    render_tree, ChildSpec, DynamicOpts, DynamicSupervisor, Restart, Strategy, Supervisor, SupervisorOpts,
};
use std::time::{Duration, Instant};

/// A worker that does nothing but crash when told to.
struct Worker;

/// The bug we inject: the worker panics on it.
struct Crash;

impl GenServer for Worker {
    type Args = ();
    type Info = Crash;
    type Call = ();
    type Reply = ();

    fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Worker)
    }

    fn handle_info(&mut self, Crash: Crash, ctx: &mut Context<'_, Self>) -> Flow {
        panic!("worker {} crashed (injected)", ctx.pid());
    }
}

/// Waits up to 5 s for `done`, checking between yields; panics past the deadline.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::yield_now();
    }
}

/// The pid of the child `id` of the static supervisor `sup`.
fn child(sup: &Supervisor, id: &str) -> Pid {
    sup.child_pid(id)
        .expect("supervisor answers")
        .unwrap_or_else(|| panic!("{id} is running"))
}

fn pipeline(root: &Supervisor) -> Supervisor {
    Supervisor::from_pid(child(root, "pipeline")).expect("a static supervisor")
}

fn jobs(root: &Supervisor) -> DynamicSupervisor {
    DynamicSupervisor::from_pid(child(root, "jobs")).expect("a dynamic supervisor")
}

/// Crashes the worker `pid` and waits until `sup` runs a new pid under `id`.
fn crash_and_wait(sup: &Supervisor, id: &str) {
    let old = child(sup, id);
    ServerRef::<Worker>::from_pid(old).expect("a worker").send(Crash).ok();
    wait_until(&format!("{id} restarted"), || {
        sup.child_pid(id).ok().flatten().is_some_and(|p| p != old)
    });
}

fn main() {
    let rt = Runtime::new().expect("runtime");
    let worker = |id: &str| ChildSpec::server::<Worker>(id, ());
    let pipeline_children = vec![worker("source"), worker("parser"), worker("sink")];
    let root = Supervisor::start_link(
        vec![
            worker("config"),
            Supervisor::child_spec("pipeline", pipeline_children, SupervisorOpts::new(Strategy::RestForOne)),
            DynamicSupervisor::child_spec("jobs", DynamicOpts::new().max_restarts(3).max_seconds(5)),
        ],
        SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()),
    )
    .expect("the tree starts");
    for n in 1..=3 {
        jobs(&root)
            .start_child(worker(&format!("job-{n}")))
            .expect("job starts");
    }
    println!("before:\n{}", render_tree(root.pid()));

    println!("1. crash \"config\" (one_for_one: only it restarts)");
    crash_and_wait(&root, "config");

    println!("2. crash \"parser\" (rest_for_one: it and \"sink\" restart, \"source\" stays)");
    let pipe = pipeline(&root);
    let (source, sink) = (child(&pipe, "source"), child(&pipe, "sink"));
    crash_and_wait(&pipe, "parser");
    wait_until("sink restarted", || {
        pipe.child_pid("sink").ok().flatten().is_some_and(|p| p != sink)
    });
    assert_eq!(child(&pipe, "source"), source, "source is untouched");

    println!("3. kill \"job-2\" (the DynamicSupervisor restarts it)");
    let sup = jobs(&root);
    let job2 = sup.which_children().expect("jobs answers")[1].clone();
    arbor::kill(job2.status.pid().expect("job-2 runs"));
    wait_until("job-2 restarted", || {
        sup.which_children()
            .is_ok_and(|c| c[1].restarts == job2.restarts + 1 && c[1].status.pid().is_some())
    });

    println!("4. kill jobs until \"jobs\" passes 3 restarts in 5 s and gives up; the root restarts it");
    let old_jobs = sup.pid();
    let mut kills = 0;
    while sup.is_alive() {
        let Ok(children) = sup.which_children() else { break };
        let Some(pid) = children.iter().find_map(|c| c.status.pid()) else {
            break;
        };
        arbor::kill(pid);
        kills += 1;
        wait_until("the job's exit is handled", || {
            !sup.is_alive()
                || sup
                    .which_children()
                    .is_ok_and(|c| c.iter().all(|c| c.status.pid() != Some(pid)))
        });
    }
    assert_eq!(sup.wait_exit(Duration::from_secs(5)), Some(ExitReason::Shutdown));
    println!("   \"jobs\" exited with Shutdown after {kills} kills");
    wait_until("jobs restarted by the root", || {
        root.child_pid("jobs").ok().flatten().is_some_and(|p| p != old_jobs)
    });
    let restarted = jobs(&root);
    restarted
        .start_child(worker("job-4").restart(Restart::Transient))
        .expect("the new jobs supervisor takes work");

    println!("after:\n{}", render_tree(root.pid()));
    rt.shutdown();
    println!("shut down cleanly");
}
