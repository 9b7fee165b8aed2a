//! S49 at scale: a DynamicSupervisor on a one-thread runtime stops 1,000 children whose
//! `terminate`s are slow, without ever blocking its worker while it waits.

mod common;

use arbor_core::*;
use arbor_supervisor::*;
use common::*;
use std::time::{Duration, Instant};

/// Children per run; `ARBOR_STRESS_CHILDREN` shrinks it for quick runs.
fn children() -> usize {
    std::env::var("ARBOR_STRESS_CHILDREN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

#[test]
fn s49_thousand_slow_children_stop_on_one_thread() {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let n = children();
    let log = Log::default();
    let sup = DynamicSupervisor::start_link(DynamicOpts::new().runtime(rt.handle())).unwrap();
    let probes: Vec<Probe> = (0..n)
        .map(|i| Probe::new(&format!("c{i}"), &log).terminate_sleep(Duration::from_millis(1 + (i % 5) as u64)))
        .collect();
    for p in &probes {
        // Generous timeout: on one thread the terminates run one after another (~3 s in all).
        sup.start_child(p.spec().shutdown(Shutdown::Timeout(Duration::from_secs(120))))
            .unwrap();
    }
    assert_eq!(sup.count_children().unwrap().active, n);
    let t = Instant::now();
    sup.stop().unwrap();
    eprintln!("stopped {n} children in {:?}", t.elapsed());
    for p in &probes {
        assert_eq!(p.counters.started(), 1, "{} started once", p.id);
        assert_eq!(p.counters.terminated(), 1, "{} terminated once", p.id);
    }
    assert_eq!(log.with_prefix("terminate:").len(), n);
    assert!(eventually(|| rt.process_count() == 0));
    assert!(eventually(|| rt.timer_count() == 0), "every kill timer was cancelled");
}
