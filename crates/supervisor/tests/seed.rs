//! The seed's program (Recording under a DynamicSupervisor): S74–S79, with a 10 ms interval.
//! The registry crate is not ready, so names come from a small `Naming` written here.

mod common;

use arbor_core::*;
use arbor_supervisor::*;
use common::*;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const INTERVAL: Duration = Duration::from_millis(10);

/// A minimal unique-name table: enough for via-names in these tests.
#[derive(Clone, Default)]
struct Names(Arc<Mutex<HashMap<String, Pid>>>);

struct Via {
    names: Names,
    key: String,
}

impl Names {
    fn via(&self, key: String) -> Via {
        Via {
            names: self.clone(),
            key,
        }
    }
    fn lookup(&self, key: &str) -> Option<Pid> {
        self.0.lock().get(key).copied()
    }
}

impl Naming for Via {
    fn register(&self, pid: Pid) -> Result<(), NameError> {
        let mut t = self.names.0.lock();
        match t.get(&self.key) {
            Some(holder) if *holder != pid && is_alive(*holder) => Err(NameError::Taken(*holder)),
            _ => {
                t.insert(self.key.clone(), pid);
                Ok(())
            }
        }
    }
    fn unregister(&self, pid: Pid) {
        let mut t = self.names.0.lock();
        if t.get(&self.key) == Some(&pid) {
            t.remove(&self.key);
        }
    }
    fn whereis(&self) -> Option<Pid> {
        self.names.lookup(&self.key).filter(|p| is_alive(*p))
    }
    fn describe(&self) -> String {
        format!("via {:?}", self.key)
    }
}

/// What the tests observe of the Recordings.
#[derive(Clone, Default)]
struct Seen {
    lines: Log,
    inits: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Args {
    event_id: u64,
    seen: Seen,
}

/// The seed's worker.ex (quoted in `docs/guide.md`).
struct Recording {
    state: u64,
    seen: Seen,
}

enum Msg {
    Work,
}

impl GenServer for Recording {
    type Args = Args;
    type Info = Msg;
    type Call = ();
    type Reply = u64;

    fn init(args: Args, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        args.seen.inits.fetch_add(1, Ordering::SeqCst);
        ctx.send_self(Msg::Work);
        Ok(Recording {
            state: args.event_id,
            seen: args.seen,
        })
    }

    fn handle_info(&mut self, Msg::Work: Msg, ctx: &mut Context<'_, Self>) -> Flow {
        let line = format!("{} Important stuff in progress...", self.state);
        println!("{line}");
        self.seen.lines.push(line);
        if self.state <= 20 {
            ctx.send_after(INTERVAL, Msg::Work);
            self.state += 1;
            Flow::Continue
        } else {
            Flow::Stop(ExitReason::Normal)
        }
    }

    fn handle_call(&mut self, _: (), _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(self.state)
    }
}

/// The seed's `Recording.start_link`: a via-name, and AlreadyStarted mapped to the running pid.
fn start_link(names: &Names, args: Args) -> Result<Pid, StartError> {
    let name = names.via(format!("{}_recording", args.event_id));
    match Recording::start_link(args, StartOpts::new().name(name)) {
        Err(StartError::AlreadyStarted(pid)) => Ok(pid),
        other => other.map(|s| s.pid()),
    }
}

/// The seed's `start_recording`.
fn start_recording(
    sup: &DynamicSupervisor,
    names: &Names,
    seen: &Seen,
    event_id: u64,
    restart: Restart,
) -> Result<Pid, StartChildError> {
    let (names, seen) = (names.clone(), seen.clone());
    let spec = ChildSpec::new("Recording", move || {
        start_link(
            &names,
            Args {
                event_id,
                seen: seen.clone(),
            },
        )
    })
    .restart(restart);
    sup.start_child(spec)
}

fn lines(from: u64) -> Vec<String> {
    (from..=21)
        .map(|n| format!("{n} Important stuff in progress..."))
        .collect()
}

fn setup() -> (Runtime, DynamicSupervisor, Names, Seen) {
    let rt = rt();
    let sup = DynamicSupervisor::start_link(DynamicOpts::new().runtime(rt.handle())).unwrap();
    (rt, sup, Names::default(), Seen::default())
}

#[test]
fn s74_one_life_prints_from_event_id_to_21() {
    let (_rt, sup, names, seen) = setup();
    start_recording(&sup, &names, &seen, 17, Restart::Transient).unwrap();
    assert!(eventually(|| sup.count_children().unwrap().specs == 0));
    assert_eq!(seen.lines.get(), lines(17));
    sup.stop().unwrap();
}

#[test]
fn s75_permanent_restarts_normal_stop_until_the_fourth_exit() {
    let (_rt, sup, names, seen) = setup();
    let first = start_recording(&sup, &names, &seen, 17, Restart::Permanent).unwrap();
    // Four lives of ~40 ms fit in 5 s: the 4th exit exceeds 3 restarts in 5 s.
    assert_eq!(sup.wait_exit(DEADLINE), Some(ExitReason::Shutdown));
    assert_eq!(seen.inits.load(Ordering::SeqCst), 4);
    let want: Vec<String> = (0..4).flat_map(|_| lines(17)).collect();
    assert_eq!(seen.lines.get(), want);
    assert!(!is_alive(first));
    assert_eq!(names.via("17_recording".into()).whereis(), None);
}

#[test]
fn s76_transient_normal_stop_not_restarted() {
    let (_rt, sup, names, seen) = setup();
    start_recording(&sup, &names, &seen, 17, Restart::Transient).unwrap();
    assert!(eventually(|| sup.count_children().unwrap() == ChildCounts::default()));
    assert_eq!(seen.lines.get(), lines(17));
    assert_eq!(seen.inits.load(Ordering::SeqCst), 1);
    assert_eq!(names.via("17_recording".into()).whereis(), None);
    assert!(sup.is_alive());
    sup.stop().unwrap();
}

#[test]
fn s77_temporary_not_restarted() {
    let (_rt, sup, names, seen) = setup();
    start_recording(&sup, &names, &seen, 17, Restart::Temporary).unwrap();
    assert!(eventually(|| sup.count_children().unwrap() == ChildCounts::default()));
    assert_eq!(seen.lines.get(), lines(17));
    assert_eq!(seen.inits.load(Ordering::SeqCst), 1);
    assert_eq!(names.lookup("17_recording"), None, "name released at exit");
    sup.stop().unwrap();
}

#[test]
fn s78_same_event_twice_yields_the_same_pid_and_one_child() {
    let (_rt, sup, names, seen) = setup();
    // event 5: a life of ~160 ms, long enough to start it twice while it runs.
    let a = start_recording(&sup, &names, &seen, 5, Restart::Permanent).unwrap();
    let b = start_recording(&sup, &names, &seen, 5, Restart::Permanent).unwrap();
    assert_eq!(a, b);
    assert_eq!(seen.inits.load(Ordering::SeqCst), 1, "no second init");
    let c = sup.count_children().unwrap();
    assert_eq!((c.specs, c.active), (1, 1));
    assert_eq!(sup.which_children().unwrap().len(), 1);
    // Exactly one restart per exit: after the first life ends, a second life starts, once.
    assert!(eventually(|| seen.lines.count("21 Important stuff in progress...") == 1));
    assert!(eventually(|| seen.inits.load(Ordering::SeqCst) == 2));
    let which = sup.which_children().unwrap();
    assert_eq!(which.len(), 1);
    assert_eq!(which[0].restarts, 1);
    let second = which[0].status.pid().unwrap();
    assert_ne!(second, a);
    sup.terminate_child(second).unwrap();
    assert_eq!(seen.inits.load(Ordering::SeqCst), 2);
    assert_eq!(sup.count_children().unwrap(), ChildCounts::default());
    sup.stop().unwrap();
}

#[test]
fn s79_after_a_transient_life_the_same_event_gets_a_new_pid() {
    let (_rt, sup, names, seen) = setup();
    let first = start_recording(&sup, &names, &seen, 19, Restart::Transient).unwrap();
    assert!(eventually(|| sup.count_children().unwrap().specs == 0));
    let second = start_recording(&sup, &names, &seen, 19, Restart::Transient).unwrap();
    assert_ne!(first, second);
    assert!(eventually(|| sup.count_children().unwrap().specs == 0));
    let want: Vec<String> = lines(19).into_iter().chain(lines(19)).collect();
    assert_eq!(seen.lines.get(), want, "state starts again from event_id");
    sup.stop().unwrap();
}

#[test]
fn s79_direct_start_link_returns_the_supervised_pid() {
    let (rt, sup, names, seen) = setup();
    let supervised = start_recording(&sup, &names, &seen, 5, Restart::Transient).unwrap();
    let args = Args {
        event_id: 5,
        seen: seen.clone(),
    };
    let name = names.via("5_recording".into());
    let direct = match Recording::start_link(args, StartOpts::new().runtime(rt.handle()).name(name)) {
        Err(StartError::AlreadyStarted(pid)) => pid,
        other => panic!("expected AlreadyStarted, got {other:?}"),
    };
    assert_eq!(direct, supervised);
    assert_eq!(seen.inits.load(Ordering::SeqCst), 1);
    sup.stop().unwrap();
}
