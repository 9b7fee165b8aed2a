//! Named children through a registry's via-names: `ChildSpec::named` with a via-name,
//! `ChildRef` over a via-name following a restart, and "start it unless it runs".

use arbor::prelude::*;
use arbor::supervisor::{ChildRef, ChildSpec, DynamicOpts, DynamicSupervisor, StartChildError};
use std::time::{Duration, Instant};

struct Room(Vec<String>);

impl GenServer for Room {
    type Args = ();
    type Info = String;
    type Call = ();
    type Reply = Vec<String>;

    fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Room(Vec::new()))
    }

    fn handle_info(&mut self, text: String, _ctx: &mut Context<'_, Self>) -> Flow {
        self.0.push(text);
        Flow::Continue
    }

    fn handle_call(&mut self, (): (), _: ReplyTo<Vec<String>>, _: &mut Context<'_, Self>) -> CallFlow<Vec<String>> {
        CallFlow::Reply(self.0.clone())
    }
}

#[test]
fn a_via_named_child_reached_across_a_restart() -> Result<(), arbor::Error> {
    let rt = Runtime::builder().crash_reports(arbor::CrashReports::Off).build()?;
    let names: Registry<String> = Registry::start_link(RegistryOpts::new())?;
    let rooms = DynamicSupervisor::start(DynamicOpts::new())?;
    let spec = || ChildSpec::named::<Room>(names.via("lobby".to_string()), ());
    let lobby: ChildRef<ServerRef<Room>> = ChildRef::new(names.via("lobby".to_string()));

    let first = rooms.start_child(spec())?;
    assert_eq!(
        rooms.start_child(spec()).or_else(StartChildError::already_started)?,
        first
    );
    lobby.get()?.send("hello".into())?;
    assert_eq!(lobby.get()?.call(())?, vec!["hello".to_string()]);

    arbor::kill(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lobby.pid().map_or(true, |p| p == first) {
        assert!(Instant::now() < deadline, "not restarted");
        std::thread::yield_now();
    }
    assert_eq!(
        lobby.get()?.call(())?,
        Vec::<String>::new(),
        "a fresh room under the same name"
    );
    assert_eq!(rooms.count_children()?.active, 1);
    rt.shutdown();
    Ok(())
}
