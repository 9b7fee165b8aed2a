//! Races for keys (S65 under contention): exactly one winner per key, counted; and many
//! threads registering, looking up and releasing at once over the partitions.
//! `ARBOR_REGISTRY_KEYS` shrinks or grows the key count (default 4000).

mod common;
use arbor_core::*;
use arbor_registry::*;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

const THREADS: usize = 8;

fn keys() -> usize {
    std::env::var("ARBOR_REGISTRY_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000)
}

fn counters(n: usize) -> Arc<Vec<AtomicUsize>> {
    Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect())
}

#[test]
fn s65_race_from_many_threads_has_exactly_one_winner_per_key() {
    let rt = rt();
    let reg: Registry<u64, usize> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    let n = keys();
    let agents: Vec<_> = (0..THREADS).map(|_| agent(&rt)).collect();
    let wins = counters(n);
    let per_thread = counters(THREADS);
    let losses = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = agents
        .iter()
        .enumerate()
        .map(|(t, a)| {
            let (reg, wins, per_thread, losses, barrier, pid) = (
                reg.clone(),
                wins.clone(),
                per_thread.clone(),
                losses.clone(),
                barrier.clone(),
                a.pid(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                // Each thread walks the keys from a different start, to collide everywhere.
                for i in 0..n {
                    let k = (i + t * n / THREADS) % n;
                    match reg.register_pid(pid, k as u64, t) {
                        Ok(()) => {
                            wins[k].fetch_add(1, Ordering::SeqCst);
                            per_thread[t].fetch_add(1, Ordering::SeqCst);
                        }
                        Err(RegisterError::AlreadyRegistered(holder)) => {
                            assert_ne!(holder, pid, "a thread never claims a key twice");
                            losses.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for (k, w) in wins.iter().enumerate() {
        assert_eq!(w.load(Ordering::SeqCst), 1, "key {k} has exactly one winner");
    }
    assert_eq!(losses.load(Ordering::SeqCst), n * (THREADS - 1));
    assert_eq!(reg.count(), n);
    // Each key's holder is the thread that won it, and `keys` agrees with `lookup`.
    for (t, a) in agents.iter().enumerate() {
        let held = reg.keys(a.pid());
        assert_eq!(held.len(), per_thread[t].load(Ordering::SeqCst));
        for k in held {
            assert_eq!(reg.lookup(&k), Some((a.pid(), t)));
        }
    }
}

#[test]
fn s65_race_between_processes_registering_themselves_has_one_winner_per_key() {
    let rt = rt();
    let reg: Registry<u64> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    let n = keys() / 4;
    let wins = counters(n);
    let done = Arc::new(AtomicUsize::new(0));
    let agents: Vec<_> = (0..THREADS).map(|_| agent(&rt)).collect();
    for a in &agents {
        let (reg, wins, done) = (reg.clone(), wins.clone(), done.clone());
        a.send(Box::new(move || {
            for k in 0..n {
                if reg.register(k as u64, ()).is_ok() {
                    wins[k].fetch_add(1, Ordering::SeqCst);
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap_or_else(|_| panic!("agent alive"));
    }
    assert!(eventually(|| done.load(Ordering::SeqCst) == THREADS));
    assert!(wins.iter().all(|w| w.load(Ordering::SeqCst) == 1));
    assert_eq!(reg.count(), n);
    let total: usize = agents.iter().map(|a| reg.keys(a.pid()).len()).sum();
    assert_eq!(total, n);
}

#[test]
fn s7_race_of_via_starts_runs_one_init_per_name() {
    let rt = rt();
    let reg: Registry<String> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    let names = 200;
    let inits: Arc<Vec<Arc<AtomicUsize>>> = Arc::new((0..names).map(|_| Arc::default()).collect());
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (reg, inits, barrier, h) = (reg.clone(), inits.clone(), barrier.clone(), rt.handle().clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..names)
                    .map(|i| {
                        let opts = StartOpts::new().runtime(&h).name(reg.via(format!("n{i}")));
                        match Named::start(inits[i].clone(), opts) {
                            Ok(s) => s.pid(),
                            Err(StartError::AlreadyStarted(pid)) => pid,
                            Err(e) => panic!("unexpected {e:?}"),
                        }
                    })
                    .collect::<Vec<Pid>>()
            })
        })
        .collect();
    let seen: Vec<Vec<Pid>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for i in 0..names {
        assert_eq!(inits[i].load(Ordering::SeqCst), 1, "name {i}: one init");
        let holder = reg.whereis(&format!("n{i}")).unwrap();
        assert!(seen.iter().all(|s| s[i] == holder), "every starter got the one holder");
    }
    assert_eq!(reg.count(), names);
    assert_eq!(rt.process_count(), names + 1);
}

#[test]
fn concurrent_register_lookup_unregister_stay_consistent() {
    let rt = rt();
    let reg: Registry<(usize, usize), usize> =
        Registry::start(rt.handle(), RegistryOpts::new().partitions(16)).unwrap();
    let n = keys() / 4;
    let agents: Vec<_> = (0..THREADS).map(|_| agent(&rt)).collect();
    let barrier = Arc::new(Barrier::new(THREADS));
    let found = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = agents
        .iter()
        .enumerate()
        .map(|(t, a)| {
            let (reg, barrier, found, pid) = (reg.clone(), barrier.clone(), found.clone(), a.pid());
            std::thread::spawn(move || {
                barrier.wait();
                for round in 0..3 {
                    for i in 0..n {
                        reg.register_pid(pid, (t, i), round).unwrap();
                        // Read a neighbour's key: either free or held by the neighbour.
                        if let Some((p, _)) = reg.lookup(&((t + 1) % THREADS, i)) {
                            assert_ne!(p, pid);
                            found.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    for i in 0..n {
                        assert_eq!(reg.lookup(&(t, i)), Some((pid, round)));
                        reg.unregister_pid(pid, &(t, i));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(reg.count(), 0);
    assert!(agents.iter().all(|a| reg.keys(a.pid()).is_empty()));
    // Agents are still alive and still hold nothing: registering works as before.
    reg.register_pid(agents[0].pid(), (0, 0), 9).unwrap();
    assert_eq!(reg.count(), 1);
}

#[test]
fn s69_exits_racing_registrations_leave_no_dead_holder() {
    let rt = rt();
    let reg: Registry<u64> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    let rounds = 50;
    let contenders = 4;
    for round in 0..rounds {
        let agents: Vec<_> = (0..contenders).map(|_| agent(&rt)).collect();
        let barrier = Arc::new(Barrier::new(contenders + 1));
        let threads: Vec<_> = agents
            .iter()
            .map(|a| {
                let (reg, barrier, pid) = (reg.clone(), barrier.clone(), a.pid());
                std::thread::spawn(move || {
                    barrier.wait();
                    for k in 0..20u64 {
                        let _ = reg.register_pid(pid, k, ());
                    }
                })
            })
            .collect();
        barrier.wait();
        // Kill them while they register.
        for a in &agents {
            a.kill();
        }
        for t in threads {
            t.join().unwrap();
        }
        for a in &agents {
            assert!(a.wait_exit(DEADLINE).is_some());
        }
        assert_eq!(reg.count(), 0, "round {round}: no key names a dead process");
    }
}
