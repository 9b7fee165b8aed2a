//! The seed's program in virtual time: Recording under a DynamicSupervisor, named through
//! a Registry, both children of the application's Supervisor, with the seed's **1 s**
//! `send_after` (not shortened). On a deterministic runtime its lives, restarts and the
//! restart-intensity escalation run in virtual time, in well under a second of real time,
//! and every instant is exact.

use arbor::prelude::*;
use arbor::sim::{SimConfig, SimRuntime};
use arbor::supervisor::{ChildSpec, DynamicOpts, DynamicSupervisor, Strategy, Supervisor, SupervisorOpts};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The seed's interval: `Process.send_after(self(), :work, 1000)`.
const INTERVAL: Duration = Duration::from_secs(1);
const EVENTS: &str = "EventGenServer";
const DYNAMIC_SUPERVISOR: &str = "ReactPhoenix.Dynamic.Supervisor";

/// What the Recordings print, with the virtual time of each line since the start.
#[derive(Clone)]
struct Lines {
    start: Instant,
    lines: Arc<Mutex<Vec<(Duration, u64)>>>,
}

/// worker.ex: `ReactPhoenix.Dynamic.Recording`.
struct Recording {
    state: u64,
    lines: Lines,
}

enum Msg {
    Work,
}

impl GenServer for Recording {
    type Args = (u64, Lines);
    type Info = Msg;
    type Call = ();
    type Reply = u64;

    fn init((event_id, lines): (u64, Lines), ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.send_self(Msg::Work); // send(self(), :work)
        Ok(Recording { state: event_id, lines })
    }

    fn handle_info(&mut self, Msg::Work: Msg, ctx: &mut Context<'_, Self>) -> Flow {
        // IO.puts("#{state} Important stuff in progress...")
        let at = ctx.now().duration_since(self.lines.start);
        self.lines.lines.lock().push((at, self.state));
        if self.state <= 20 {
            ctx.send_after(INTERVAL, Msg::Work); // Process.send_after(self(), :work, 1000)
            self.state += 1;
            Flow::Continue
        } else {
            Flow::Stop(ExitReason::Normal) // restarted: the child is :permanent
        }
    }

    fn handle_call(&mut self, _: (), _from: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(self.state)
    }
}

/// `Recording.start_link(event_id)` with its via-name; AlreadyStarted maps to the pid.
fn start(events: &Registry<String>, event_id: u64, lines: Lines) -> Result<Pid, StartError> {
    let name = events.via(format!("{event_id}_recording"));
    match Recording::start_link((event_id, lines), StartOpts::new().name(name)) {
        Err(StartError::AlreadyStarted(pid)) => Ok(pid),
        other => other.map(|server| server.pid()),
    }
}

fn start_recording(sup: &DynamicSupervisor, events: &Registry<String>, event_id: u64, lines: &Lines) -> Pid {
    let (events, lines) = (events.clone(), lines.clone());
    let spec = ChildSpec::new("Recording", move || start(&events, event_id, lines.clone()));
    sup.start_child(spec).expect("recording starts")
}

fn dynamic_supervisor(app: &Supervisor) -> DynamicSupervisor {
    app.child_pid(DYNAMIC_SUPERVISOR)
        .expect("the application answers")
        .and_then(DynamicSupervisor::from_pid)
        .expect("a dynamic supervisor runs")
}

/// application.ex on `sim`: the Registry, then the DynamicSupervisor with `opts`.
fn application(sim: &SimRuntime, opts: DynamicOpts) -> (Supervisor, Registry<String>) {
    // Registry names are global to the program: one per test, as tests run in parallel.
    let events: Registry<String> = Registry::new(RegistryOpts::named(format!("{EVENTS}-{}", sim.seed())));
    let children = vec![
        ChildSpec::new(EVENTS, events.child_start()),
        DynamicSupervisor::child_spec(DYNAMIC_SUPERVISOR, opts),
    ];
    let app = Supervisor::start_link(children, SupervisorOpts::new(Strategy::OneForOne).runtime(sim.handle()))
        .expect("application starts");
    (app, events)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn the_seeds_program_lives_and_restarts_in_virtual_time() {
    let real = Instant::now();
    let sim = SimConfig::new(17).build();
    let (app, events) = application(&sim, DynamicOpts::new());
    let sup = dynamic_supervisor(&app);
    let lines = Lines {
        start: sim.now(),
        lines: Arc::default(),
    };
    let pid = start_recording(&sup, &events, 17, &lines);
    // The same event again: the name is taken, so the running pid comes back (S78).
    assert_eq!(start_recording(&sup, &events, 17, &lines), pid);
    assert_eq!(events.lookup("17_recording").map(|(p, ())| p), Some(pid));
    assert_eq!(sup.count_children().unwrap().active, 1);

    // One full life: 17 at 0 s ... 21 at 4 s, one line a second; then a :normal stop, and
    // the :permanent child is restarted at once (17 again at 4 s).
    sim.advance(secs(4));
    let first: Vec<(Duration, u64)> = lines.lines.lock().clone();
    assert_eq!(
        first,
        vec![
            (secs(0), 17),
            (secs(1), 18),
            (secs(2), 19),
            (secs(3), 20),
            (secs(4), 21),
            (secs(4), 17)
        ]
    );
    let (second, ()) = events.lookup("17_recording").expect("restarted under its name");
    assert_ne!(second, pid, "a new process");

    // A minute of virtual time: a life every 4 s, each restart 4 s after the last. With
    // 3 restarts allowed in 5 s, lives of 4 s never put 4 within the window: the seed's
    // program restarts recording 17 forever, and the DynamicSupervisor never gives up.
    sim.advance(secs(56));
    assert_eq!(sim.elapsed(), secs(60));
    let all = lines.lines.lock().clone();
    let lives: Vec<Duration> = all.iter().filter(|(_, v)| *v == 17).map(|(t, _)| *t).collect();
    assert_eq!(lives, (0..=15).map(|k| secs(4 * k)).collect::<Vec<_>>());
    assert_eq!(all.len(), 15 * 5 + 1, "15 full lives and the start of the 16th");
    for life in all.chunks(5).take(15) {
        let values: Vec<u64> = life.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, vec![17, 18, 19, 20, 21]);
    }
    assert_eq!(dynamic_supervisor(&app).pid(), sup.pid(), "never escalated");
    let children = sup.which_children().unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].restarts, 15);
    let real = real.elapsed();
    println!(
        "60 s of the seed's program ran in {real:?} of real time ({} steps)",
        sim.steps()
    );
    sim.shutdown();
}

#[test]
fn the_intensity_escalation_happens_at_the_exact_virtual_instant() {
    // The same program, with the DynamicSupervisor's window widened to 20 s: restarts at
    // 4, 8, 12 and 16 s put 4 within 20 s, past the limit of 3. At 16 s exactly the
    // DynamicSupervisor exits with :shutdown, taking recording 17 and its name with it,
    // and the application's Supervisor starts a fresh one.
    let real = Instant::now();
    let sim = SimConfig::new(18).build();
    let (app, events) = application(&sim, DynamicOpts::new().max_seconds(20));
    let sup = dynamic_supervisor(&app);
    let lines = Lines {
        start: sim.now(),
        lines: Arc::default(),
    };
    start_recording(&sup, &events, 17, &lines);
    let watched = sup.pid();
    let exited = Arc::new(Mutex::new(None));
    let (e, t0) = (exited.clone(), sim.now());
    sim.monitor(watched, move |_pid: Pid, reason: &ExitReason| {
        *e.lock() = Some((arbor::now().duration_since(t0), reason.clone()));
    })
    .unwrap();

    sim.advance(secs(15));
    assert!(arbor::is_alive(watched), "3 restarts in 20 s are allowed");
    assert!(sim.run_until(secs(10), || exited.lock().is_some()));
    assert_eq!(*exited.lock(), Some((secs(16), ExitReason::Shutdown)));
    assert_eq!(sim.elapsed(), secs(16));
    let fresh = dynamic_supervisor(&app);
    assert_ne!(fresh.pid(), watched, "the application restarted its DynamicSupervisor");
    assert_eq!(fresh.count_children().unwrap().active, 0, "a fresh, empty one");
    assert_eq!(events.lookup("17_recording"), None, "the name went with recording 17");
    let children = app.which_children().unwrap();
    let dynamic = children.iter().find(|c| c.id == DYNAMIC_SUPERVISOR).unwrap();
    assert_eq!(dynamic.restarts, 1);
    // 4 full lives, the 5th cut short by the escalation at 16 s.
    let values: Vec<u64> = lines.lines.lock().iter().map(|(_, v)| *v).collect();
    assert_eq!(values.len(), 4 * 5, "the 4th restart, at 16 s, is the one refused");
    println!("the escalation at 16 s ran in {:?} of real time", real.elapsed());
    sim.shutdown();
}

#[test]
fn the_seeds_program_replays_from_its_seed() {
    let run = |seed: u64| {
        let sim = SimConfig::new(seed).build();
        let (app, events) = application(&sim, DynamicOpts::new().max_seconds(20));
        let sup = dynamic_supervisor(&app);
        let lines = Lines {
            start: sim.now(),
            lines: Arc::default(),
        };
        start_recording(&sup, &events, 17, &lines);
        start_recording(&sup, &events, 19, &lines);
        sim.advance(secs(30));
        if std::env::var("DUMP").is_ok() {
            for e in sim.trace() {
                println!("{e}");
            }
        }
        let out = (sim.trace(), lines.lines.lock().clone());
        sim.shutdown();
        out
    };
    let (trace, lines) = run(5);
    // Recording 19's lives are 2 s long: its restarts at 2, 4 and 6 s and recording 17's
    // at 4 s are 4 in 20 s, so the DynamicSupervisor escalates at 6 s.
    assert_eq!(lines.iter().filter(|(_, v)| *v == 21).count(), 4, "{lines:?}");
    assert_eq!(run(5), (trace.clone(), lines), "the same seed, the same trace");
    assert!(trace.len() > 50, "{}", trace.len());
}
