//! Model-based test of supervisor decisions (issue 10): random exit sequences, per restart
//! type and strategy, against a model of the restart matrix (S44, S59) and of the sliding
//! intensity window (S46, S60). Time is an input: the supervisor reads a `ManualClock` that
//! the test moves, and nothing sleeps.
//!
//! After each step the test waits (with a deadline) until the supervisor shows exactly the
//! state the model predicts: which children are kept, which run, how many times each has
//! started (counted by the child's `init`), and whether the supervisor is still alive.

mod common;

use arbor_core::*;
use arbor_supervisor::{
    ChildInfo, ChildSpec, ChildStatus, DynamicOpts, DynamicSupervisor, ManualClock, Restart, Shutdown,
    Strategy as Plan, Supervisor, SupervisorOpts,
};
use common::*;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Static(Plan),
    Dynamic,
}

#[derive(Clone, Debug)]
enum Op {
    /// Moves the supervisor's clock forward.
    Advance(u64),
    /// Child `i` exits with reason number `r` (see `reason`).
    Exit(usize, u8),
}

fn reason(r: u8) -> ExitReason {
    match r {
        0 => ExitReason::Normal,
        1 => ExitReason::Shutdown,
        2 => ExitReason::shutdown_with("model"),
        3 => ExitReason::Killed,
        _ => ExitReason::custom("crash"),
    }
}

/// The restart matrix, written out independently of `Restart::restarts_after`.
fn restarts(restart: Restart, r: u8) -> bool {
    match restart {
        Restart::Permanent => true,
        Restart::Transient => r >= 3,
        Restart::Temporary => false,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Kid {
    present: bool,
    running: bool,
    starts: usize,
}

struct Model {
    kind: Kind,
    restart: Vec<Restart>,
    kids: Vec<Kid>,
    /// Restart times (ms) inside the window.
    history: VecDeque<u64>,
    max_restarts: usize,
    window_ms: u64,
    now_ms: u64,
    alive: bool,
}

impl Model {
    fn exit(&mut self, i: usize, r: u8) {
        if !self.alive || !self.kids[i].present || !self.kids[i].running {
            return;
        }
        let restart = self.restart[i];
        if !restarts(restart, r) {
            self.kids[i].running = false;
            if restart == Restart::Temporary || matches!(self.kind, Kind::Dynamic) {
                self.kids[i].present = false;
            }
            return;
        }
        self.kids[i].running = false;
        // The window is inclusive: a restart exactly `window` ago still counts.
        let now = self.now_ms;
        self.history
            .retain(|t| now < self.window_ms || *t >= now - self.window_ms);
        self.history.push_back(now);
        if self.history.len() > self.max_restarts {
            self.alive = false;
            for k in &mut self.kids {
                k.running = false;
            }
            return;
        }
        let group: Vec<usize> = match self.kind {
            Kind::Dynamic | Kind::Static(Plan::OneForOne) => vec![i],
            Kind::Static(Plan::OneForAll) => (0..self.kids.len()).collect(),
            Kind::Static(Plan::RestForOne) => (i..self.kids.len()).collect(),
        };
        for &j in &group {
            if j != i && self.kids[j].present && self.kids[j].running {
                self.kids[j].running = false;
                if self.restart[j] == Restart::Temporary {
                    self.kids[j].present = false;
                }
            }
        }
        for &j in &group {
            if self.kids[j].present && !self.kids[j].running {
                self.kids[j].running = true;
                self.kids[j].starts += 1;
            }
        }
    }
}

/// The supervisor under test, static or dynamic.
enum Sup {
    Static(Supervisor),
    Dynamic(DynamicSupervisor),
}

impl Sup {
    fn children(&self) -> Option<Vec<ChildInfo>> {
        match self {
            Sup::Static(s) => s.which_children().ok(),
            Sup::Dynamic(s) => s.which_children().ok(),
        }
    }
    fn wait_exit(&self) -> Option<ExitReason> {
        match self {
            Sup::Static(s) => s.wait_exit(DEADLINE),
            Sup::Dynamic(s) => s.wait_exit(DEADLINE),
        }
    }
}

/// What the supervisor shows, in the model's terms.
fn observe(sup: &Sup, probes: &[Probe]) -> Option<Vec<Kid>> {
    let infos = sup.children()?;
    Some(
        probes
            .iter()
            .map(|p| {
                let info = infos.iter().find(|c| c.id == p.id);
                Kid {
                    present: info.is_some(),
                    running: info.is_some_and(|c| matches!(c.status, ChildStatus::Running(pid) if is_alive(pid))),
                    starts: p.counters.started(),
                }
            })
            .collect(),
    )
}

fn pid_of(sup: &Sup, id: &str) -> Option<Pid> {
    sup.children()?.into_iter().find(|c| c.id == id)?.status.pid()
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Static(Plan::OneForOne)),
        Just(Kind::Static(Plan::OneForAll)),
        Just(Kind::Static(Plan::RestForOne)),
        Just(Kind::Dynamic),
    ]
}

fn restart_type() -> impl Strategy<Value = Restart> {
    prop_oneof![
        Just(Restart::Permanent),
        Just(Restart::Transient),
        Just(Restart::Temporary)
    ]
}

fn op(children: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..2500u64).prop_map(Op::Advance),
        3 => (0..children, 0..5u8).prop_map(|(i, r)| Op::Exit(i, r)),
    ]
}

fn case() -> impl Strategy<Value = (Kind, Vec<Restart>, usize, u64, Vec<Op>)> {
    (
        kind(),
        proptest::collection::vec(restart_type(), 1..=4),
        0..4usize,
        1..=5u64,
    )
        .prop_flat_map(|(kind, restarts, max_restarts, window_s)| {
            let n = restarts.len();
            (
                Just(kind),
                Just(restarts),
                Just(max_restarts),
                Just(window_s),
                proptest::collection::vec(op(n), 1..25),
            )
        })
}

proptest! {
    // Default case count; shrinking capped, as each failing step waits out its deadline.
    #![proptest_config(ProptestConfig { max_shrink_iters: 32, ..ProptestConfig::default() })]

    #[test]
    fn supervisor_decisions_match_the_restart_matrix_and_window(
        (kind, restart, max_restarts, window_s, ops) in case()
    ) {
        let rt = rt();
        let log = Log::default();
        let clock = ManualClock::new();
        let probes: Vec<Probe> = (0..restart.len()).map(|i| Probe::new(&format!("c{i}"), &log)).collect();
        let specs: Vec<ChildSpec> = probes
            .iter()
            .zip(&restart)
            .map(|(p, r)| p.spec().restart(*r).shutdown(Shutdown::Timeout(DEADLINE)))
            .collect();
        let sup = match kind {
            Kind::Static(strategy) => Sup::Static(
                Supervisor::start(
                    specs,
                    SupervisorOpts::new(strategy)
                        .max_restarts(max_restarts)
                        .max_seconds(window_s)
                        .clock(clock.clone())
                        .runtime(rt.handle()),
                )
                .unwrap(),
            ),
            Kind::Dynamic => {
                let sup = DynamicSupervisor::start(
                    DynamicOpts::new()
                        .max_restarts(max_restarts)
                        .max_seconds(window_s)
                        .clock(clock.clone())
                        .runtime(rt.handle()),
                )
                .unwrap();
                for spec in specs {
                    sup.start_child(spec).unwrap();
                }
                Sup::Dynamic(sup)
            }
        };
        let mut model = Model {
            kind,
            restart: restart.clone(),
            kids: vec![Kid { present: true, running: true, starts: 1 }; restart.len()],
            history: VecDeque::new(),
            max_restarts,
            window_ms: window_s * 1000,
            now_ms: 0,
            alive: true,
        };
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Advance(ms) => {
                    clock.advance(Duration::from_millis(ms));
                    model.now_ms += ms;
                }
                Op::Exit(i, r) => {
                    if !model.alive {
                        break;
                    }
                    let Some(pid) = pid_of(&sup, &probes[i].id) else {
                        // Not running, in the model as in the supervisor (checked below).
                        model.exit(i, r);
                        continue;
                    };
                    exit_probe(pid, reason(r));
                    prop_assert!(ServerRef::<ProbeServer>::from_pid(pid).map_or(true, |p| p.wait_exit(DEADLINE).is_some()));
                    model.exit(i, r);
                }
            }
            if !model.alive {
                prop_assert_eq!(sup.wait_exit(), Some(ExitReason::Shutdown), "step {}: supervisor should give up", step);
                break;
            }
            let want = model.kids.clone();
            let matched = eventually(|| observe(&sup, &probes).as_ref() == Some(&want));
            prop_assert!(
                matched,
                "step {}: after {:?} the supervisor shows {:?}, the model {:?}",
                step, op, observe(&sup, &probes), want
            );
        }
    }
}
