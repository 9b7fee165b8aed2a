//! The soak's load: client threads (calls, sends, timers, monitors, links, helpers) and the
//! chaos thread (kills, exits, crashes and stops of workers and whole subtrees, supervisors
//! killed in the middle of `start_child`).
//!
//! Invariant: every choice comes from a [`Rng`] seeded from the run's seed and the thread's
//! role; every call's outcome goes through [`check_call`].

use crate::ledger::Token;
use crate::rng::Rng;
use crate::tree::{dyn_sup_names, static_sup_names, Tree};
use crate::worker::{check_call, CallClock, Info, Req, Worker};
use arbor::prelude::*;
use arbor::supervisor::Restart;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the load threads share.
pub(crate) struct Load {
    pub(crate) tree: Arc<Tree>,
    pub(crate) seed: u64,
    pub(crate) stop: AtomicBool,
    /// Permanent static workers chaos took down: key, pid, when. The watcher expects each
    /// name back on a new live pid.
    pub(crate) downed: Mutex<Vec<(String, Pid, Instant)>>,
}

impl Load {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn any_key(&self, rng: &mut Rng) -> (String, bool) {
        let t = &self.tree;
        if rng.chance(85) {
            (rng.pick(&t.demand_keys).clone(), true)
        } else {
            (rng.pick(&t.static_keys).0.clone(), false)
        }
    }
}

const TIMEOUTS_MS: [u64; 7] = [1, 5, 20, 50, 100, 300, 1000];

fn reason(rng: &mut Rng) -> ExitReason {
    match rng.below(4) {
        0 => ExitReason::Normal,
        1 => ExitReason::Shutdown,
        2 => ExitReason::shutdown_with("soak"),
        _ => ExitReason::custom("soak"),
    }
}

/// One client thread: `id` numbers it (and its messages' sender).
pub(crate) fn client(load: Arc<Load>, id: u64, phase: u64) {
    let mut rng = Rng::new(load.seed, 1000 + phase * 64 + id);
    let tree = &load.tree;
    let ledger = tree.shared.ledger.clone();
    // Senders are unique per phase and thread, so sequence numbers from one sender rise.
    let sender = phase * 64 + id + 1;
    let mut seq = 0u64;
    let mut nonce = (sender << 40) + 1;
    while load.running() {
        let (key, demand) = load.any_key(&mut rng);
        let pid = if demand {
            let delay = if rng.chance(10) {
                Duration::from_micros(rng.below(2000))
            } else {
                Duration::ZERO
            };
            match tree.demand(&key, delay) {
                Ok(pid) => pid,
                Err(_) => {
                    ledger.count("on-demand starts refused");
                    continue;
                }
            }
        } else {
            match tree.shared.names.whereis(&key) {
                Some(pid) => pid,
                None => continue,
            }
        };
        let Some(server) = ServerRef::<Worker>::from_pid(pid) else {
            continue;
        };
        match rng.below(100) {
            0..=39 => {
                nonce += 1;
                let timeout = Duration::from_millis(*rng.pick(&TIMEOUTS_MS));
                let (req, expect) = match rng.below(100) {
                    0..=49 => (Req::Echo(nonce), nonce),
                    50..=64 => (
                        Req::Deferred(nonce, timeout.mul_f64(rng.below(150) as f64 / 100.0)),
                        nonce,
                    ),
                    65..=69 => (Req::Panic, u64::MAX),
                    70..=74 => {
                        if rng.chance(50) {
                            (Req::Stop(reason(&mut rng), Some(nonce)), nonce)
                        } else {
                            (Req::Stop(reason(&mut rng), None), u64::MAX)
                        }
                    }
                    _ => {
                        let (other, _) = load.any_key(&mut rng);
                        let depth = rng.below(3) as u8;
                        (
                            Req::Forward {
                                nonce,
                                key: other,
                                timeout,
                                depth,
                            },
                            nonce,
                        )
                    }
                };
                let clock = CallClock::start();
                let got = server.call_timeout(req, timeout);
                check_call(&ledger, "client", &clock, timeout, expect, &got);
            }
            40..=69 => {
                seq += 1;
                let token = Token::new(&ledger, pid);
                match server.send(Info::Count { sender, seq, token }) {
                    Ok(()) => ledger.count("messages sent"),
                    Err(e) => {
                        if let Info::Count { token, .. } = e.into_inner() {
                            token.reject();
                        }
                    }
                }
            }
            70..=79 => {
                let token = Token::new(&ledger, pid);
                let delay = Duration::from_millis(rng.below(50));
                let cancel = rng.chance(30);
                match server.send(Info::Arm { delay, cancel, token }) {
                    Ok(()) => ledger.count("timer requests sent"),
                    Err(e) => {
                        if let Info::Arm { token, .. } = e.into_inner() {
                            token.reject();
                        }
                    }
                }
            }
            80..=84 => {
                let _ = server.send(Info::CancelOne);
            }
            85..=89 => {
                let target = if rng.chance(60) {
                    Some(load.any_key(&mut rng).0)
                } else {
                    None
                };
                let _ = server.send(Info::Monitor(target));
            }
            90..=92 => {
                let target = if rng.chance(50) {
                    Some(load.any_key(&mut rng).0)
                } else {
                    None
                };
                let _ = server.send(Info::Link(target));
            }
            93..=96 => {
                let _ = server.send(Info::SpawnHelper);
            }
            _ => {
                if demand {
                    if let Some(sup) = tree.sup_of(&key) {
                        match sup.terminate_child(pid) {
                            Ok(()) => ledger.count("children terminated by clients"),
                            Err(_) => ledger.count("terminate_child refused"),
                        }
                    }
                }
            }
        }
    }
}

/// The chaos thread: takes down random workers and subtrees until told to stop.
pub(crate) fn chaos(load: Arc<Load>, phase: u64) {
    let mut rng = Rng::new(load.seed, 2 + phase * 64);
    let tree = &load.tree;
    let names = &tree.shared.names;
    let ledger = tree.shared.ledger.clone();
    while load.running() {
        // Pacing of the chaos, not a synchronisation: nothing waits on this sleep.
        std::thread::sleep(Duration::from_micros(500 + rng.below(2500)));
        let (key, demand) = load.any_key(&mut rng);
        let target = names.whereis(&key);
        let roll = rng.below(100);
        if let (Some(pid), true) = (target, roll < 68) {
            match roll {
                0..=34 => {
                    arbor::kill(pid);
                    ledger.count("chaos: workers killed");
                }
                35..=49 => {
                    arbor::exit(pid, ExitReason::custom("chaos"));
                    ledger.count("chaos: exit signals");
                }
                50..=59 => {
                    if let Some(s) = ServerRef::<Worker>::from_pid(pid) {
                        if rng.chance(50) {
                            let _ = s.send(Info::Panic);
                            ledger.count("chaos: crashes");
                        } else {
                            let _ = s.send(Info::Stop(reason(&mut rng)));
                            ledger.count("chaos: self-stops");
                        }
                    }
                }
                _ => {
                    if let Some(s) = ServerRef::<Worker>::from_pid(pid) {
                        let _ = s.stop(reason(&mut rng), Duration::from_millis(200));
                        ledger.count("chaos: stops");
                    }
                }
            }
            let permanent = !demand
                && tree
                    .static_keys
                    .iter()
                    .any(|(k, r)| *k == key && *r == Restart::Permanent);
            if permanent && roll < 50 {
                load.downed.lock().push((key, pid, Instant::now()));
            }
            continue;
        }
        match roll {
            68..=71 => {
                let name = rng.pick(&dyn_sup_names()).clone();
                if let Some(pid) = names.whereis(&name) {
                    arbor::kill(pid);
                    ledger.count("chaos: dynamic supervisors killed");
                }
            }
            72..=74 => {
                let name = rng.pick(&static_sup_names()).clone();
                if let Some(pid) = names.whereis(&name) {
                    if rng.chance(75) {
                        arbor::kill(pid);
                        ledger.count("chaos: static supervisors killed");
                    } else {
                        // A supervisor traps exits: a signal from a stranger is ignored (OTP).
                        arbor::exit(pid, ExitReason::custom("chaos"));
                        ledger.count("chaos: exit signals to static supervisors (ignored)");
                    }
                }
            }
            75..=79 => mid_start(&load, &mut rng),
            _ => {}
        }
    }
}

/// Kills a dynamic supervisor while a thread is inside its `start_child`, with an `init`
/// slow enough for the kill to land during it.
fn mid_start(load: &Arc<Load>, rng: &mut Rng) {
    let tree = &load.tree;
    let ledger = &tree.shared.ledger;
    let key = rng.pick(&tree.demand_keys).clone();
    if tree.shared.names.whereis(&key).is_some() {
        return;
    }
    let Some(sup) = tree.sup_of(&key) else {
        return;
    };
    let l = load.clone();
    let k = key.clone();
    let starter = std::thread::spawn(move || l.tree.demand(&k, Duration::from_millis(3)));
    std::thread::sleep(Duration::from_micros(500 + rng.below(2500)));
    arbor::kill(sup.pid());
    match starter.join() {
        Ok(Ok(_)) => ledger.count("chaos: mid-start kills (start returned a pid)"),
        Ok(Err(_)) => ledger.count("chaos: mid-start kills (start failed)"),
        Err(_) => ledger.count("chaos: mid-start starter panicked"),
    }
}
