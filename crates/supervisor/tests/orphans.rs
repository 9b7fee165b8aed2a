//! A supervisor killed while it starts a child leaves no child behind (the orphan defect:
//! the child was linked to a parent that had already announced its exit, so nothing would
//! ever stop it).

use arbor_core::*;
use arbor_supervisor::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

struct Worker;

impl GenServer for Worker {
    type Args = Arc<AtomicUsize>;
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init(inits: Arc<AtomicUsize>, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        inits.fetch_add(1, Ordering::SeqCst);
        Ok(Worker)
    }
}

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    cond()
}

#[test]
fn orphan_a_dynamic_supervisor_killed_during_start_child_leaves_no_child() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let sup = DynamicSupervisor::start(DynamicOpts::new().runtime(rt.handle())).unwrap();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Arc::new(Mutex::new(go_rx));
    let started_tx = Mutex::new(started_tx);
    let inits = Arc::new(AtomicUsize::new(0));
    let i2 = inits.clone();
    // The child's start function runs in the supervisor's handler: it waits there while
    // the supervisor is killed, then starts the child.
    let spec = ChildSpec::new("late", move || {
        started_tx.lock().unwrap().send(()).unwrap();
        let _ = go_rx.lock().unwrap().recv_timeout(DEADLINE);
        Worker::start_link(i2.clone(), StartOpts::new()).map(|s| s.pid())
    });
    let s2 = sup.clone();
    let caller = std::thread::spawn(move || s2.start_child(spec));
    started_rx.recv_timeout(DEADLINE).unwrap();
    kill(sup.pid());
    let r = caller.join().unwrap();
    assert!(r.is_err(), "{r:?}");
    go_tx.send(()).unwrap();
    assert!(wait_until(|| rt.process_count() == 0), "left: {:?}", rt.processes());
    assert_eq!(inits.load(Ordering::SeqCst), 0, "the child's init ran");
}
