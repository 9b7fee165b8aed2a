//! Leak tests: names and the exit hooks behind them. A million register/unregister pairs
//! in release (`ARBOR_LEAK_OPS` changes it; a debug build does 20,000), then every count
//! is back to its baseline.

mod common;
use arbor_core::*;
use arbor_registry::*;
use common::*;

fn ops() -> usize {
    std::env::var("ARBOR_LEAK_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 20_000 } else { 1_000_000 })
}

#[test]
fn leak_names_and_exit_hooks_of_a_long_lived_process() {
    let rt = rt();
    let reg: Registry<u64> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    let a = agent(&rt);
    let n = ops() as u64;
    let batch = 1000.min(n);
    for b in 0..n / batch {
        let r = reg.clone();
        exec(&a, move || {
            for i in 0..batch {
                let key = b * batch + i;
                r.register(key, ()).unwrap();
                r.unregister(&key).unwrap();
            }
        });
    }
    assert_eq!(reg.count(), 0);
    let info = rt.process_info(a.pid()).unwrap();
    assert_eq!(info.exit_hooks, 0, "one hook per registration left behind");
}

#[test]
fn leak_exit_hooks_across_registry_restarts() {
    let rt = rt();
    let a = agent(&rt);
    for _ in 0..ops() / 1000 {
        let reg: Registry<u64> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
        let r = reg.clone();
        exec(&a, move || r.register(1, ()).unwrap());
        assert_eq!(rt.process_info(a.pid()).unwrap().exit_hooks, 1);
        reg.stop(ExitReason::Normal, DEADLINE).unwrap();
    }
    assert_eq!(rt.process_info(a.pid()).unwrap().exit_hooks, 0);
}

#[test]
fn leak_via_names_of_servers_started_and_stopped() {
    let rt = rt();
    let reg: Registry<u64> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    let baseline = rt.process_count();
    for i in 0..(ops() / 10) as u64 {
        let s = Agent::start((), StartOpts::new().runtime(rt.handle()).name(reg.via(i % 7))).unwrap();
        s.stop(ExitReason::Normal, DEADLINE).unwrap();
    }
    assert_eq!(reg.count(), 0);
    assert!(eventually(|| rt.process_count() == baseline));
}
