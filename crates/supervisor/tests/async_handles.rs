//! The DynamicSupervisor's requests from async code: futures that need no executor (driven
//! here by a `block_on` of std alone), with the blocking forms' results.

use arbor_core::{Context, ExitReason, GenServer, Runtime};
use arbor_supervisor::*;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context as Cx, Poll, Wake, Waker};
use std::time::Duration;

fn block_on<F: Future>(f: F) -> F::Output {
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

struct Worker;

impl GenServer for Worker {
    type Args = bool;
    type Info = ();
    type Call = ();
    type Reply = ();
    fn init(ok: bool, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        if ok {
            Ok(Worker)
        } else {
            Err(ExitReason::custom("refused"))
        }
    }
}

#[test]
fn dynamic_supervisor_requests_as_futures() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let sup = DynamicSupervisor::start_link(DynamicOpts::new().runtime(rt.handle())).unwrap();
    let a = block_on(sup.start_child_async(ChildSpec::server::<Worker>("a", true))).unwrap();
    let b = block_on(sup.start_child_async(ChildSpec::server::<Worker>("b", true))).unwrap();
    assert!(arbor_core::is_alive(a) && arbor_core::is_alive(b));
    assert_eq!(
        block_on(sup.start_child_async(ChildSpec::server::<Worker>("c", false))),
        Err(StartChildError::Start(arbor_core::StartError::Init(
            ExitReason::custom("refused")
        )))
    );
    assert_eq!(
        block_on(sup.start_child_async(ChildSpec::server::<Worker>("", true))),
        Err(StartChildError::Spec(SpecError::EmptyId)),
        "a bad spec is refused without contacting the supervisor"
    );
    let ids: Vec<String> = block_on(sup.which_children_async())
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(block_on(sup.count_children_async()).unwrap().active, 2);
    assert_eq!(block_on(sup.terminate_child_async(a)), Ok(()));
    assert!(!arbor_core::is_alive(a));
    assert_eq!(block_on(sup.terminate_child_async(a)), Err(ChildError::NotFound));
    assert_eq!(block_on(sup.count_children_async()).unwrap().active, 1);
    let exit = sup.wait_exit_async(Duration::from_secs(30));
    assert_eq!(block_on(sup.stop_async(ExitReason::Normal, Duration::MAX)), Ok(()));
    assert!(!arbor_core::is_alive(b), "its child stopped with it");
    assert_eq!(block_on(exit), Some(ExitReason::Normal));
    assert_eq!(block_on(sup.which_children_async()), Err(arbor_core::CallError::NoProc));
    assert_eq!(rt.timer_count(), 0);
}

#[test]
fn static_supervisor_requests_as_futures() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let sup = Supervisor::start_link(
        vec![ChildSpec::server::<Worker>("a", true)],
        SupervisorOpts::new(Strategy::OneForOne).runtime(rt.handle()),
    )
    .unwrap();
    let b = block_on(sup.start_child_async(ChildSpec::server::<Worker>("b", true)))
        .unwrap()
        .expect("started");
    assert_eq!(block_on(sup.child_pid_async("b")), Ok(Some(b)));
    let ids: Vec<String> = block_on(sup.which_children_async())
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    // As OTP's which_children: the last started first.
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(block_on(sup.count_children_async()).unwrap().active, 2);
    assert_eq!(block_on(sup.terminate_child_async("b")), Ok(()));
    assert!(!arbor_core::is_alive(b));
    let b2 = block_on(sup.restart_child_async("b")).unwrap().expect("restarted");
    assert!(arbor_core::is_alive(b2) && b2 != b);
    assert_eq!(block_on(sup.terminate_child_async("b")), Ok(()));
    assert_eq!(block_on(sup.delete_child_async("b")), Ok(()));
    assert_eq!(block_on(sup.count_children_async()).unwrap().specs, 1);
    assert_eq!(block_on(sup.terminate_child_async("zz")), Err(ChildError::NotFound));
    let exit = sup.wait_exit_async(Duration::from_secs(30));
    assert_eq!(block_on(sup.stop_async(ExitReason::Normal, Duration::MAX)), Ok(()));
    assert_eq!(block_on(exit), Some(ExitReason::Normal));
    assert_eq!(rt.timer_count(), 0);
}
