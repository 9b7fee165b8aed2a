//! Model-based test of the registry (issue 10): random sequences of register, unregister,
//! lookup, update and owner exits, from inside the owners and from outside, checked after
//! every step against a plain map of key -> (owner, value).

mod common;

use arbor_core::*;
use arbor_registry::{RegisterError, Registry, RegistryOpts, UpdateError};
use common::{agent, exec, rt, Agent, DEADLINE};
use proptest::prelude::*;
use std::collections::HashMap;

const OWNERS: usize = 4;
const KEYS: u8 = 6;

#[derive(Clone, Debug)]
enum Op {
    /// `register` from inside the owner, or `register_pid` from outside.
    Register {
        owner: usize,
        key: u8,
        value: u32,
        inside: bool,
    },
    /// `unregister` from inside the owner, or `unregister_pid` from outside.
    Unregister { owner: usize, key: u8, inside: bool },
    /// `update_value` from inside the owner: adds one.
    Update { owner: usize, key: u8 },
    /// The owner exits (0: kill, 1: an exit signal, 2: a normal stop) and a new process
    /// takes its slot.
    Exit { owner: usize, how: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let owner = 0..OWNERS;
    let key = 0..KEYS;
    prop_oneof![
        4 => (owner.clone(), key.clone(), any::<u32>(), any::<bool>())
            .prop_map(|(owner, key, value, inside)| Op::Register { owner, key, value, inside }),
        2 => (owner.clone(), key.clone(), any::<bool>())
            .prop_map(|(owner, key, inside)| Op::Unregister { owner, key, inside }),
        1 => (owner.clone(), key).prop_map(|(owner, key)| Op::Update { owner, key }),
        1 => (owner, 0..3u8).prop_map(|(owner, how)| Op::Exit { owner, how }),
    ]
}

fn name(key: u8) -> String {
    format!("k{key}")
}

/// Compares every observable of the registry with the model.
fn check(reg: &Registry<String, u32>, owners: &[ServerRef<Agent>], model: &HashMap<u8, (usize, u32)>) {
    for key in 0..KEYS {
        let want = model.get(&key).map(|(o, v)| (owners[*o].pid(), *v));
        assert_eq!(reg.lookup(name(key).as_str()), want, "lookup of {}", name(key));
        assert_eq!(reg.whereis(name(key).as_str()), want.map(|w| w.0));
    }
    assert_eq!(reg.count(), model.len(), "count");
    for (i, owner) in owners.iter().enumerate() {
        let mut got = reg.keys(owner.pid());
        got.sort();
        let mut want: Vec<String> = model
            .iter()
            .filter(|(_, (o, _))| *o == i)
            .map(|(k, _)| name(*k))
            .collect();
        want.sort();
        assert_eq!(got, want, "keys of owner {i}");
    }
}

proptest! {
    #[test]
    fn registry_matches_a_map_model(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = rt();
        let reg: Registry<String, u32> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
        let mut owners: Vec<ServerRef<Agent>> = (0..OWNERS).map(|_| agent(&rt)).collect();
        let mut model: HashMap<u8, (usize, u32)> = HashMap::new();
        for op in ops {
            match op {
                Op::Register { owner, key, value, inside } => {
                    let want = match model.get(&key) {
                        Some((o, _)) => Err(RegisterError::AlreadyRegistered(owners[*o].pid())),
                        None => Ok(()),
                    };
                    let got = if inside {
                        let r = reg.clone();
                        exec(&owners[owner], move || r.register(name(key), value))
                    } else {
                        reg.register_pid(owners[owner].pid(), name(key), value)
                    };
                    prop_assert_eq!(got, want);
                    if got.is_ok() {
                        model.insert(key, (owner, value));
                    }
                }
                Op::Unregister { owner, key, inside } => {
                    if inside {
                        let r = reg.clone();
                        prop_assert_eq!(exec(&owners[owner], move || r.unregister(name(key).as_str())), Ok(()));
                    } else {
                        reg.unregister_pid(owners[owner].pid(), name(key).as_str());
                    }
                    if model.get(&key).is_some_and(|(o, _)| *o == owner) {
                        model.remove(&key);
                    }
                }
                Op::Update { owner, key } => {
                    let want = match model.get(&key) {
                        None => Err(UpdateError::NotRegistered),
                        Some((o, _)) if *o != owner => Err(UpdateError::NotOwner(owners[*o].pid())),
                        Some((_, v)) => Ok((v.wrapping_add(1), *v)),
                    };
                    let r = reg.clone();
                    let got = exec(&owners[owner], move || r.update_value(name(key).as_str(), |v| v.wrapping_add(1)));
                    prop_assert_eq!(got, want);
                    if let Ok((new, _)) = got {
                        model.insert(key, (owner, new));
                    }
                }
                Op::Exit { owner, how } => {
                    let server = &owners[owner];
                    match how {
                        0 => server.kill(),
                        1 => server.exit(ExitReason::custom("model")),
                        _ => prop_assert_eq!(server.stop(ExitReason::Normal, DEADLINE), Ok(())),
                    }
                    // Once the exit is known, the owner's keys are free (S69).
                    prop_assert!(server.wait_exit(DEADLINE).is_some());
                    model.retain(|_, (o, _)| *o != owner);
                    owners[owner] = agent(&rt);
                }
            }
            check(&reg, &owners, &model);
        }
    }
}
