//! Listeners (S73): told of every register and unregister, with closures.

mod common;
use arbor_core::*;
use arbor_registry::*;
use common::*;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Events = Arc<Mutex<Vec<RegistryEvent<String, u32>>>>;

fn recording(rt: &Runtime, events: &Events) -> Registry<String, u32> {
    let e = events.clone();
    let opts = RegistryOpts::new().listener(move |ev: &RegistryEvent<String, u32>| e.lock().push(ev.clone()));
    Registry::start(rt.handle(), opts).unwrap()
}

#[test]
fn s73_listeners_told_of_register_and_unregister() {
    let rt = rt();
    let events: Events = Arc::default();
    let reg = recording(&rt, &events);
    let p = agent(&rt);
    let r = reg.clone();
    exec(&p, move || {
        r.register("a".into(), 1).unwrap();
        // Failed and no-op attempts tell no one.
        let _ = r.register("a".into(), 2);
        r.unregister("none").unwrap();
        r.unregister("a").unwrap();
    });
    let pid = p.pid();
    assert_eq!(
        *events.lock(),
        vec![
            RegistryEvent::Register {
                key: "a".into(),
                pid,
                value: 1
            },
            RegistryEvent::Unregister { key: "a".into(), pid },
        ]
    );
}

#[test]
fn s73_listeners_told_of_via_names_and_releases_at_exit() {
    let rt = rt();
    let events: Events = Arc::default();
    let reg = recording(&rt, &events);
    let s = Named::start(
        Arc::default(),
        StartOpts::new()
            .runtime(rt.handle())
            .name(reg.via_with_value("v".into(), 5)),
    )
    .unwrap();
    let pid = s.pid();
    s.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    assert_eq!(
        *events.lock(),
        vec![
            RegistryEvent::Register {
                key: "v".into(),
                pid,
                value: 5
            },
            RegistryEvent::Unregister { key: "v".into(), pid },
        ]
    );
}

#[test]
fn s73_every_listener_told_once_per_change() {
    let rt = rt();
    let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a2, b2) = (a.clone(), b.clone());
    let opts = RegistryOpts::<u64>::new()
        .listener(move |_| {
            a2.fetch_add(1, Ordering::SeqCst);
        })
        .listener(move |_| {
            b2.fetch_add(1, Ordering::SeqCst);
        });
    let reg = Registry::start(rt.handle(), opts).unwrap();
    let p = agent(&rt);
    for k in 0..10 {
        reg.register_pid(p.pid(), k, ()).unwrap();
    }
    p.kill();
    assert!(p.wait_exit(DEADLINE).is_some());
    // Ten registrations and ten releases at exit, each told once to each listener.
    assert_eq!((a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)), (20, 20));
}

#[test]
fn s73_listener_may_use_the_registry_and_a_panicking_one_changes_nothing() {
    let rt = rt();
    let seen: Arc<Mutex<Vec<Option<Pid>>>> = Arc::default();
    let slot: Arc<Mutex<Option<Registry<String>>>> = Arc::default();
    let (s, sl) = (seen.clone(), slot.clone());
    let opts = RegistryOpts::new().listener(|_| panic!("a faulty listener")).listener(
        move |ev: &RegistryEvent<String, ()>| {
            if let RegistryEvent::Register { key, .. } = ev {
                // No registry lock is held while listeners run.
                let reg = sl.lock().clone().unwrap();
                s.lock().push(reg.whereis(key));
            }
        },
    );
    let reg: Registry<String> = Registry::start(rt.handle(), opts).unwrap();
    *slot.lock() = Some(reg.clone());
    let p = agent(&rt);
    let r = reg.clone();
    assert_eq!(exec(&p, move || r.register("a".into(), ())), Ok(()));
    assert_eq!(*seen.lock(), vec![Some(p.pid())]);
    assert_eq!(reg.whereis("a"), Some(p.pid()));
    assert!(is_alive(p.pid()));
}

#[test]
fn the_releases_of_an_exit_come_in_the_same_order_in_every_registry() {
    // A deterministic runtime's trace needs it: the order does not depend on a random
    // hashing state.
    use arbor_core::sim::SimRuntime;
    let order = || {
        let sim = SimRuntime::new(3);
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let s = seen.clone();
        let opts = RegistryOpts::new().listener(move |e: &RegistryEvent<String, ()>| {
            if let RegistryEvent::Unregister { key, .. } = e {
                s.lock().push(key.clone());
            }
        });
        let reg: Registry<String> = Registry::start(&sim, opts).unwrap();
        let r = reg.clone();
        let holder = sim.start::<Agent>(()).unwrap();
        exec(&holder, move || {
            for i in 0..50 {
                r.register(format!("k{i}"), ()).unwrap();
            }
        });
        holder.kill();
        sim.run_until_idle();
        let out = seen.lock().clone();
        out
    };
    let first = order();
    assert_eq!(first.len(), 50);
    for _ in 0..5 {
        assert_eq!(order(), first);
    }
}
