//! Release before notify (beyond S69), S72, and the registry's own process: its exit clears
//! the table, it links to its starter, and a restart reopens the same table.

mod common;
use arbor_core::*;
use arbor_registry::*;
use common::*;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn start(rt: &Runtime) -> Registry<String> {
    Registry::start(rt.handle(), RegistryOpts::new()).unwrap()
}

/// Where an exit handler leaves what it saw.
type Slot<T> = Arc<Mutex<Option<T>>>;

/// What an exit handler saw: the holder's lookup then, and whether re-registering worked.
type Seen = Slot<(Option<Pid>, Result<(), RegisterError>)>;

#[test]
fn s69_name_released_before_outside_monitor_observer_runs() {
    let rt = rt();
    let reg = start(&rt);
    let (holder, next) = (agent(&rt), agent(&rt));
    let r = reg.clone();
    exec(&holder, move || r.register("a".into(), ()).unwrap());
    let seen: Seen = Arc::default();
    let (s, r, next_pid) = (seen.clone(), reg.clone(), next.pid());
    rt.monitor(holder.pid(), move |_pid: Pid, _reason: &ExitReason| {
        *s.lock() = Some((r.whereis("a"), r.register_pid(next_pid, "a".into(), ())));
    })
    .unwrap();
    holder.kill();
    assert!(eventually(|| seen.lock().is_some()));
    assert_eq!(seen.lock().take(), Some((None, Ok(()))));
    assert_eq!(reg.whereis("a"), Some(next.pid()));
}

#[test]
fn s69_name_released_before_down_is_handled() {
    let rt = rt();
    let reg = start(&rt);
    let holder = agent(&rt);
    let r = reg.clone();
    exec(&holder, move || r.register("a".into(), ()).unwrap());
    let seen: Seen = Arc::default();
    let (s, r) = (seen.clone(), reg.clone());
    let watcher = rt
        .start::<Watcher>(Arc::new(move |_pid, _reason| {
            // Inside the watcher's handle_down: the name is already free, and the watcher
            // itself can take it at once.
            *s.lock() = Some((r.whereis("a"), r.register("a".into(), ())));
        }))
        .unwrap();
    watcher.call(Watch::Monitor(holder.pid())).unwrap();
    holder.kill();
    assert!(eventually(|| seen.lock().is_some()));
    assert_eq!(seen.lock().take(), Some((None, Ok(()))));
    assert_eq!(reg.whereis("a"), Some(watcher.pid()));
}

#[test]
fn s69_via_name_released_before_linked_process_gets_exit_signal() {
    let rt = rt();
    let reg = start(&rt);
    let opts = {
        let reg = reg.clone();
        move || StartOpts::new().name(reg.via("a".to_string()))
    };
    let first = Named::start(Arc::default(), opts().runtime(rt.handle())).unwrap();
    let seen: Slot<(Option<Pid>, Result<Pid, StartError>)> = Arc::default();
    let (s, r) = (seen.clone(), reg.clone());
    let watcher = rt
        .start::<Watcher>(Arc::new(move |_pid, _reason| {
            // Inside handle_exit: start a successor under the same via-name, at once.
            let next = Named::start(Arc::default(), opts()).map(|n| n.pid());
            *s.lock() = Some((r.whereis("a").filter(|p| Ok(*p) != next), next));
        }))
        .unwrap();
    watcher.call(Watch::Link(first.pid())).unwrap();
    first.exit(ExitReason::custom("crash"));
    assert!(eventually(|| seen.lock().is_some()));
    let (stale, next) = seen.lock().take().unwrap();
    assert_eq!(stale, None, "the dead holder was no longer registered");
    let next = next.expect("successor started under the freed name");
    assert_ne!(next, first.pid());
    assert_eq!(reg.whereis("a"), Some(next));
}

#[test]
fn s69_register_succeeds_at_once_after_wait_exit() {
    let rt = rt();
    let reg = start(&rt);
    let (holder, next) = (agent(&rt), agent(&rt));
    let r = reg.clone();
    exec(&holder, move || r.register("a".into(), ()).unwrap());
    holder.kill();
    assert_eq!(holder.wait_exit(DEADLINE), Some(ExitReason::Killed));
    assert_eq!(reg.lookup("a"), None);
    let r = reg.clone();
    assert_eq!(exec(&next, move || r.register("a".into(), ())), Ok(()));
}

#[test]
fn s72_all_keys_of_an_exited_process_are_released() {
    let rt = rt();
    let reg = start(&rt);
    let (p, q) = (agent(&rt), agent(&rt));
    let r = reg.clone();
    exec(&p, move || {
        for k in 0..50 {
            r.register(format!("p{k}"), ()).unwrap();
        }
        r.unregister("p0").unwrap();
    });
    let r = reg.clone();
    exec(&q, move || r.register("q".into(), ()).unwrap());
    let pid = p.pid();
    p.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    assert_eq!(reg.keys(pid), Vec::<String>::new());
    assert_eq!(reg.count(), 1);
    assert_eq!(reg.whereis("q"), Some(q.pid()));
}

#[test]
fn registry_exit_clears_entries_before_its_monitors_are_told() {
    let rt = rt();
    let reg = start(&rt);
    let p = agent(&rt);
    let r = reg.clone();
    exec(&p, move || {
        r.register("a".into(), ()).unwrap();
        r.register("b".into(), ()).unwrap();
    });
    let seen: Arc<Mutex<Option<(usize, bool)>>> = Arc::default();
    let (s, r) = (seen.clone(), reg.clone());
    rt.monitor(reg.pid().unwrap(), move |_pid: Pid, _reason: &ExitReason| {
        *s.lock() = Some((r.count(), r.is_running()));
    })
    .unwrap();
    kill(reg.pid().unwrap());
    assert!(eventually(|| seen.lock().is_some()));
    assert_eq!(seen.lock().take(), Some((0, false)));
    assert_eq!(reg.lookup("a"), None);
    assert_eq!(reg.keys(p.pid()), Vec::<String>::new());
    let r = reg.clone();
    assert_eq!(
        exec(&p, move || r.register("c".into(), ())),
        Err(RegisterError::RegistryDown)
    );
    // Departure from S72: registered processes are not linked to the registry, so they live on.
    assert!(is_alive(p.pid()));
}

#[test]
fn registry_start_link_links_to_the_calling_process() {
    let rt = rt();
    let parent = agent(&rt);
    let reg = exec(&parent, || Registry::<String>::start_link(RegistryOpts::new())).unwrap();
    let pid = reg.pid().unwrap();
    parent.kill();
    assert!(
        eventually(|| !is_alive(pid)),
        "the registry died with its linked parent"
    );
    assert!(!reg.is_running());
    // Outside any process, start_link starts on this thread's current runtime (the one
    // it built), linked to nothing.
    let unlinked = Registry::<String>::start_link(RegistryOpts::new()).unwrap();
    assert!(unlinked.is_running());
    drop(rt);
    assert_eq!(
        Registry::<String>::start_link(RegistryOpts::new()).err(),
        Some(StartError::NoRuntime),
        "no runtime once the thread's runtime is gone"
    );
}

#[test]
fn child_start_restarts_reopen_the_same_table() {
    let rt = rt();
    let reg: Registry<String> = Registry::new(RegistryOpts::named("exits-child-start"));
    let start = reg.child_start();
    let starts = Arc::new(AtomicUsize::new(0));
    // A stand-in for the supervisor: a process that calls the start closure.
    let sup = agent(&rt);
    let run = {
        let starts = starts.clone();
        let start = Arc::new(start);
        move || {
            let (start, starts) = (start.clone(), starts.clone());
            exec(&sup, move || {
                starts.fetch_add(1, Ordering::SeqCst);
                start()
            })
        }
    };
    let first = run().unwrap();
    assert_eq!(reg.pid(), Some(first));
    assert_eq!(run(), Err(StartError::AlreadyStarted(first)));
    let p = agent(&rt);
    let name = reg.via("a".to_string());
    let s = Named::start(Arc::default(), StartOpts::new().runtime(rt.handle()).name(name.clone())).unwrap();
    assert_eq!(reg.whereis("a"), Some(s.pid()));
    // The registry stops (Normal does not take the linked stand-in down); the handle and the
    // via-name made before keep working once it is restarted.
    reg.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    assert_eq!(reg.whereis("a"), None);
    let second = run().unwrap();
    assert_ne!(first, second);
    assert_eq!(
        Registry::<String>::lookup_registry("exits-child-start"),
        Some(reg.clone())
    );
    let r = reg.clone();
    assert_eq!(exec(&p, move || r.register("b".into(), ())), Ok(()));
    s.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    let s2 = Named::start(Arc::default(), StartOpts::new().runtime(rt.handle()).name(name)).unwrap();
    assert_eq!(reg.whereis("a"), Some(s2.pid()));
    assert_eq!(starts.load(Ordering::SeqCst), 3);
}
