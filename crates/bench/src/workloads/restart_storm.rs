//! restart_storm: a DynamicSupervisor whose children each panic several times and are
//! restarted; at the end every child is alive and answers a call. Restarts/s. Raw: n/a.

use super::{rate, runtime, wait_until, Config, Figure, Figures, Workload, DEADLINE};
use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, ReplyTo, ServerRef};
use arbor_supervisor::{ChildSpec, ChildStatus, DynamicOpts, DynamicSupervisor};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub(crate) const WORKLOAD: Workload = Workload {
    name: "restart_storm",
    summary: &[Figure {
        key: "restarts_per_s",
        unit: "/s",
        higher_is_better: true,
    }],
    arbor,
    raw: None,
    na_reason: "supervision has no threads-and-channels equivalent",
    fresh_process: false,
};

fn sizes(cfg: &Config) -> (usize, u32) {
    cfg.size.pick((50, 3), (1_000, 10))
}

/// What every incarnation of every child shares.
struct Shared {
    /// Starts of child `i` so far (its `init` runs).
    starts: Vec<AtomicU32>,
    /// Starts of all children so far.
    total: AtomicU64,
    /// How many times each child crashes before it settles.
    crashes: u32,
}

/// Crashes on its own message until it has been started `crashes + 1` times.
struct Crasher {
    generation: u32,
}

/// Makes the child panic.
struct Crash;

impl GenServer for Crasher {
    type Args = (usize, Arc<Shared>);
    type Info = Crash;
    type Call = ();
    /// This incarnation's generation (1 for the first start).
    type Reply = u32;

    fn init((i, shared): Self::Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        let generation = shared.starts[i].fetch_add(1, Ordering::SeqCst) + 1;
        if generation <= shared.crashes {
            ctx.send_self(Crash);
        }
        shared.total.fetch_add(1, Ordering::SeqCst);
        Ok(Crasher { generation })
    }

    fn handle_info(&mut self, _: Crash, _ctx: &mut Context<'_, Self>) -> Flow {
        panic!("restart_storm: crash of generation {}", self.generation);
    }

    fn handle_call(&mut self, _: (), _from: ReplyTo<u32>, _ctx: &mut Context<'_, Self>) -> CallFlow<u32> {
        CallFlow::Reply(self.generation)
    }
}

fn arbor(cfg: &Config) -> Figures {
    let (children, crashes) = sizes(cfg);
    let rt = runtime(cfg);
    let sup = DynamicSupervisor::start(
        DynamicOpts::new()
            .max_restarts(1_000_000)
            .max_seconds(1)
            .runtime(rt.handle()),
    )
    .expect("start supervisor");
    let shared = Arc::new(Shared {
        starts: (0..children).map(|_| AtomicU32::new(0)).collect(),
        total: AtomicU64::new(0),
        crashes,
    });
    let target = children as u64 * (crashes as u64 + 1);

    let t0 = Instant::now();
    for i in 0..children {
        sup.start_child(ChildSpec::server::<Crasher>(
            format!("crasher-{i}"),
            (i, shared.clone()),
        ))
        .unwrap_or_else(|e| panic!("restart_storm: start_child {i} failed: {e}"));
    }
    wait_until("restart_storm: every restart", DEADLINE, || {
        shared.total.load(Ordering::SeqCst) >= target
    });
    let elapsed = t0.elapsed();

    assert_eq!(
        shared.total.load(Ordering::SeqCst),
        target,
        "restart_storm: total starts"
    );
    let which = sup.which_children().expect("which_children");
    assert_eq!(which.len(), children, "restart_storm: children stored");
    for (i, child) in which.iter().enumerate() {
        let pid = match child.status {
            ChildStatus::Running(pid) => pid,
            other => panic!("restart_storm: child {} is {other}", child.id),
        };
        assert_eq!(
            child.restarts, crashes as u64,
            "restart_storm: restarts of {}",
            child.id
        );
        let server = ServerRef::<Crasher>::from_pid(pid).unwrap_or_else(|| panic!("restart_storm: child {i} is dead"));
        let generation = server
            .call(())
            .unwrap_or_else(|e| panic!("restart_storm: call to {} failed: {e}", child.id));
        assert_eq!(generation, crashes + 1, "restart_storm: generation of {}", child.id);
    }
    let counts = sup.count_children().expect("count_children");
    assert_eq!(counts.active, children, "restart_storm: active children");
    sup.stop().expect("stop supervisor");
    rt.shutdown();

    let restarts = children as u64 * crashes as u64;
    vec![
        ("restarts_per_s", rate(restarts, elapsed)),
        ("restarts", restarts as f64),
        ("elapsed_s", elapsed.as_secs_f64()),
    ]
}
