//! Named children: `ChildSpec::named` (a named server in one line), `ChildRef` (a handle
//! that follows a supervised child across its restarts), `local_name` in supervisor
//! options, and `StartChildError::already_started`.

mod common;
use arbor_core::*;
use arbor_supervisor::*;
use common::{eventually, rt};

/// Counts the calls it answers; its count starts at its argument.
struct Counter(u64);

impl GenServer for Counter {
    type Args = u64;
    type Info = ();
    type Call = ();
    type Reply = u64;

    fn init(n: u64, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Counter(n))
    }

    fn handle_call(&mut self, (): (), _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
        self.0 += 1;
        CallFlow::Reply(self.0)
    }
}

fn quiet_rt() -> Runtime {
    Runtime::builder()
        .worker_threads(2)
        .crash_reports(CrashReports::Off)
        .build()
        .unwrap()
}

#[test]
fn a_named_server_child_in_one_line_and_a_handle_that_follows_its_restarts() {
    let _rt = quiet_rt();
    let sup = Supervisor::start(
        vec![ChildSpec::named::<Counter>(LocalName::new("counter"), 10)],
        SupervisorOpts::new(Strategy::OneForOne),
    )
    .unwrap();
    let counter: ChildRef<ServerRef<Counter>> = ChildRef::local("counter");
    assert_eq!(counter.name(), "counter");
    assert_eq!(sup.which_children().unwrap()[0].id, "counter", "the id is the name");
    assert_eq!(counter.get().unwrap().call(()), Ok(11));
    assert_eq!(counter.get().unwrap().call(()), Ok(12));

    let first = counter.pid().unwrap();
    kill(first);
    assert!(
        eventually(|| counter.pid().is_some_and(|p| p != first)),
        "restarted under its name"
    );
    assert_eq!(
        counter.get().unwrap().call(()),
        Ok(11),
        "a fresh server, reached by the same handle"
    );
}

#[test]
fn a_nested_dynamic_supervisor_reached_across_its_restarts() {
    let _rt = quiet_rt();
    let root = Supervisor::start(
        vec![DynamicSupervisor::child_spec(
            "rooms",
            DynamicOpts::new().local_name("rooms"),
        )],
        SupervisorOpts::new(Strategy::OneForOne),
    )
    .unwrap();
    let rooms: ChildRef<DynamicSupervisor> = ChildRef::local("rooms");
    for n in 0..3 {
        rooms
            .get()
            .unwrap()
            .start_child(ChildSpec::server::<Counter>("c", n))
            .unwrap();
    }
    assert_eq!(rooms.get().unwrap().count_children().unwrap().active, 3);

    // Three restarts of the nested supervisor (within the root's intensity of 3 in 5 s):
    // the same handle reaches each new one.
    for round in 0..3 {
        let before = rooms.pid().unwrap();
        kill(before);
        assert!(eventually(|| rooms.pid().is_some_and(|p| p != before)), "round {round}");
        let now = rooms.get().unwrap();
        assert_eq!(
            now.count_children().unwrap().active,
            0,
            "a restarted supervisor starts empty"
        );
        let child = now.start_child(ChildSpec::server::<Counter>("c", 100)).unwrap();
        assert_eq!(ServerRef::<Counter>::from_pid(child).unwrap().call(()), Ok(101));
    }
    assert!(root.is_alive());
}

#[test]
fn a_child_ref_says_no_proc_while_nothing_holds_the_name() {
    let rt = quiet_rt();
    let missing: ChildRef<DynamicSupervisor> = ChildRef::local("nobody");
    assert_eq!(missing.get().err(), Some(NoProc));
    assert_eq!(missing.pid(), None);
    // A process of another type under the name: a checked downcast, still NoProc.
    let c = rt
        .start_with::<Counter>(0, StartOpts::new().local_name("nobody"))
        .unwrap();
    assert_eq!(missing.pid(), Some(c.pid()));
    assert!(missing.get().is_err());
    assert!(ChildRef::<ServerRef<Counter>>::local("nobody").get().is_ok());
}

#[test]
fn start_unless_it_runs_in_one_line() {
    let _rt = rt();
    let sup = DynamicSupervisor::start(DynamicOpts::new()).unwrap();
    let spec = || ChildSpec::named::<Counter>(LocalName::new("only"), 0);
    let first = sup.start_child(spec()).unwrap();
    let second = sup.start_child(spec()).or_else(StartChildError::already_started);
    assert_eq!(second, Ok(first));
    assert_eq!(sup.count_children().unwrap().active, 1, "one stored child");
    assert_eq!(
        sup.start_child(ChildSpec::new("", || Err(StartError::Ignore)))
            .or_else(StartChildError::already_started),
        Err(StartChildError::Spec(SpecError::EmptyId)),
        "other errors are handed back"
    );
    sup.stop().unwrap();
}
