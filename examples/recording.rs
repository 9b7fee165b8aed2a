//! The seed's program (its Elixir is quoted in `docs/guide.md`): Recording servers named through a
//! Registry, under a DynamicSupervisor, both children of the application's root Supervisor.
//!
//! ```elixir
//! # application.ex
//! children = [
//!   {Registry, keys: :unique, name: EventGenServer},
//!   ReactPhoenix.Dynamic.Supervisor,
//! ]
//! ```
//!
//! `cargo run --example recording` starts recording 17 (it prints 17 … 21, one line per
//! interval), starts it a second time (the same pid comes back: the name is taken), and
//! watches the `:permanent` child be restarted after each `:normal` stop until the 4th exit
//! within 5 s takes the DynamicSupervisor down; the root supervisor then starts a fresh
//! one, and the program shuts the whole tree down. The interval is 20 ms instead of the
//! seed's 1000 ms, so the run is short.

use arbor::prelude::*;
use arbor::registry::{Registry, RegistryOpts};
use arbor::supervisor::{render_tree, ChildSpec, DynamicOpts, DynamicSupervisor, Strategy, Supervisor, SupervisorOpts};
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_millis(20);
const EVENTS: &str = "EventGenServer";
const DYNAMIC_SUPERVISOR: &str = "ReactPhoenix.Dynamic.Supervisor";

/// worker.ex: `ReactPhoenix.Dynamic.Recording`.
struct Recording {
    state: u64,
}

enum Msg {
    Work,
}

impl GenServer for Recording {
    type Args = u64; // event_id
    type Info = Msg;
    type Call = ();
    type Reply = u64;

    fn init(event_id: u64, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.send_self(Msg::Work); // send(self(), :work)
        Ok(Recording { state: event_id })
    }

    fn handle_info(&mut self, Msg::Work: Msg, ctx: &mut Context<'_, Self>) -> Flow {
        // do important stuff
        println!("{} Important stuff in progress...", self.state);
        if self.state <= 20 {
            ctx.send_after(INTERVAL, Msg::Work); // Process.send_after(self(), :work, 1000)
            self.state += 1;
            Flow::Continue
        } else {
            // will restart if restart strategy :permanent
            Flow::Stop(ExitReason::Normal)
        }
    }

    fn handle_call(&mut self, _: (), _from: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(self.state)
    }
}

impl Recording {
    /// `Recording.start_link(event_id)`: registers `"#{event_id}_recording"` in the
    /// `EventGenServer` registry; `{:error, {:already_started, pid}}` maps to `{:ok, pid}`.
    fn start(events: &Registry<String>, event_id: u64) -> Result<Pid, StartError> {
        let name = events.via(format!("{event_id}_recording"));
        match Recording::start_link(event_id, StartOpts::new().name(name)) {
            Err(StartError::AlreadyStarted(pid)) => Ok(pid),
            other => other.map(|server| server.pid()),
        }
    }
}

/// supervisor.ex: `ReactPhoenix.Dynamic.Supervisor.start_recording(event_id)`, with the spec
/// `%{id: Recording, start: {Recording, :start_link, [event_id]}}`.
fn start_recording(sup: &DynamicSupervisor, events: &Registry<String>, event_id: u64) -> Result<Pid, StartError> {
    let events = events.clone();
    let spec = ChildSpec::new("Recording", move || Recording::start(&events, event_id));
    Ok(sup.start_child(spec)?)
}

/// The DynamicSupervisor the application runs now (it is restarted with a new pid).
fn dynamic_supervisor(app: &Supervisor) -> Option<DynamicSupervisor> {
    app.child_pid(DYNAMIC_SUPERVISOR)
        .ok()
        .flatten()
        .and_then(DynamicSupervisor::from_pid)
}

/// What this run shows, printed before it starts.
const INTRO: &str = "\
This is the seed's program with one change: Recording works every 20 ms, not every 1 s.
Why faster: a life of recording 17 (it prints 17, 18, 19, 20, 21, then stops with :normal and,
  being :permanent, is restarted) takes 4 steps, so 80 ms here instead of 4 s, and the run
  ends in well under a second.
What the end shows: at 1 s a step, lives of 4 s never put 4 restarts within 5 s, so the
  seed's program restarts recording 17 forever. At 20 ms, the 4th exit comes within 5 s,
  past the DynamicSupervisor's limit of 3 restarts in 5 s: it gives up and exits with
  :shutdown, taking recording 17 and its name with it, and the application's root supervisor
  starts a fresh, empty DynamicSupervisor (restarts=1 in the last tree below).
";

fn main() {
    print!("{INTRO}");
    let rt = Runtime::new().expect("runtime");

    // application.ex: the Registry first, then the DynamicSupervisor (strategy: :one_for_one).
    let events: Registry<String> = Registry::new(RegistryOpts::named(EVENTS));
    let children = vec![
        ChildSpec::new(EVENTS, events.child_start()),
        DynamicSupervisor::child_spec(DYNAMIC_SUPERVISOR, DynamicOpts::new()),
    ];
    let app = Supervisor::start_link(children, SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()))
        .expect("application starts");

    let sup = dynamic_supervisor(&app).expect("dynamic supervisor running");
    let pid = start_recording(&sup, &events, 17).expect("recording starts");
    println!("started recording 17 as {pid}");
    // The same event again: the name is taken, so the running pid comes back (S78).
    let again = start_recording(&sup, &events, 17).expect("recording is running");
    println!("started recording 17 again: {again} (same pid: {})", again == pid);
    println!(
        "Registry.lookup(EventGenServer, \"17_recording\") = {:?}",
        events.lookup("17_recording")
    );
    print!("{}", render_tree(app.pid()));

    // Lives of ~100 ms each: the 4th :normal exit within 5 s exceeds 3 restarts in 5 s, the
    // DynamicSupervisor exits with :shutdown, and the root supervisor restarts it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let restarted = |app: &Supervisor| dynamic_supervisor(app).is_some_and(|s| s.pid() != sup.pid());
    while !restarted(&app) {
        assert!(
            Instant::now() < deadline,
            "the DynamicSupervisor was not restarted within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("the DynamicSupervisor reached its restart intensity; the application restarted it:");
    println!(
        "Registry.lookup(EventGenServer, \"17_recording\") = {:?}",
        events.lookup("17_recording")
    );
    print!("{}", render_tree(app.pid()));

    rt.shutdown();
    println!("shut down cleanly");
}
