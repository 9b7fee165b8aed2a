//! The workloads, each in its own module, and what they share.

use arbor_core::{CrashReports, Runtime};
use std::time::{Duration, Instant};

mod async_call;
mod call_latency;
mod fan_in;
mod ping_pong;
mod restart_storm;
mod spawn;
mod thread_ring;
mod timers;

/// Named figures of one measurement, in print order.
pub(crate) type Figures = Vec<(&'static str, f64)>;

/// Workload sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Size {
    /// A smoke test: each workload well under a second.
    Tiny,
    /// The sizes the targets in docs/performance.md refer to.
    Default,
}

impl Size {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Size::Tiny => "tiny",
            Size::Default => "default",
        }
    }

    /// `tiny` or `default`, by size.
    pub(crate) fn pick<T>(self, tiny: T, default: T) -> T {
        match self {
            Size::Tiny => tiny,
            Size::Default => default,
        }
    }
}

/// What every workload run gets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) size: Size,
    /// arbor worker threads.
    pub(crate) threads: usize,
}

/// A figure shown in the summary table.
#[derive(Debug)]
pub(crate) struct Figure {
    pub(crate) key: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) higher_is_better: bool,
}

/// A workload: its arbor implementation and its raw baseline, if one makes sense.
#[derive(Debug)]
pub(crate) struct Workload {
    pub(crate) name: &'static str,
    /// Figures for the summary table (the JSON lines carry every figure).
    pub(crate) summary: &'static [Figure],
    pub(crate) arbor: fn(&Config) -> Figures,
    pub(crate) raw: Option<fn(&Config) -> Figures>,
    /// Why there is no raw baseline (when `raw` is `None`).
    pub(crate) na_reason: &'static str,
    /// Run each arbor measurement in a fresh process of this binary, so that memory freed
    /// by earlier runs and workloads does not hide the RSS growth it measures.
    pub(crate) fresh_process: bool,
}

/// Every workload, in run order.
pub(crate) const ALL: &[Workload] = &[
    ping_pong::WORKLOAD,
    fan_in::WORKLOAD,
    call_latency::WORKLOAD,
    spawn::WORKLOAD,
    thread_ring::WORKLOAD,
    timers::WORKLOAD,
    restart_storm::WORKLOAD,
    async_call::WORKLOAD,
];

/// How long any wait for a workload to finish may take before we call it a hang.
pub(crate) const DEADLINE: Duration = Duration::from_secs(600);

/// A fresh runtime for one run.
pub(crate) fn runtime(cfg: &Config) -> Runtime {
    Runtime::builder()
        .worker_threads(cfg.threads)
        .thread_name("bench")
        // restart_storm crashes children on purpose, a hundred thousand times a second:
        // measure the runtime, not a terminal. Through `log` with no logger installed,
        // reports cost what they cost before crash reports went to stderr by default.
        .crash_reports(CrashReports::Log)
        .build()
        .expect("arbor-bench: cannot start a runtime")
}

/// `count / elapsed` in units per second.
pub(crate) fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// Polls `done` until it holds; panics (a hang) after `deadline`.
pub(crate) fn wait_until(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut pause = Duration::from_micros(10);
    while !done() {
        assert!(
            start.elapsed() < deadline,
            "arbor-bench: hang: {what} not done after {deadline:?}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(1));
    }
}
