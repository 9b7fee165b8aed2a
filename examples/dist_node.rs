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
use arbor_dist::{Bytes, FromTerm, Node, Term, TermError, ToTerm};
use std::collections::HashMap;
use std::time::Duration;

const EVENTS: &str = "EventGenServer";
const RECORDINGS_SUP: &str = "recordings_sup";

// ---- kv --------------------------------------------------------------------------------

/// `kv`'s calls, read from Elixir terms.
enum KvCall {
    Put(Bytes, Term),
    Get(Bytes),
    Crash,
    Call { node: String, name: String, request: Term },
}

impl FromTerm for KvCall {
    fn from_term(term: Term) -> Result<Self, TermError> {
        let shape = "{:put, key, value}, {:get, key}, :crash or {:call, node, name, request}";
        if term.is_atom("crash") {
            return Ok(KvCall::Crash);
        }
        let Term::Tuple(mut t) = term else {
            return Err(TermError::new(shape, &term));
        };
        let tag = t.first().and_then(|t| t.as_atom()).unwrap_or("").to_string();
        match (tag.as_str(), t.len()) {
            ("put", 3) => {
                let value = t.pop().unwrap_or(Term::atom("nil"));
                let key = Bytes::from_term(t.pop().unwrap_or(Term::atom("nil")))?;
                Ok(KvCall::Put(key, value))
            }
            ("get", 2) => Ok(KvCall::Get(Bytes::from_term(t.pop().unwrap_or(Term::atom("nil")))?)),
            ("call", 4) => {
                let request = t.pop().unwrap_or(Term::atom("nil"));
                let name = arbor_dist::Atom::from_term(t.pop().unwrap_or(Term::atom("nil")))?;
                let node = arbor_dist::Atom::from_term(t.pop().unwrap_or(Term::atom("nil")))?;
                Ok(KvCall::Call {
                    node: node.as_str().to_string(),
                    name: name.as_str().to_string(),
                    request,
                })
            }
            _ => Err(TermError::new(shape, &Term::Tuple(t))),
        }
    }
}

/// `kv`'s casts: `{:delete, key}`.
struct Delete(Bytes);

impl FromTerm for Delete {
    fn from_term(term: Term) -> Result<Self, TermError> {
        let (tag, key): (arbor_dist::Atom, Bytes) = FromTerm::from_term(term)?;
        if tag.as_str() != "delete" {
            return Err(TermError::new("{:delete, key}", &tag.to_term()));
        }
        Ok(Delete(key))
    }
}

struct Kv {
    map: HashMap<Vec<u8>, Term>,
    node: Node,
}

impl GenServer for Kv {
    type Args = Node;
    type Info = Delete;
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
            KvCall::Call { node, name, request } => {
                // A remote call inside a handler: the wait holds no worker thread.
                let answer = self
                    .node
                    .call((name.as_str(), node.as_str()), &request, Duration::from_secs(5));
                CallFlow::Reply(match answer {
                    Ok(reply) => reply,
                    Err(e) => Term::tuple([Term::atom("error"), e.to_term()]),
                })
            }
        }
    }

    fn handle_info(&mut self, Delete(key): Delete, _ctx: &mut Context<'_, Self>) -> Flow {
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

struct StartRecording(u64);

impl FromTerm for StartRecording {
    fn from_term(term: Term) -> Result<Self, TermError> {
        let (tag, id): (arbor_dist::Atom, u64) = FromTerm::from_term(term)?;
        if tag.as_str() != "start_recording" {
            return Err(TermError::new("{:start_recording, event_id}", &tag.to_term()));
        }
        Ok(StartRecording(id))
    }
}

impl GenServer for Recordings {
    type Args = (Node, Registry<String>);
    type Info = Term;
    type Call = StartRecording;
    type Reply = Term;

    fn init((node, events): Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Recordings { node, events })
    }

    fn handle_call(
        &mut self,
        StartRecording(event_id): StartRecording,
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
