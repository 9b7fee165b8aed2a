//! Unique-key registrations and reads: S63–S68, and the typed errors.

mod common;
use arbor_core::*;
use arbor_registry::*;
use common::*;
use std::time::Duration;

fn start(rt: &Runtime) -> Registry<String, u32> {
    Registry::start(rt.handle(), RegistryOpts::new()).unwrap()
}

#[test]
fn s63_start_named_registry_returns_running_pid_found_by_name() {
    let rt = rt();
    let reg: Registry<String> = Registry::start(rt.handle(), RegistryOpts::named("s63-a")).unwrap();
    let pid = reg.pid().expect("a running registry has a pid");
    assert!(is_alive(pid));
    assert!(reg.is_running());
    assert_eq!(reg.name(), Some("s63-a"));
    assert_eq!(Registry::<String>::lookup_registry("s63-a"), Some(reg.clone()));
}

#[test]
fn s63_second_registry_under_taken_name_returns_already_started() {
    let rt = rt();
    let first: Registry<String> = Registry::start(rt.handle(), RegistryOpts::named("s63-b")).unwrap();
    let second = Registry::<String>::start(rt.handle(), RegistryOpts::named("s63-b"));
    assert_eq!(second.err(), Some(StartError::AlreadyStarted(first.pid().unwrap())));
    // Only the first registry's process exists: the second never ran.
    assert_eq!(rt.process_count(), 1);
    // Running the same registry twice is refused the same way.
    assert_eq!(
        first.run(rt.handle()),
        Err(StartError::AlreadyStarted(first.pid().unwrap()))
    );
}

#[test]
fn s63_two_named_registries_coexist_with_separate_tables() {
    let rt = rt();
    let a: Registry<String> = Registry::start(rt.handle(), RegistryOpts::named("s63-c1")).unwrap();
    let b: Registry<String> = Registry::start(rt.handle(), RegistryOpts::named("s63-c2")).unwrap();
    assert_ne!(a, b);
    let p = agent(&rt);
    let (a2, b2) = (a.clone(), b.clone());
    exec(&p, move || a2.register("k".into(), ()).unwrap());
    assert_eq!(a.whereis("k"), Some(p.pid()));
    assert_eq!(b.whereis("k"), None);
    assert_eq!(exec(&p, move || b2.register("k".into(), ())), Ok(()));
    assert_eq!(
        Registry::<String>::lookup_registry("s63-c2").unwrap().whereis("k"),
        Some(p.pid())
    );
}

#[test]
fn s63_lookup_registry_unknown_name_or_other_types_is_none() {
    let rt = rt();
    assert_eq!(Registry::<String>::lookup_registry("s63-nobody"), None);
    let _reg: Registry<String> = Registry::start(rt.handle(), RegistryOpts::named("s63-d")).unwrap();
    assert_eq!(Registry::<u64>::lookup_registry("s63-d"), None);
    assert_eq!(Registry::<String, u32>::lookup_registry("s63-d"), None);
    assert!(Registry::<String>::lookup_registry("s63-d").is_some());
}

#[test]
fn s63_stopped_registry_frees_its_name() {
    let rt = rt();
    let reg: Registry<String> = Registry::start(rt.handle(), RegistryOpts::named("s63-e")).unwrap();
    reg.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    assert!(!reg.is_running());
    assert_eq!(Registry::<String>::lookup_registry("s63-e"), None);
    let again: Registry<String> = Registry::start(rt.handle(), RegistryOpts::named("s63-e")).unwrap();
    assert!(again.is_running());
}

#[test]
fn s64_register_claims_key_for_calling_process() {
    let rt = rt();
    let reg = start(&rt);
    let p = agent(&rt);
    let r = reg.clone();
    assert_eq!(exec(&p, move || r.register("a".into(), 7)), Ok(()));
    assert_eq!(reg.lookup("a"), Some((p.pid(), 7)));
    assert_eq!(reg.whereis("a"), Some(p.pid()));
    assert_eq!(reg.count(), 1);
}

#[test]
fn s65_register_taken_key_returns_holder() {
    let rt = rt();
    let reg = start(&rt);
    let (p, q) = (agent(&rt), agent(&rt));
    let r = reg.clone();
    exec(&p, move || r.register("a".into(), 1)).unwrap();
    let r = reg.clone();
    assert_eq!(
        exec(&q, move || r.register("a".into(), 2)),
        Err(RegisterError::AlreadyRegistered(p.pid()))
    );
    // The failed attempt left no trace.
    assert_eq!(reg.lookup("a"), Some((p.pid(), 1)));
    assert_eq!(reg.keys(q.pid()), Vec::<String>::new());
    assert_eq!(reg.count(), 1);
}

#[test]
fn s65_register_own_key_again_returns_self_and_keeps_value() {
    let rt = rt();
    let reg = start(&rt);
    let p = agent(&rt);
    let r = reg.clone();
    let results = exec(&p, move || (r.register("a".into(), 1), r.register("a".into(), 2)));
    assert_eq!(results, (Ok(()), Err(RegisterError::AlreadyRegistered(p.pid()))));
    assert_eq!(reg.lookup("a"), Some((p.pid(), 1)));
    assert_eq!(reg.keys(p.pid()), vec!["a".to_string()]);
    assert_eq!(reg.count(), 1);
}

#[test]
fn s66_reads_lookup_keys_values_count() {
    let rt = rt();
    let reg = start(&rt);
    let (p, q) = (agent(&rt), agent(&rt));
    let r = reg.clone();
    exec(&p, move || {
        r.register("a".into(), 1).unwrap();
        r.register("b".into(), 2).unwrap();
    });
    let r = reg.clone();
    exec(&q, move || r.register("c".into(), 3).unwrap());
    let mut keys = reg.keys(p.pid());
    keys.sort();
    assert_eq!(keys, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(reg.keys(q.pid()), vec!["c".to_string()]);
    assert_eq!(reg.values("a", p.pid()), Some(1));
    assert_eq!(reg.values("a", q.pid()), None);
    assert_eq!(reg.values("zz", p.pid()), None);
    assert_eq!(reg.lookup("c"), Some((q.pid(), 3)));
    assert_eq!(reg.lookup("zz"), None);
    assert_eq!(reg.count(), 3);
}

#[test]
fn s66_keys_compare_by_eq_only() {
    let rt = rt();
    let reg: Registry<(u8, u8)> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    let p = agent(&rt);
    let r = reg.clone();
    exec(&p, move || {
        r.register((1, 2), ()).unwrap();
        r.register((2, 1), ()).unwrap();
    });
    assert_eq!(reg.count(), 2);
}

#[test]
fn s67_unregister_is_always_ok_and_leaves_others_alone() {
    let rt = rt();
    let reg = start(&rt);
    let (p, q) = (agent(&rt), agent(&rt));
    let r = reg.clone();
    exec(&p, move || r.register("a".into(), 1).unwrap());
    // Not registered at all, and another's key: both Ok, nothing changes.
    let r = reg.clone();
    assert_eq!(
        exec(&q, move || (r.unregister("none"), r.unregister("a"))),
        (Ok(()), Ok(()))
    );
    assert_eq!(reg.lookup("a"), Some((p.pid(), 1)));
    // The holder's unregister releases it.
    let r = reg.clone();
    assert_eq!(exec(&p, move || r.unregister("a")), Ok(()));
    assert_eq!(reg.lookup("a"), None);
    assert_eq!(reg.keys(p.pid()), Vec::<String>::new());
    assert_eq!(reg.count(), 0);
    // And the key is free for anyone.
    let r = reg.clone();
    assert_eq!(exec(&q, move || r.register("a".into(), 2)), Ok(()));
}

#[test]
fn s67_unregister_pid_releases_only_that_pids_entry() {
    let rt = rt();
    let reg = start(&rt);
    let (p, q) = (agent(&rt), agent(&rt));
    reg.register_pid(p.pid(), "a".into(), 1).unwrap();
    reg.unregister_pid(q.pid(), "a");
    assert_eq!(reg.whereis("a"), Some(p.pid()));
    reg.unregister_pid(p.pid(), "a");
    assert_eq!(reg.whereis("a"), None);
}

#[test]
fn s68_update_value_only_by_owner() {
    let rt = rt();
    let reg = start(&rt);
    let (p, q) = (agent(&rt), agent(&rt));
    let r = reg.clone();
    exec(&p, move || r.register("a".into(), 1).unwrap());
    let r = reg.clone();
    assert_eq!(exec(&p, move || r.update_value("a", |v| v + 10)), Ok((11, 1)));
    assert_eq!(reg.lookup("a"), Some((p.pid(), 11)));
    let r = reg.clone();
    assert_eq!(
        exec(&q, move || r.update_value("a", |v| v + 100)),
        Err(UpdateError::NotOwner(p.pid()))
    );
    let r = reg.clone();
    assert_eq!(
        exec(&q, move || r.update_value("none", |v| v + 100)),
        Err(UpdateError::NotRegistered)
    );
    assert_eq!(reg.lookup("a"), Some((p.pid(), 11)));
    assert_eq!(reg.update_value("a", |v| v + 1), Err(UpdateError::NotAProcess));
}

#[test]
fn s68_update_value_function_may_use_the_registry() {
    let rt = rt();
    let reg = start(&rt);
    let p = agent(&rt);
    let r = reg.clone();
    let got = exec(&p, move || {
        r.register("a".into(), 1).unwrap();
        // The function reads the same key: no lock is held while it runs.
        r.update_value("a", |v| r.lookup("a").map(|(_, x)| x).unwrap() + v)
    });
    assert_eq!(got, Ok((2, 1)));
}

#[test]
fn register_outside_any_process_is_not_a_process() {
    let rt = rt();
    let reg = start(&rt);
    assert_eq!(reg.register("a".into(), 1), Err(RegisterError::NotAProcess));
    assert_eq!(reg.unregister("a"), Err(NotAProcess));
    assert_eq!(reg.count(), 0);
}

#[test]
fn register_pid_of_dead_pid_is_not_alive() {
    let rt = rt();
    let reg = start(&rt);
    let p = agent(&rt);
    let pid = p.pid();
    p.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    assert_eq!(reg.register_pid(pid, "a".into(), 1), Err(RegisterError::NotAlive));
    assert_eq!(reg.lookup("a"), None);
    assert_eq!(reg.count(), 0);
}

#[test]
fn register_on_a_registry_not_running_is_registry_down() {
    let rt = rt();
    let reg: Registry<String, u32> = Registry::new(RegistryOpts::new());
    let p = agent(&rt);
    let r = reg.clone();
    assert_eq!(
        exec(&p, move || r.register("a".into(), 1)),
        Err(RegisterError::RegistryDown)
    );
    assert!(!reg.is_running());
    assert_eq!(reg.pid(), None);
}

#[test]
fn partitions_are_configurable_and_keys_spread_over_them() {
    let rt = rt();
    let reg: Registry<u64> = Registry::start(rt.handle(), RegistryOpts::new().partitions(8)).unwrap();
    assert_eq!(reg.partitions(), 8);
    let p = agent(&rt);
    for k in 0..800u64 {
        reg.register_pid(p.pid(), k, ()).unwrap();
    }
    let counts = reg.partition_counts();
    assert_eq!(counts.iter().sum::<usize>(), 800);
    assert!(counts.iter().all(|&c| c > 0), "every partition used: {counts:?}");
    let default: Registry<u64> = Registry::new(RegistryOpts::new());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(8);
    assert_eq!(default.partitions(), 2 * cores);
}

#[test]
fn entries_lists_every_key_with_its_holder_and_value_up_to_the_limit() {
    let rt = rt();
    let reg = start(&rt);
    let a = agent(&rt);
    let b = agent(&rt);
    for n in 0..10u32 {
        let holder = if n % 2 == 0 { a.pid() } else { b.pid() };
        reg.register_pid(holder, format!("k{n}"), n).unwrap();
    }
    let mut all = reg.entries(usize::MAX);
    all.sort_by_key(|(_, _, v)| *v);
    assert_eq!(all.len(), 10);
    for (n, (key, pid, value)) in all.iter().enumerate() {
        assert_eq!(key, &format!("k{n}"));
        assert_eq!(*value, n as u32);
        assert_eq!(*pid, if n % 2 == 0 { a.pid() } else { b.pid() });
    }
    assert_eq!(reg.entries(3).len(), 3);
    assert!(reg.entries(0).is_empty());
    // Released at exit: only b's keys remain.
    a.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    let left = reg.entries(usize::MAX);
    assert_eq!(left.len(), 5);
    assert!(left.iter().all(|(_, pid, _)| *pid == b.pid()));
}
