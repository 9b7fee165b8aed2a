//! The deterministic scheduler: a ready set, a seeded choice, a virtual clock, driven by
//! the thread that waits.
//!
//! Invariants:
//! - Tasks are added to the ready set only by the scheduling handshake of the process
//!   layer (a mailbox's `Idle -> Scheduled`, a budget spent, a death of an idle process),
//!   so a task is in the set at most once, and never while it runs: a process whose
//!   handler is suspended lower on the driving thread's stack (in a call it makes) is in
//!   state `Running`, which no sender schedules.
//! - One thread drives at a time (the *owner*, recorded with a nesting depth). Only the
//!   owner takes tasks from the set, fires timers and moves the clock; every choice comes
//!   from the one generator, in the order the owner asks for them, so the same program
//!   with the same seed makes the same choices. Another thread may still schedule tasks
//!   (a send from outside): that only adds to the set, under its lock.
//! - The state lock is never held while a task runs or a timer's delivery runs: both
//!   schedule tasks and record trace events, which take it again.
//! - The clock moves only when nothing is ready (to the next timer, or to a waiter's
//!   deadline), or when a helper is told to move it. Timers due at the current time fire
//!   before the next choice.

use super::rng::Rng;
use super::trace::{MessageKind, Trace, TraceEvent};
use super::{Faults, SimConfig};
use crate::clock::VirtualClock;
use crate::error::CallError;
use crate::process::Header;
use crate::reply::Slot;
use crate::runtime::RtShared;
use crate::scheduler::Task;
use crate::sync::PlainMutex as Mutex;
use crate::{ExitReason, Pid};
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// A deterministic runtime's scheduler and clock.
pub(crate) struct Driver {
    state: Mutex<State>,
    owner: Mutex<Owner>,
    pub(crate) clock: Arc<VirtualClock>,
    seed: u64,
}

struct State {
    /// Tasks ready to run; the choice among them is the generator's.
    ready: Vec<Task>,
    rng: Rng,
    trace: Trace,
    /// Tasks run so far.
    steps: u64,
    /// Tasks running now (nested in waits on the owner's stack).
    running: usize,
    /// Process numbers (order of birth) by serial, for live processes.
    numbers: HashMap<u64, u64>,
    births: u64,
    faults: Option<Faults>,
    /// Faults injected so far.
    injected: u64,
    /// Pids protected before any fault configuration was set.
    protected_early: Vec<Pid>,
}

#[derive(Default)]
struct Owner {
    thread: Option<ThreadId>,
    depth: usize,
}

/// The owner's claim on the driver, released (one level) when dropped.
pub(crate) struct Driving<'a>(&'a Driver);

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        let mut o = self.0.owner.lock();
        o.depth -= 1;
        if o.depth == 0 {
            o.thread = None;
        }
    }
}

/// 100 µs: the timer wheel's tick, in nanoseconds.
fn tick_nanos() -> u128 {
    crate::timer::TICK.as_nanos()
}

fn tick_to_duration(tick: u64) -> Duration {
    Duration::from_nanos(tick.saturating_mul(tick_nanos() as u64))
}

impl Driver {
    pub(crate) fn new(config: &SimConfig, clock: Arc<VirtualClock>) -> Driver {
        Driver {
            state: Mutex::new(State {
                ready: Vec::new(),
                rng: Rng::new(config.seed),
                trace: Trace::new(config.keep_trace),
                steps: 0,
                running: 0,
                numbers: HashMap::new(),
                births: 0,
                faults: config.faults.clone(),
                injected: 0,
                protected_early: Vec::new(),
            }),
            owner: Mutex::new(Owner::default()),
            clock,
            seed: config.seed,
        }
    }

    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// Claims the driver for this thread (nesting); `None` if another thread drives it.
    pub(crate) fn enter(&self) -> Option<Driving<'_>> {
        let me = std::thread::current().id();
        let mut o = self.owner.lock();
        match o.thread {
            Some(t) if t != me => None,
            _ => {
                o.thread = Some(me);
                o.depth += 1;
                Some(Driving(self))
            }
        }
    }

    /// Adds a task to the ready set.
    pub(crate) fn schedule(&self, task: Task) {
        self.state.lock().ready.push(task);
    }

    pub(crate) fn ready_len(&self) -> usize {
        self.state.lock().ready.len()
    }

    /// True if this thread is running one of the driver's tasks now.
    pub(crate) fn is_running_here(&self) -> bool {
        let me = std::thread::current().id();
        self.owner.lock().thread == Some(me) && self.state.lock().running > 0
    }

    /// Drops every ready task (at the end of a shutdown).
    pub(crate) fn clear(&self) {
        let ready = std::mem::take(&mut self.state.lock().ready);
        drop(ready);
    }

    fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    // ---- the trace ----

    fn record(&self, st: &mut State, event: TraceEvent) {
        st.trace.record(event);
    }

    fn number_in(st: &State, pid: Pid) -> u64 {
        st.numbers.get(&pid.serial()).copied().unwrap_or(0)
    }

    /// A new process: numbered, and traced.
    pub(crate) fn born(&self, header: &Header) {
        let at = self.elapsed();
        let mut st = self.state.lock();
        st.births += 1;
        let n = st.births;
        st.numbers.insert(header.pid().serial(), n);
        let parent = Self::number_in(&st, header.parent());
        self.record(&mut st, TraceEvent::Spawn { at, process: n, parent });
    }

    /// A process's table slot was freed: its number is no longer needed.
    pub(crate) fn forget(&self, pid: Pid) {
        self.state.lock().numbers.remove(&pid.serial());
    }

    /// The number of a live process (0 if unknown).
    pub(crate) fn number(&self, pid: Pid) -> u64 {
        Self::number_in(&self.state.lock(), pid)
    }

    pub(crate) fn numbered(&self) -> usize {
        self.state.lock().numbers.len()
    }

    pub(crate) fn trace_deliver(&self, to: Pid, kind: MessageKind) {
        let at = self.elapsed();
        let from = crate::process::current().map(|p| p.header().pid());
        let mut st = self.state.lock();
        let from = from.map_or(0, |p| Self::number_in(&st, p));
        let to = Self::number_in(&st, to);
        self.record(&mut st, TraceEvent::Deliver { at, from, to, kind });
    }

    pub(crate) fn trace_exit(&self, pid: Pid, reason: &ExitReason) {
        let at = self.elapsed();
        let reason = crate::panic::catch(|| reason.to_string()).unwrap_or_else(|_| "<unprintable>".into());
        let mut st = self.state.lock();
        let process = Self::number_in(&st, pid);
        self.record(&mut st, TraceEvent::Exit { at, process, reason });
    }

    pub(crate) fn trace(&self) -> Vec<TraceEvent> {
        self.state.lock().trace.events()
    }

    pub(crate) fn trace_digest(&self) -> u64 {
        self.state.lock().trace.digest()
    }

    pub(crate) fn trace_len(&self) -> u64 {
        self.state.lock().trace.len()
    }

    pub(crate) fn steps(&self) -> u64 {
        self.state.lock().steps
    }

    pub(crate) fn faults_injected(&self) -> u64 {
        self.state.lock().injected
    }

    pub(crate) fn set_faults(&self, faults: Option<Faults>) {
        let mut st = self.state.lock();
        let protected = st.faults.as_ref().map(|f| f.protected.clone()).unwrap_or_default();
        st.faults = faults.map(|mut f| {
            f.protected.extend(protected);
            f
        });
    }

    pub(crate) fn protect(&self, pid: Pid) {
        let mut st = self.state.lock();
        match &mut st.faults {
            Some(f) => f.protected.push(pid),
            None => st.protected_early.push(pid),
        }
    }

    // ---- driving ----

    /// Fires every timer due at the current virtual time.
    fn fire_due(&self, rt: &RtShared) {
        loop {
            let now_tick = (self.elapsed().as_nanos() / tick_nanos()) as u64;
            let fired = rt.timers.fire_until(now_tick, |at, fired| {
                let at = tick_to_duration(at).max(self.elapsed());
                let mut st = self.state.lock();
                self.record(&mut st, TraceEvent::Timers { at, fired });
            });
            if fired.is_none() {
                return;
            }
        }
    }

    /// One step: fires due timers, maybe injects a fault, then runs one ready task chosen
    /// by the generator. False if no task was ready.
    pub(crate) fn step(&self, rt: &RtShared) -> bool {
        self.fire_due(rt);
        self.maybe_fault(rt);
        let task = {
            let mut st = self.state.lock();
            if st.ready.is_empty() {
                return false;
            }
            let ready = st.ready.len();
            let i = st.rng.below(ready as u64) as usize;
            let task = st.ready.swap_remove(i);
            st.steps += 1;
            st.running += 1;
            let step = st.steps;
            let process = st.numbers.get(&task.id().0).copied().unwrap_or(0);
            let at = self.elapsed();
            self.record(
                &mut st,
                TraceEvent::Run {
                    at,
                    step,
                    process,
                    ready,
                },
            );
            task
        };
        // As the pool's workers do: a task's callbacks are caught where they run, and a
        // panic that escapes a task is caught here, then the task that noted itself cleans
        // up (`Runnable::recover`); the driver's thread goes on whatever a task does.
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run())) {
            crate::scheduler::recover_escaped(payload);
        }
        self.state.lock().running -= 1;
        true
    }

    /// With nothing ready: moves the clock to the next timer due no later than `limit`
    /// (virtual time since the start; `None`: no limit) and fires it. If none is due by
    /// then, moves the clock to `limit` and returns false.
    pub(crate) fn advance_idle(&self, rt: &RtShared, limit: Option<Duration>) -> bool {
        let limit_tick = match limit {
            Some(l) => (l.as_nanos() / tick_nanos()).min(u64::MAX as u128) as u64,
            None => u64::MAX,
        };
        let fired = rt.timers.fire_until(limit_tick, |at, fired| {
            self.clock.advance_to(tick_to_duration(at));
            let at = self.elapsed();
            let mut st = self.state.lock();
            self.record(&mut st, TraceEvent::Timers { at, fired });
        });
        if fired.is_some() {
            return true;
        }
        if let Some(l) = limit {
            if l > self.elapsed() {
                self.clock.advance_to(l);
                let mut st = self.state.lock();
                self.record(&mut st, TraceEvent::Clock { at: l });
            }
        }
        false
    }

    /// Waits for `slot` by driving the simulation on this thread: runs ready tasks, and
    /// when none is ready moves the clock to the next timer, until the slot is resolved
    /// or the (virtual) deadline passes. A wait with no deadline that nothing can ever
    /// resolve (nothing ready, no timer pending) returns `Deadlock`: every process is
    /// waiting, which the real runtime would show as a hang.
    ///
    /// Called from a thread other than the one driving the simulation, it waits as on the
    /// real runtime (parked, for the same duration of real time): only the driving thread
    /// moves the simulation.
    pub(crate) fn wait<R>(&self, rt: &RtShared, slot: &Slot<R>, deadline: Option<Instant>) -> Result<R, CallError> {
        let Some(_driving) = self.enter() else {
            let real = deadline.map(|d| Instant::now() + d.saturating_duration_since(self.clock.now()));
            return slot.wait(real);
        };
        let limit = deadline.map(|d| d.saturating_duration_since(self.clock.base()));
        loop {
            if let Some(v) = slot.try_take() {
                return v;
            }
            if let Some(l) = limit {
                if self.elapsed() >= l {
                    return slot.abandon().unwrap_or(Err(CallError::Timeout));
                }
            }
            if self.step(rt) {
                continue;
            }
            if !self.advance_idle(rt, limit) && limit.is_none() {
                return slot.abandon().unwrap_or(Err(CallError::Deadlock));
            }
        }
    }

    /// Drives the runtime until no process can still make progress towards its exit (each
    /// has exited, and is gone or held by a handler suspended lower on this stack), or
    /// until `deadline`: for shutdown. True if settled.
    pub(crate) fn settle(&self, rt: &RtShared, deadline: Option<Instant>) -> bool {
        let settled = || {
            rt.table.len() == 0
                || rt
                    .table
                    .snapshot()
                    .iter()
                    .all(|p| !p.header().is_alive() && p.is_running())
        };
        let Some(_driving) = self.enter() else {
            let real = deadline.map(|d| Instant::now() + d.saturating_duration_since(self.clock.now()));
            return rt.table.wait_settled(real);
        };
        let limit = deadline.map(|d| d.saturating_duration_since(self.clock.base()));
        loop {
            if self.step(rt) {
                continue;
            }
            if settled() {
                return true;
            }
            if !self.advance_idle(rt, limit) {
                return settled();
            }
        }
    }

    /// Runs ready tasks (and timers due now) until none is ready; returns the steps taken.
    pub(crate) fn run_until_idle(&self, rt: &RtShared) -> u64 {
        let Some(_driving) = self.enter() else { return 0 };
        let mut n = 0;
        while self.step(rt) {
            n += 1;
        }
        n
    }

    /// Runs until `done` holds, moving the clock from timer to timer, but not past
    /// `limit` (virtual time since the start). True if `done` held.
    pub(crate) fn run_until(&self, rt: &RtShared, limit: Option<Duration>, mut done: impl FnMut() -> bool) -> bool {
        let Some(_driving) = self.enter() else { return done() };
        loop {
            if done() {
                return true;
            }
            if self.step(rt) {
                continue;
            }
            if !self.advance_idle(rt, limit) {
                return done();
            }
        }
    }

    /// Faults: with the configured probability, kills or sends an exit signal to a
    /// random live process that is not protected.
    fn maybe_fault(&self, rt: &RtShared) {
        let kill = {
            let mut st = self.state.lock();
            let Some(f) = &st.faults else { return };
            if st.injected >= f.max {
                return;
            }
            let ((num, den), kill_percent) = (f.rate, f.kill_percent);
            if den == 0 || st.rng.below(den) >= num {
                return;
            }
            st.rng.below(100) < kill_percent
        };
        let (roots, protected) = {
            let st = self.state.lock();
            let Some(f) = st.faults.as_ref() else { return };
            let mut protected = f.protected.clone();
            protected.extend(st.protected_early.iter().copied());
            (f.roots, protected)
        };
        let runtime = Pid::runtime(rt.id());
        let candidates: Vec<_> = rt
            .table
            .snapshot()
            .into_iter()
            .rev() // oldest first: a stable order
            .filter(|p| {
                let h = p.header();
                h.is_alive() && (roots || h.parent() != runtime) && !protected.contains(&h.pid())
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let target = {
            let mut st = self.state.lock();
            let i = st.rng.below(candidates.len() as u64) as usize;
            st.injected += 1;
            let target = Arc::clone(&candidates[i]);
            let process = Self::number_in(&st, target.header().pid());
            let at = self.elapsed();
            self.record(&mut st, TraceEvent::Fault { at, process, kill });
            target
        };
        let pid = target.header().pid();
        drop(candidates);
        if kill {
            crate::signal::kill(rt, pid);
        } else {
            crate::signal::exit(rt, Pid::external(rt.id()), pid, ExitReason::custom("injected fault"));
        }
    }
}
