//! A periodic job with a slow dependency: the second service a newcomer writes. The job
//! fetches a value from a dependency every period, with a timeout shorter than the period;
//! an answer that comes too late skips that run (and is dropped when it arrives, never
//! delivered to a later call); the job's timer is drift-free, and the job never builds a
//! backlog of ticks. Both are supervised, each under a plain name.
//!
//! `cargo run --example periodic_job` runs the job every 100 ms until it has fetched eight
//! values (about 1.6 s: a slow answer keeps the dependency busy past the next tick too),
//! kills the dependency once on the way to show the job carrying on with the restarted one
//! (or, if the kill lands while the job waits on it, the job crashing and restarting
//! empty, as in Elixir), then shuts down. `docs/guide.md` ("The periodic job in both languages") has the Elixir
//! version and the line counts of both.

use arbor::prelude::*;
use arbor::supervisor::{ChildRef, ChildSpec, Strategy, Supervisor, SupervisorOpts};
use arbor::LocalName;
use std::time::{Duration, Instant};

// --- the periodic job ---

/// The slow dependency: every third answer takes 200 ms.
struct Dep(u64);

impl GenServer for Dep {
    type Args = ();
    type Info = ();
    type Call = ();
    type Reply = u64;

    fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Dep(0))
    }

    fn handle_call(&mut self, (): (), _: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        let slow = if self.0 % 3 == 2 { 200 } else { 10 };
        arbor::blocking(|| std::thread::sleep(Duration::from_millis(slow)));
        self.0 += 1;
        CallFlow::Reply(self.0 - 1)
    }
}

/// The job: every period, fetches a value from `Dep`, waiting at most 50 ms.
struct Job(Vec<u64>);

impl GenServer for Job {
    type Args = Duration; // the period
    type Info = (); // a tick
    type Call = (); // a request for the values fetched so far
    type Reply = Vec<u64>;

    fn init(period: Duration, ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        ctx.send_interval(period, ());
        Ok(Job(vec![]))
    }

    fn try_handle_info(&mut self, (): (), _ctx: &mut Context<'_, Self>) -> Result<Flow, ExitReason> {
        let dep = ChildRef::<ServerRef<Dep>>::local("Dep").get()?;
        match dep.call_timeout((), Duration::from_millis(50)) {
            Ok(n) => self.0.push(n),
            Err(CallError::Timeout) => println!("dependency too slow: run skipped"),
            Err(e) => return Err(e.into()),
        }
        Ok(Flow::Continue)
    }

    fn handle_call(&mut self, (): (), _: ReplyTo<Vec<u64>>, _ctx: &mut Context<'_, Self>) -> CallFlow<Vec<u64>> {
        CallFlow::Reply(self.0.clone())
    }
}

fn start(period: Duration) -> Result<Supervisor, arbor::Error> {
    let children = vec![
        ChildSpec::named::<Dep>(LocalName::new("Dep"), ()),
        ChildSpec::named::<Job>(LocalName::new("Job"), period),
    ];
    Ok(Supervisor::start_link(
        children,
        SupervisorOpts::new(Strategy::OneForOne),
    )?)
}

// --- a run of the job ---

fn main() -> Result<(), arbor::Error> {
    let rt = Runtime::new()?; // this thread's current runtime: what the job starts on
    let started = Instant::now();
    let app = start(Duration::from_millis(100))?;
    let job: ChildRef<ServerRef<Job>> = ChildRef::local("Job");
    let dep: ChildRef<ServerRef<Dep>> = ChildRef::local("Dep");
    let deadline = started + Duration::from_secs(30);
    let mut killed = false;
    loop {
        // The job is restarted (empty) if the dependency dies while the job waits on it,
        // as in Elixir: between its crash and its restart, there is no job to ask.
        let fetched = job.get().map_or(Ok(vec![]), |job| job.call(())).unwrap_or_default();
        if fetched.len() >= 4 && !killed {
            // The dependency crashes: its supervisor restarts it (counting from 0 again),
            // and the job reaches the new one through its name at its next tick.
            let pid = dep.get()?.pid();
            println!("killing the dependency ({pid})");
            arbor::kill(pid);
            killed = true;
        }
        if fetched.len() >= 8 {
            println!("fetched {fetched:?} in {:?}", started.elapsed());
            break;
        }
        assert!(Instant::now() < deadline, "the job did not fetch 8 values in 30 s");
        std::thread::sleep(Duration::from_millis(20)); // a pace for printing, not a synchronisation
    }
    println!(
        "dependency now {}; the job is still {}",
        dep.get()?.pid(),
        job.get()?.pid()
    );
    drop(app);
    rt.shutdown();
    println!("shut down cleanly");
    Ok(())
}
