//! Setters and getters share their names: an option set with `x(v)` reads back with
//! `get_x()` (the rule of `std::process::Command`), across ChildSpec, StartOpts, the
//! supervisors' options and RegistryOpts.

use arbor::prelude::*;
use arbor::supervisor::{ChildSpec, ChildType, DynamicOpts, Restart, Shutdown, Strategy, SupervisorOpts};
use std::time::Duration;

#[test]
fn child_spec() {
    let spec = ChildSpec::new("w", || Err(StartError::Ignore))
        .restart(Restart::Transient)
        .shutdown(Shutdown::BrutalKill)
        .child_type(ChildType::Supervisor);
    assert_eq!(spec.id(), "w");
    assert_eq!(spec.get_restart(), Restart::Transient);
    assert_eq!(spec.get_shutdown(), Shutdown::BrutalKill);
    assert_eq!(spec.get_child_type(), ChildType::Supervisor);
    let defaults = ChildSpec::new("d", || Err(StartError::Ignore));
    assert_eq!(defaults.get_restart(), Restart::Permanent);
    assert_eq!(defaults.get_shutdown(), Shutdown::Timeout(Duration::from_secs(5)));
    assert_eq!(defaults.get_child_type(), ChildType::Worker);
}

#[test]
fn start_opts() {
    let rt = Runtime::new().unwrap();
    let opts = StartOpts::new()
        .local_name("kv")
        .runtime(rt.handle())
        .timeout(Duration::from_secs(2));
    assert_eq!(opts.get_name().unwrap().describe(), "kv");
    assert_eq!(opts.get_runtime().unwrap().name(), rt.name());
    assert_eq!(opts.get_timeout(), Some(Duration::from_secs(2)));
    let none = StartOpts::new();
    assert!(none.get_name().is_none() && none.get_runtime().is_none() && none.get_timeout().is_none());
}

#[test]
fn supervisor_options() {
    let d = DynamicOpts::new()
        .max_restarts(7)
        .max_seconds(9)
        .max_children(3)
        .local_name("rooms");
    assert_eq!(d.get_max_restarts(), 7);
    assert_eq!(d.get_max_seconds(), 9);
    assert_eq!(d.get_max_period(), Duration::from_secs(9));
    assert_eq!(d.get_max_children(), Some(3));
    assert_eq!(d.get_name().unwrap().describe(), "rooms");
    assert!(d.get_runtime().is_none());

    let s = SupervisorOpts::new(Strategy::RestForOne).max_period(Duration::from_millis(1500));
    assert_eq!(s.get_strategy(), Strategy::RestForOne);
    assert_eq!(s.get_max_period(), Duration::from_millis(1500));
    assert_eq!(s.get_max_seconds(), 1);
    assert_eq!(s.get_max_restarts(), 3);
}

#[test]
fn registry_options() {
    let o: RegistryOpts<String> = RegistryOpts::named("Chat.Rooms").partitions(4);
    assert_eq!(o.get_name(), Some("Chat.Rooms"));
    assert_eq!(o.get_partitions(), Some(4));
}
