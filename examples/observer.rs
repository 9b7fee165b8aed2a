//! The seed's program (see `recording.rs` and `docs/guide.md`) with the observer on: a
//! Registry and a DynamicSupervisor under the application's root Supervisor, recording 17
//! working once a second as in the seed (and restarted after each `:normal` stop, being
//! `:permanent`), and a live page of it all.
//!
//! ```text
//! cargo run --example observer                  # runs until Ctrl-C; prints the page's URL
//! cargo run --example observer -- --seconds 30  # ends by itself after 30 s
//! ```
//!
//! Options: `--port N` (default 0: any free port), `--seconds N`, `--allow-kill` (the page
//! gets a kill button per process). While it runs, a line `crash` on standard input makes
//! recording 17 panic in its handler: the crash and its restart appear in the page's restart
//! history. The browser test in `crates/observer/tests/browser.rs` drives this program.

use arbor::prelude::*;
use arbor::registry::{Registry, RegistryOpts};
use arbor::supervisor::{ChildSpec, DynamicOpts, DynamicSupervisor, Strategy, Supervisor, SupervisorOpts};
use arbor_observer::Observer;
use std::io::BufRead;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_secs(1); // the seed's Process.send_after(self(), :work, 1000)
const EVENTS: &str = "EventGenServer";
const DYNAMIC_SUPERVISOR: &str = "ReactPhoenix.Dynamic.Supervisor";

/// worker.ex: `ReactPhoenix.Dynamic.Recording`.
struct Recording {
    state: u64,
}

enum Msg {
    Work,
    /// Not in the seed: what `crash` on standard input sends, to show a crash on the page.
    Crash,
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

    fn handle_info(&mut self, msg: Msg, ctx: &mut Context<'_, Self>) -> Flow {
        match msg {
            Msg::Work => {
                println!("{} Important stuff in progress...", self.state);
                if self.state <= 20 {
                    ctx.send_after(INTERVAL, Msg::Work);
                    self.state += 1;
                    Flow::Continue
                } else {
                    Flow::Stop(ExitReason::Normal) // restarted: the child is :permanent
                }
            }
            Msg::Crash => panic!("crash injected from standard input"),
        }
    }

    fn handle_call(&mut self, _: (), _from: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(self.state)
    }

    /// What the page shows when its pid is clicked (Erlang's `:sys.get_state`).
    fn format_state(&self) -> Option<String> {
        Some(format!("Recording {{ state: {} }}", self.state))
    }
}

fn start_recording(sup: &DynamicSupervisor, events: &Registry<String>, event_id: u64) -> Result<Pid, StartError> {
    let events = events.clone();
    let spec = ChildSpec::new("Recording", move || {
        let name = events.via(format!("{event_id}_recording"));
        match Recording::start_link(event_id, StartOpts::new().name(name)) {
            Err(StartError::AlreadyStarted(pid)) => Ok(pid),
            other => other.map(|server| server.pid()),
        }
    });
    Ok(sup.start_child(spec)?)
}

struct Args {
    port: u16,
    seconds: Option<u64>,
    allow_kill: bool,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        port: 0,
        seconds: None,
        allow_kill: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--port" => out.port = value("--port")?.parse().map_err(|e| format!("--port: {e}"))?,
            "--seconds" => out.seconds = Some(value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?),
            "--allow-kill" => out.allow_kill = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (try --port N, --seconds N, --allow-kill)"
                ))
            }
        }
    }
    Ok(out)
}

fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("observer: {e}");
            std::process::exit(2);
        }
    };
    let rt = Runtime::new().expect("runtime");

    // application.ex: the Registry first, then the DynamicSupervisor.
    let events: Registry<String> = Registry::new(RegistryOpts::named(EVENTS));
    let children = vec![
        ChildSpec::new(EVENTS, events.child_start()),
        DynamicSupervisor::child_spec(DYNAMIC_SUPERVISOR, DynamicOpts::new()),
    ];
    let app = Supervisor::start_link(children, SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()))
        .expect("application starts");
    let sup = app
        .child_pid(DYNAMIC_SUPERVISOR)
        .ok()
        .flatten()
        .and_then(DynamicSupervisor::from_pid)
        .expect("dynamic supervisor running");
    let pid = start_recording(&sup, &events, 17).expect("recording starts");
    println!("started recording 17 as {pid}");

    let observer = Observer::builder(rt.handle())
        .registry(EVENTS, &events)
        .allow_kill(args.allow_kill)
        .serve(&format!("127.0.0.1:{}", args.port))
        .expect("observer starts");
    println!("observer: {}", observer.url());

    // `crash` on standard input: recording 17 panics in its handler.
    let crash_events = events.clone();
    let _stdin = std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "crash" {
                match crash_events.send::<Recording, _>("17_recording", Msg::Crash) {
                    Ok(()) => println!("crash sent to recording 17"),
                    Err(_) => println!("recording 17 is not running"),
                }
            }
        }
    });

    match args.seconds {
        Some(s) => {
            let end = Instant::now() + Duration::from_secs(s);
            while Instant::now() < end {
                std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
            }
        }
        None => loop {
            std::thread::park();
        },
    }
    drop(observer);
    rt.shutdown();
    println!("shut down cleanly");
}
