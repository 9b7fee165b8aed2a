//! Via-names: S7, S23, S70–S72 through `Registry::via` and core's `Naming` hook.

mod common;
use arbor_core::*;
use arbor_registry::*;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn start(rt: &Runtime) -> Registry<String> {
    Registry::start(rt.handle(), RegistryOpts::new()).unwrap()
}

fn opts(rt: &Runtime, name: Via<String>) -> StartOpts {
    StartOpts::new().runtime(rt.handle()).name(name)
}

#[test]
fn s70_via_start_registers_server_under_key() {
    let rt = rt();
    let reg = start(&rt);
    let inits = Arc::new(AtomicUsize::new(0));
    let s = Named::start(inits.clone(), opts(&rt, reg.via("a".into()))).unwrap();
    assert_eq!(reg.lookup("a"), Some((s.pid(), ())));
    assert_eq!(reg.keys(s.pid()), vec!["a".to_string()]);
    assert_eq!(reg.call::<Named, _>("a", ()), Ok(s.pid()));
    assert_eq!(inits.load(Ordering::SeqCst), 1);
}

#[test]
fn s7_s70_second_start_under_taken_via_returns_already_started_and_never_runs_init() {
    let rt = rt();
    let reg = start(&rt);
    let inits = Arc::new(AtomicUsize::new(0));
    let first = Named::start(inits.clone(), opts(&rt, reg.via("a".into()))).unwrap();
    let before = rt.process_count();
    let second = Named::start(inits.clone(), opts(&rt, reg.via("a".into())));
    assert_eq!(second.err(), Some(StartError::AlreadyStarted(first.pid())));
    assert_eq!(inits.load(Ordering::SeqCst), 1, "the second init never ran");
    assert_eq!(rt.process_count(), before, "the second process left nothing behind");
    assert_eq!(reg.whereis("a"), Some(first.pid()));
    assert_eq!(reg.count(), 1);
}

#[test]
fn s70_via_with_value_stores_value_and_plain_via_finds_it() {
    let rt = rt();
    let reg: Registry<String, u32> = Registry::start(rt.handle(), RegistryOpts::new()).unwrap();
    let named = reg.via_with_value("a".into(), 42);
    let s = Named::start(Arc::default(), StartOpts::new().runtime(rt.handle()).name(named)).unwrap();
    assert_eq!(reg.lookup("a"), Some((s.pid(), 42)));
    // The value-less form names the same process (S70), as does `ServerRef::whereis` (S23).
    let plain = reg.via("a".into());
    assert_eq!(plain.whereis(), Some(s.pid()));
    assert_eq!(ServerRef::<Named>::whereis(&plain), Some(s.clone()));
    let again = Named::start(Arc::default(), StartOpts::new().runtime(rt.handle()).name(plain));
    assert_eq!(again.err(), Some(StartError::AlreadyStarted(s.pid())));
}

#[test]
fn s71_call_to_unregistered_via_returns_noproc() {
    let rt = rt();
    let reg = start(&rt);
    assert_eq!(reg.call::<Named, _>("nobody", ()), Err(CallError::NoProc));
    assert_eq!(reg.send::<Named, _>("nobody", ()), Err(SendError(())));
    assert!(reg.server::<Named, _>("nobody").is_none());
    // S23: whereis of a missing via-name is None.
    assert_eq!(reg.whereis("nobody"), None);
    assert_eq!(ServerRef::<Named>::whereis(&reg.via("nobody".into())), None);
}

#[test]
fn s71_call_to_via_held_by_another_server_type_returns_noproc() {
    let rt = rt();
    let reg = start(&rt);
    let _s = Named::start(Arc::default(), opts(&rt, reg.via("a".into()))).unwrap();
    assert_eq!(
        reg.call::<Agent, _>("a", Box::new(|| Box::new(()) as _)).err(),
        Some(CallError::NoProc)
    );
}

#[test]
fn s23_whereis_via_name_returns_holder() {
    let rt = rt();
    let reg = start(&rt);
    let s = Named::start(Arc::default(), opts(&rt, reg.via("a".into()))).unwrap();
    assert_eq!(reg.whereis("a"), Some(s.pid()));
    assert_eq!(reg.server::<Named, _>("a"), Some(s));
}

#[test]
fn s72_via_name_free_after_server_stops_for_any_reason() {
    let rt = rt();
    let reg = start(&rt);
    let inits = Arc::new(AtomicUsize::new(0));
    let stops: [fn(&ServerRef<Named>); 4] = [
        |s| s.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap(),
        |s| s.stop(ExitReason::custom("boom"), Duration::from_secs(5)).unwrap(),
        |s| assert!(s.kill_and_wait()),
        |s| {
            s.exit(ExitReason::Shutdown);
            assert!(s.wait_exit(DEADLINE).is_some());
        },
    ];
    for stop in stops {
        let s = Named::start(inits.clone(), opts(&rt, reg.via("a".into()))).unwrap();
        stop(&s);
        assert_eq!(reg.whereis("a"), None);
        let next = Named::start(inits.clone(), opts(&rt, reg.via("a".into()))).unwrap();
        assert_eq!(reg.whereis("a"), Some(next.pid()));
        next.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    }
    assert_eq!(inits.load(Ordering::SeqCst), 8);
    assert_eq!(reg.count(), 0);
}

/// Kills and waits for the exit: a small extension for the table above.
trait KillAndWait {
    fn kill_and_wait(&self) -> bool;
}

impl KillAndWait for ServerRef<Named> {
    fn kill_and_wait(&self) -> bool {
        self.kill();
        self.wait_exit(DEADLINE) == Some(ExitReason::Killed)
    }
}

/// A server whose `init` fails.
struct FailsInit;

impl GenServer for FailsInit {
    type Args = ();
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Err(ExitReason::custom("no"))
    }
}

#[test]
fn s70_failed_init_releases_via_name() {
    let rt = rt();
    let reg = start(&rt);
    let err = FailsInit::start((), opts(&rt, reg.via("a".into()))).err();
    assert_eq!(err, Some(StartError::Init(ExitReason::custom("no"))));
    assert_eq!(reg.whereis("a"), None);
    assert_eq!(reg.count(), 0);
    assert!(Named::start(Arc::default(), opts(&rt, reg.via("a".into()))).is_ok());
}

#[test]
fn via_start_on_registry_not_running_fails_and_leaves_nothing() {
    let rt = rt();
    let reg: Registry<String> = Registry::new(RegistryOpts::new());
    let inits = Arc::new(AtomicUsize::new(0));
    let err = Named::start(inits.clone(), opts(&rt, reg.via("a".into()))).err();
    assert!(
        matches!(&err, Some(StartError::NameUnavailable(why)) if why.contains("not running") || !why.is_empty()),
        "expected NameUnavailable, got {err:?}"
    );
    assert_eq!(inits.load(Ordering::SeqCst), 0);
    assert_eq!(rt.process_count(), 0);
    assert_eq!(reg.whereis("a"), None);
}

#[test]
fn s7_seed_pattern_already_started_maps_to_running_pid_from_inside_a_process() {
    let rt = rt();
    let reg = start(&rt);
    let parent = agent(&rt);
    let r = reg.clone();
    let (a, b) = exec(&parent, move || {
        let start = || match Named::start_link(Arc::default(), StartOpts::new().name(r.via("17_recording".into()))) {
            Err(StartError::AlreadyStarted(pid)) => Ok(pid),
            other => other.map(|s| s.pid()),
        };
        (start(), start())
    });
    assert_eq!(a, b);
    assert_eq!(reg.whereis("17_recording"), Some(a.unwrap()));
}

/// A request of `Named`'s: answers the server's pid.
struct WhoAreYou;
impl Request for WhoAreYou {
    type Reply = Pid;
}

impl HandleRequest<WhoAreYou> for Named {
    fn handle_request(&mut self, _: WhoAreYou, _: ReplyTo<Pid>, ctx: &mut Context<'_, Self>) -> CallFlow<Pid> {
        CallFlow::Reply(ctx.pid())
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context as Cx, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark()
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Cx::from_waker(&waker)) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn s71_calls_and_requests_by_key_blocking_and_async() {
    let rt = rt();
    let reg = start(&rt);
    let s = Named::start(Arc::new(AtomicUsize::new(0)), opts(&rt, reg.via("a".into()))).unwrap();
    assert_eq!(block_on(reg.call_async::<Named, _>("a", ())), Ok(s.pid()));
    assert_eq!(reg.request::<Named, _, _>("a", WhoAreYou), Ok(s.pid()));
    assert_eq!(block_on(reg.request_async::<Named, _, _>("a", WhoAreYou)), Ok(s.pid()));
    assert_eq!(
        block_on(reg.call_async::<Named, _>("nobody", ())),
        Err(CallError::NoProc)
    );
    assert_eq!(
        block_on(reg.request_async::<Named, _, _>("nobody", WhoAreYou)),
        Err(CallError::NoProc)
    );
}

/// A cast that stops `Named`.
struct Quit;
impl HandleCast<Quit> for Named {
    fn handle_cast(&mut self, _: Quit, _: &mut Context<'_, Self>) -> Flow {
        Flow::Stop(ExitReason::custom("quit"))
    }
}

#[test]
fn s71_casts_by_key() {
    let rt = rt();
    let reg = start(&rt);
    let s = Named::start(Arc::new(AtomicUsize::new(0)), opts(&rt, reg.via("a".into()))).unwrap();
    assert!(reg.cast::<Named, _, _>("a", Quit).is_ok());
    assert_eq!(s.wait_exit(Duration::from_secs(5)), Some(ExitReason::custom("quit")));
    assert!(matches!(reg.cast::<Named, _, _>("a", Quit), Err(SendError(Quit))));
}
