//! The seed's program: Recording servers under a DynamicSupervisor, itself a child of the
//! application's root Supervisor.
//!
//! `cargo run --example recording` prints the 17…21 block of one recording, restarted (the
//! spec is `:permanent`, as in the seed) until the 4th exit within 5 s takes the
//! DynamicSupervisor down; the root supervisor then starts a fresh one, and the program
//! shuts the whole tree down. The interval is 20 ms instead of the seed's 1000 ms, so the
//! run is short.

use arbor_core::{CallFlow, Context, ExitReason, Flow, GenServer, Pid, ReplyTo, Runtime, StartError, StartOpts};
use arbor_supervisor::{render_tree, ChildSpec, DynamicOpts, DynamicSupervisor, Strategy, Supervisor, SupervisorOpts};
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_millis(20);
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
            ctx.send_after(INTERVAL, Msg::Work);
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
    /// `Recording.start_link(event_id)`: AlreadyStarted maps to the running pid, as in the
    /// seed.
    fn start(event_id: u64) -> Result<Pid, StartError> {
        // REGISTRY: once arbor-registry lands, name the process as the seed does:
        //   let name = events.via(format!("{event_id}_recording"));
        //   Recording::start_link(event_id, StartOpts::new().name(name))
        let opts = StartOpts::new();
        match Recording::start_link(event_id, opts) {
            Err(StartError::AlreadyStarted(pid)) => Ok(pid),
            other => other.map(|server| server.pid()),
        }
    }
}

/// supervisor.ex: `ReactPhoenix.Dynamic.Supervisor.start_recording(event_id)`.
fn start_recording(app: &Supervisor, event_id: u64) -> Result<Pid, StartError> {
    let sup = dynamic_supervisor(app).ok_or(StartError::NoRuntime)?;
    let spec = ChildSpec::new("Recording", move || Recording::start(event_id));
    Ok(sup.start_child(spec)?)
}

fn dynamic_supervisor(app: &Supervisor) -> Option<DynamicSupervisor> {
    app.child_pid(DYNAMIC_SUPERVISOR)
        .ok()
        .flatten()
        .and_then(DynamicSupervisor::from_pid)
}

fn main() {
    let rt = Runtime::new().expect("runtime");

    // application.ex: the application's root supervisor and its children.
    let children = vec![
        // REGISTRY: the Registry `EventGenServer` goes here, *before* the DynamicSupervisor,
        // so that it is started first and stopped last:
        //   Registry::child_spec("EventGenServer", RegistryOpts::new().keys_unique()),
        DynamicSupervisor::child_spec(DYNAMIC_SUPERVISOR, DynamicOpts::new()), // strategy: :one_for_one
    ];
    let app = Supervisor::start_link(children, SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()))
        .expect("application starts");

    let first_sup = dynamic_supervisor(&app).expect("dynamic supervisor running").pid();
    let pid = start_recording(&app, 17).expect("recording starts");
    println!("started recording 17 as {pid}");
    print!("{}", render_tree(app.pid()));

    // Four lives of ~100 ms each fit in 5 s: the 4th :normal exit exceeds 3 restarts in 5 s,
    // the DynamicSupervisor exits with :shutdown, and the root supervisor restarts it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let restarted = |app: &Supervisor| dynamic_supervisor(app).is_some_and(|s| s.pid() != first_sup);
    while !restarted(&app) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("the DynamicSupervisor reached its restart intensity; the application restarted it:");
    print!("{}", render_tree(app.pid()));

    rt.shutdown();
    println!("shut down cleanly");
}
