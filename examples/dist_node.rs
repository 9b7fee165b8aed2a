//! An arbor node that an Erlang or Elixir cluster can drive (`docs/dist.md` has an iex
//! session):
//!
//! ```text
//! cargo run --example dist_node -- --name arbor@127.0.0.1 --cookie secret [--epmd-port N]
//! ```
//!
//! It runs until killed and exports two servers, both under the application's root
//! supervisor:
//! - `kv`: `{:put, key, value}` → `:ok`; `{:get, key}` → `{:ok, value}` or `:error`; the
//!   cast `{:delete, key}`; `:crash` panics (the caller gets the exit reason, the
//!   supervisor restarts it, empty); `{:call, node, name, request}` makes arbor call that
//!   BEAM server and reply with its answer, or `{:error, reason}` (`:noproc`, `:timeout`,
//!   `:nodedown` ...). Keys are binaries, values any term.
//! - `recordings`: `{:start_recording, event_id}` → `{:ok, pid}`, the pid of the seed's
//!   Recording (`examples/recording.rs`) started under the seed's DynamicSupervisor and
//!   named `"#{event_id}_recording"` in its Registry (the same event twice gives the same
//!   pid). The BEAM can monitor it: it stops `:normal` after its run, one second a step
//!   from `event_id` to 21, as the seed's does. It is a transient child here, so that a
//!   node left running does not restart finished recordings forever.

use arbor::prelude::*;
use arbor::supervisor::{ChildSpec, DynamicOpts, DynamicSupervisor, Restart, Strategy, Supervisor, SupervisorOpts};
use arbor_dist::{term_enum, Atom, Bytes, Node, Term};
use std::collections::HashMap;
use std::time::Duration;

const EVENTS: &str = "EventGenServer";
const RECORDINGS_SUP: &str = "recordings_sup";

// ---- kv --------------------------------------------------------------------------------

/// `kv`'s calls, read from Elixir terms: `{:put, key, value}`, `{:get, key}`, `:crash`,
/// `{:call, node, name, request}`.
enum KvCall {
    Put(Bytes, Term),
    Get(Bytes),
    Crash,
    Call(Atom, Atom, Term),
}
term_enum!(KvCall { Put(key, value) as "put", Get(key) as "get", Crash as "crash", Call(node, name, request) as "call" });

/// `kv`'s casts: `{:delete, key}`.
enum KvCast {
    Delete(Bytes),
}
term_enum!(KvCast { Delete(key) as "delete" });

struct Kv {
    map: HashMap<Vec<u8>, Term>,
    node: Node,
}

impl GenServer for Kv {
    type Args = Node;
    type Info = KvCast;
    type Call = KvCall;
    type Reply = Term;

    fn init(node: Node, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Kv {
            map: HashMap::new(),
            node,
        })
    }

    fn handle_call(&mut self, req: KvCall, _from: ReplyTo<Term>, _ctx: &mut Context<'_, Self>) -> CallFlow<Term> {
        match req {
            KvCall::Put(key, value) => {
                self.map.insert(key.0, value);
                CallFlow::Reply(Term::atom("ok"))
            }
            KvCall::Get(key) => CallFlow::Reply(match self.map.get(&key.0) {
                Some(v) => Term::tuple([Term::atom("ok"), v.clone()]),
                None => Term::atom("error"),
            }),
            KvCall::Crash => panic!("kv was asked to crash"),
            KvCall::Call(node, name, request) => {
                // A remote call inside a handler: the wait holds no worker thread.
                let answer = self.node.call((name, node), &request, Duration::from_secs(5));
                CallFlow::Reply(match answer {
                    Ok(reply) => reply,
                    Err(e) => Term::tuple([Term::atom("error"), e.to_term()]),
                })
            }
        }
    }

    fn handle_info(&mut self, KvCast::Delete(key): KvCast, _ctx: &mut Context<'_, Self>) -> Flow {
        self.map.remove(&key.0);
        Flow::Continue
    }
}

// ---- the seed's Recording ---------------------------------------------------------------

struct Recording {
    state: u64,
}

enum Work {
    Work,
}

impl GenServer for Recording {
    type Args = u64;
    type Info = Work;
    type Call = ();
    type Reply = u64;

    fn init(event_id: u64, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.send_self(Work::Work);
        Ok(Recording { state: event_id })
    }

    fn handle_info(&mut self, Work::Work: Work, ctx: &mut Context<'_, Self>) -> Flow {
        println!("{} Important stuff in progress...", self.state);
        if self.state <= 20 {
            ctx.send_after(Duration::from_secs(1), Work::Work);
            self.state += 1;
            Flow::Continue
        } else {
            Flow::Stop(ExitReason::Normal)
        }
    }
}

/// `recordings`: the BEAM's door to the DynamicSupervisor of Recordings.
struct Recordings {
    node: Node,
    events: Registry<String>,
}

/// `recordings`' calls: `{:start_recording, event_id}`.
enum RecordingsCall {
    StartRecording(u64),
}
term_enum!(RecordingsCall { StartRecording(event_id) as "start_recording" });

impl GenServer for Recordings {
    type Args = (Node, Registry<String>);
    type Info = Term;
    type Call = RecordingsCall;
    type Reply = Term;

    fn init((node, events): Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Recordings { node, events })
    }

    fn handle_call(
        &mut self,
        RecordingsCall::StartRecording(event_id): RecordingsCall,
        _from: ReplyTo<Term>,
        _ctx: &mut Context<'_, Self>,
    ) -> CallFlow<Term> {
        let Some(sup) = DynamicSupervisor::whereis(&self.events.via(RECORDINGS_SUP.to_string())) else {
            return CallFlow::Reply(Term::tuple([Term::atom("error"), Term::atom("noproc")]));
        };
        let events = self.events.clone();
        let spec = ChildSpec::new("Recording", move || {
            let name = events.via(format!("{event_id}_recording"));
            match Recording::start_link(event_id, StartOpts::new().name(name)) {
                Err(StartError::AlreadyStarted(pid)) => Ok(pid),
                other => other.map(|server| server.pid()),
            }
        })
        .restart(Restart::Transient);
        CallFlow::Reply(match sup.start_child(spec) {
            Ok(pid) => match self.node.ext_pid(pid) {
                Some(ext) => Term::tuple([Term::atom("ok"), Term::Pid(ext)]),
                None => Term::tuple([Term::atom("error"), Term::atom("noproc")]),
            },
            Err(e) => Term::tuple([Term::atom("error"), Term::binary(e.to_string())]),
        })
    }
}

// ---- main ------------------------------------------------------------------------------

fn arg(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: dist_node --name NAME@HOST --cookie COOKIE [--epmd-port N]";
    let name = arg(&args, "--name").expect(usage);
    let rt = Runtime::new().expect("runtime");
    let mut builder = Node::builder(&name);
    if let Some(cookie) = arg(&args, "--cookie") {
        builder = builder.cookie(cookie);
    }
    if let Some(port) = arg(&args, "--epmd-port") {
        builder = builder.epmd_port(port.parse().expect("--epmd-port takes a number"));
    }
    let node = builder.start(rt.handle()).expect("the node starts (is epmd running?)");

    let events: Registry<String> = Registry::new(RegistryOpts::named(EVENTS));
    let (kv_node, rec_node, rec_events) = (node.clone(), node.clone(), events.clone());
    let children = vec![
        ChildSpec::new(EVENTS, events.child_start()),
        DynamicSupervisor::child_spec(
            RECORDINGS_SUP,
            DynamicOpts::new().name(events.via(RECORDINGS_SUP.to_string())),
        ),
        // Each start (and restart) exports the new server under its name.
        ChildSpec::new("kv", move || {
            let kv = Kv::start_link(kv_node.clone(), StartOpts::new())?;
            kv_node.register("kv", &kv);
            Ok(kv.pid())
        }),
        ChildSpec::new("recordings", move || {
            let r = Recordings::start_link((rec_node.clone(), rec_events.clone()), StartOpts::new())?;
            rec_node.register("recordings", &r);
            Ok(r.pid())
        }),
    ];
    let app = Supervisor::start_link(children, SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()))
        .expect("the application starts");
    println!("{} is up (hidden); exports kv and recordings", node.name().as_str());
    let _ = app.wait_exit(Duration::MAX);
}
