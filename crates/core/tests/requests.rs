//! Typed requests (the reply type follows the request) and casts (`handle_cast`, a door
//! apart from `handle_info`), with the guarantees of calls: deferred replies, a stop with
//! and without a reply, a crash, NoProc, CallingSelf, a late reply dropped, a request
//! that dies unhandled dropped once, and the async forms.
#![cfg(not(loom))]

mod common;
use arbor_core::*;
use common::{rt, wait_until};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Kv {
    map: std::collections::HashMap<String, u64>,
    held: Vec<ReplyTo<Option<u64>>>,
    casts: Vec<String>,
    infos: Vec<String>,
}

/// Reads a key.
struct Get(&'static str);
impl Request for Get {
    type Reply = Option<u64>;
}

/// Writes a key.
struct Put(&'static str, u64);
impl Request for Put {
    type Reply = ();
}

/// Answered later, by `Flush`.
struct Later;
impl Request for Later {
    type Reply = Option<u64>;
}

/// Answers the held `Later`s with `Some(n)`.
struct Flush(u64);
impl Request for Flush {
    type Reply = usize;
}

/// Stops the server, replying first (`Some`) or not.
struct Quit(Option<u32>);
impl Request for Quit {
    type Reply = u32;
}

/// Panics.
struct Boom;
impl Request for Boom {
    type Reply = ();
}

/// Requests itself.
struct Myself;
impl Request for Myself {
    type Reply = bool;
}

/// Counts its drops: proves a request that is never handled is dropped once.
struct Tracked(Arc<AtomicUsize>);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
impl Request for Tracked {
    type Reply = ();
}

/// Reads what the server's handlers saw.
struct Seen;
impl Request for Seen {
    type Reply = (Vec<String>, Vec<String>);
}

/// A cast.
struct Note(String);

impl GenServer for Kv {
    type Args = ();
    type Info = String;
    type Call = &'static str;
    type Reply = Option<u64>;

    fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Kv::default())
    }

    fn handle_info(&mut self, msg: String, _ctx: &mut Context<'_, Self>) -> Flow {
        self.infos.push(msg);
        Flow::Continue
    }

    /// The `Call`/`Reply` form works beside typed requests.
    fn handle_call(
        &mut self,
        key: &'static str,
        _: ReplyTo<Option<u64>>,
        _: &mut Context<'_, Self>,
    ) -> CallFlow<Option<u64>> {
        CallFlow::Reply(self.map.get(key).copied())
    }
}

impl HandleRequest<Get> for Kv {
    fn handle_request(
        &mut self,
        Get(k): Get,
        _: ReplyTo<Option<u64>>,
        _: &mut Context<'_, Self>,
    ) -> CallFlow<Option<u64>> {
        CallFlow::Reply(self.map.get(k).copied())
    }
}

impl HandleRequest<Put> for Kv {
    fn handle_request(&mut self, Put(k, v): Put, _: ReplyTo<()>, _: &mut Context<'_, Self>) -> CallFlow<()> {
        self.map.insert(k.to_string(), v);
        CallFlow::Reply(())
    }
}

impl HandleRequest<Later> for Kv {
    fn handle_request(
        &mut self,
        _: Later,
        from: ReplyTo<Option<u64>>,
        _: &mut Context<'_, Self>,
    ) -> CallFlow<Option<u64>> {
        self.held.push(from);
        CallFlow::NoReply
    }
}

impl HandleRequest<Flush> for Kv {
    fn handle_request(&mut self, Flush(n): Flush, _: ReplyTo<usize>, _: &mut Context<'_, Self>) -> CallFlow<usize> {
        let answered = self.held.drain(..).filter(|h| h.reply(Some(n))).count();
        CallFlow::Reply(answered)
    }
}

impl HandleRequest<Quit> for Kv {
    fn handle_request(&mut self, Quit(r): Quit, _: ReplyTo<u32>, _: &mut Context<'_, Self>) -> CallFlow<u32> {
        match r {
            Some(r) => CallFlow::Stop(ExitReason::Normal, r),
            None => CallFlow::StopNoReply(ExitReason::Shutdown),
        }
    }
}

impl HandleRequest<Boom> for Kv {
    fn handle_request(&mut self, _: Boom, _: ReplyTo<()>, _: &mut Context<'_, Self>) -> CallFlow<()> {
        panic!("boom")
    }
}

impl HandleRequest<Myself> for Kv {
    fn handle_request(&mut self, _: Myself, _: ReplyTo<bool>, ctx: &mut Context<'_, Self>) -> CallFlow<bool> {
        let me = ServerRef::<Kv>::from_pid(ctx.pid()).unwrap();
        CallFlow::Reply(me.request(Get("x")) == Err(CallError::CallingSelf))
    }
}

impl HandleRequest<Tracked> for Kv {
    fn handle_request(&mut self, _: Tracked, _: ReplyTo<()>, _: &mut Context<'_, Self>) -> CallFlow<()> {
        std::thread::sleep(Duration::from_millis(300));
        CallFlow::Reply(())
    }
}

impl HandleRequest<Seen> for Kv {
    fn handle_request(
        &mut self,
        _: Seen,
        _: ReplyTo<(Vec<String>, Vec<String>)>,
        _: &mut Context<'_, Self>,
    ) -> CallFlow<(Vec<String>, Vec<String>)> {
        CallFlow::Reply((self.casts.clone(), self.infos.clone()))
    }
}

impl HandleCast<Note> for Kv {
    fn handle_cast(&mut self, Note(s): Note, _: &mut Context<'_, Self>) -> Flow {
        self.casts.push(s);
        Flow::Continue
    }
}

/// A cast that stops the server.
struct Halt;
impl HandleCast<Halt> for Kv {
    fn handle_cast(&mut self, _: Halt, _: &mut Context<'_, Self>) -> Flow {
        Flow::Stop(ExitReason::custom("halted"))
    }
}

#[test]
fn request_reply_type_follows_the_request() {
    let rt = rt(2);
    let kv = rt.start::<Kv>(()).unwrap();
    let unit: () = kv.request(Put("a", 1)).unwrap();
    let got: Option<u64> = kv.request(Get("a")).unwrap();
    assert_eq!((unit, got), ((), Some(1)));
    assert_eq!(kv.request(Get("b")), Ok(None));
    // The Call/Reply form still works beside it.
    assert_eq!(kv.call("a"), Ok(Some(1)));
}

#[test]
fn request_deferred_reply_and_late_reply_dropped() {
    let rt = rt(2);
    let kv = rt.start::<Kv>(()).unwrap();
    assert_eq!(
        kv.request_timeout(Later, Duration::from_millis(20)),
        Err(CallError::Timeout)
    );
    let waiter = {
        let kv = kv.clone();
        std::thread::spawn(move || kv.request(Later))
    };
    assert!(wait_until(
        || kv.runtime().process_info(kv.pid()).unwrap().held_calls == 2
    ));
    // One reply goes to the waiting caller; the timed-out caller's is dropped.
    assert_eq!(kv.request(Flush(9)), Ok(1));
    assert_eq!(waiter.join().unwrap(), Ok(Some(9)));
    assert_eq!(kv.runtime().process_info(kv.pid()).unwrap().held_calls, 0);
}

#[test]
fn request_stop_with_reply_and_without() {
    let rt = rt(2);
    let kv = rt.start::<Kv>(()).unwrap();
    assert_eq!(kv.request(Quit(Some(7))), Ok(7));
    assert_eq!(kv.wait_exit(Duration::from_secs(5)), Some(ExitReason::Normal));
    let kv = rt.start::<Kv>(()).unwrap();
    assert_eq!(kv.request(Quit(None)), Err(CallError::Exited(ExitReason::Shutdown)));
    assert_eq!(kv.request(Get("a")), Err(CallError::NoProc));
}

#[test]
fn request_crash_gives_the_exit_reason() {
    let rt = rt(2);
    let kv = rt.start::<Kv>(()).unwrap();
    match kv.request(Boom) {
        Err(CallError::Exited(ExitReason::Panic(m))) => assert!(m.contains("boom")),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn request_to_oneself_is_calling_self() {
    let rt = rt(2);
    let kv = rt.start::<Kv>(()).unwrap();
    assert_eq!(kv.request(Myself), Ok(true));
}

#[test]
fn request_unhandled_when_the_server_dies_is_failed_and_dropped_once() {
    let rt = rt(2);
    let kv = rt.start::<Kv>(()).unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    // The first request keeps the server busy; the second waits behind it, then the
    // server is killed: the waiting request is failed with the reason and dropped once.
    let first = kv.request_async(Tracked(drops.clone()));
    let second = kv.request_async(Tracked(drops.clone()));
    kv.kill();
    assert_eq!(kv.wait_exit(Duration::from_secs(5)), Some(ExitReason::Killed));
    drop(first);
    let waited = block_on(second);
    assert_eq!(waited, Err(CallError::Exited(ExitReason::Killed)));
    assert!(
        wait_until(|| drops.load(Ordering::SeqCst) == 2),
        "{}",
        drops.load(Ordering::SeqCst)
    );
}

#[test]
fn request_async_forms() {
    let rt = rt(2);
    let kv = rt.start::<Kv>(()).unwrap();
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    tokio_rt.block_on(async {
        kv.request_async(Put("k", 3)).await.unwrap();
        let v: Option<u64> = kv.request_async(Get("k")).await.unwrap();
        assert_eq!(v, Some(3));
        assert_eq!(
            kv.request_timeout_async(Later, Duration::from_millis(10)).await,
            Err(CallError::Timeout)
        );
        // A zero timeout sends and does not wait: `Timeout`, unless the reply is already
        // there when the future is first polled.
        let zero = kv.request_timeout_async(Get("k"), Duration::ZERO).await;
        assert!(matches!(zero, Err(CallError::Timeout) | Ok(Some(3))), "{zero:?}");
    });
    assert_eq!(rt.timer_count(), 0);
    kv.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
    assert_eq!(block_on(kv.request_async(Get("k"))), Err(CallError::NoProc));
}

#[test]
fn cast_reaches_handle_cast_and_send_reaches_handle_info_in_order() {
    let rt = rt(2);
    let kv = rt.start::<Kv>(()).unwrap();
    kv.cast(Note("one".into())).unwrap();
    kv.send("info".into()).unwrap();
    kv.cast(Note("two".into())).unwrap();
    let (casts, infos) = kv.request(Seen).unwrap();
    assert_eq!(casts, ["one", "two"]);
    assert_eq!(infos, ["info"]);
}

#[test]
fn cast_can_stop_the_server_and_a_cast_to_a_dead_one_is_handed_back() {
    let rt = rt(2);
    let kv = rt.start::<Kv>(()).unwrap();
    kv.cast(Halt).unwrap();
    assert_eq!(kv.wait_exit(Duration::from_secs(5)), Some(ExitReason::custom("halted")));
    match kv.cast(Note("late".into())) {
        Err(SendError(Note(s))) => assert_eq!(s, "late"),
        Ok(()) => panic!("a dead server took a cast"),
    }
}

/// A std-only block_on.
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

/// Asks the server to request `Get` of another `Kv` while handling this request.
struct Relay(ServerRef<Kv>);
impl Request for Relay {
    type Reply = Result<Option<u64>, CallError>;
}

impl HandleRequest<Relay> for Kv {
    fn handle_request(
        &mut self,
        Relay(other): Relay,
        _: ReplyTo<Result<Option<u64>, CallError>>,
        _: &mut Context<'_, Self>,
    ) -> CallFlow<Result<Option<u64>, CallError>> {
        CallFlow::Reply(other.request(Get("k")))
    }
}

/// Asks the server to relay a `Relay` back to the first server.
struct Bounce(ServerRef<Kv>, ServerRef<Kv>);
impl Request for Bounce {
    type Reply = Result<Result<Option<u64>, CallError>, CallError>;
}

impl HandleRequest<Bounce> for Kv {
    fn handle_request(
        &mut self,
        Bounce(other, me): Bounce,
        _: ReplyTo<Result<Result<Option<u64>, CallError>, CallError>>,
        _: &mut Context<'_, Self>,
    ) -> CallFlow<Result<Result<Option<u64>, CallError>, CallError>> {
        CallFlow::Reply(other.request(Relay(me)))
    }
}

#[test]
fn request_cycle_is_a_deadlock_at_once() {
    // a handles Bounce by requesting b; b handles Relay by requesting a, which is blocked
    // on b: a cycle, refused at once rather than two timeouts.
    let rt = rt(1);
    let a = rt.start::<Kv>(()).unwrap();
    let b = rt.start::<Kv>(()).unwrap();
    let t = std::time::Instant::now();
    assert_eq!(
        a.request(Bounce(b.clone(), a.clone())),
        Ok(Ok(Err(CallError::Deadlock)))
    );
    assert!(t.elapsed() < Duration::from_secs(4));
}

#[test]
fn pending_request_futures_end_when_the_runtime_shuts_down() {
    let rt = rt(2);
    let kv = rt.start::<Kv>(()).unwrap();
    let held = kv.request_timeout_async(Later, Duration::from_secs(3600));
    let call = kv.call_timeout_async("x", Duration::from_secs(3600));
    assert!(wait_until(|| rt.process_info(kv.pid()).map_or(0, |i| i.held_calls) >= 1));
    rt.shutdown();
    assert!(matches!(block_on(held), Err(CallError::Exited(_))));
    assert!(matches!(block_on(call), Ok(None) | Err(CallError::Exited(_))));
}
