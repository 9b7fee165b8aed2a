//! Bad and odd input to the registry (issue 10): each test backs one row of the "Bad input"
//! table in `docs/semantics.md`. Every misuse is a typed error, never a panic or a hang.

mod common;

use arbor_core::*;
use arbor_registry::{RegisterError, Registry, RegistryOpts};
use common::{agent, exec, rt, Agent, DEADLINE};

#[test]
fn bad_duplicate_names() {
    let rt = rt();
    let reg: Registry<String> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    let a = agent(&rt);
    let b = agent(&rt);
    let r = reg.clone();
    assert_eq!(exec(&a, move || r.register("k".into(), ())), Ok(()));
    let r = reg.clone();
    assert_eq!(
        exec(&b, move || r.register("k".into(), ())),
        Err(RegisterError::AlreadyRegistered(a.pid()))
    );
    // Twice by the holder itself: also AlreadyRegistered (S65).
    let r = reg.clone();
    assert_eq!(
        exec(&a, move || r.register("k".into(), ())),
        Err(RegisterError::AlreadyRegistered(a.pid()))
    );
    // A start under the taken via-name never runs its init (S70).
    let opts = StartOpts::new().runtime(rt.handle()).name(reg.via("k".to_string()));
    assert_eq!(Agent::start((), opts).err(), Some(StartError::AlreadyStarted(a.pid())));
    assert_eq!(rt.process_count(), 3, "registry and two agents, nothing else");
}

#[test]
fn bad_register_from_outside_a_process_or_for_the_dead() {
    let rt = rt();
    let reg: Registry<String> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    assert_eq!(reg.register("k".into(), ()), Err(RegisterError::NotAProcess));
    assert!(reg.unregister("k").is_err());
    let a = agent(&rt);
    a.kill();
    assert!(a.wait_exit(DEADLINE).is_some());
    assert_eq!(reg.register_pid(a.pid(), "k".into(), ()), Err(RegisterError::NotAlive));
    assert_eq!(reg.count(), 0);
}

#[test]
fn bad_call_or_send_to_an_unregistered_name() {
    let rt = rt();
    let reg: Registry<String> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    assert_eq!(
        reg.call::<Agent, _>("nobody", Box::new(|| Box::new(()) as _)).err(),
        Some(CallError::NoProc)
    );
    assert!(reg.send::<Agent, _>("nobody", Box::new(|| ())).is_err());
    assert!(reg.whereis("nobody").is_none());
}

#[test]
fn bad_via_name_on_a_registry_that_is_not_running() {
    let rt = rt();
    let reg: Registry<String> = Registry::new(RegistryOpts::new());
    let opts = StartOpts::new().runtime(rt.handle()).name(reg.via("k".to_string()));
    assert!(matches!(Agent::start((), opts), Err(StartError::NameUnavailable(_))));
    assert_eq!(rt.process_count(), 0, "the server never ran");
    let a = agent(&rt);
    assert_eq!(
        reg.register_pid(a.pid(), "k".into(), ()),
        Err(RegisterError::RegistryDown)
    );
}
