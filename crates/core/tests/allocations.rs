//! Allocations per call, counted by a global allocator: a typed request costs no more
//! than a `call` (the request and its slot share one allocation, as a call's slot is
//! one), and an async call's count is measured beside them.
#![cfg(not(loom))]

use arbor_core::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as Cx, Poll, Wake, Waker};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Counter(u64);

struct Get;
impl Request for Get {
    type Reply = u64;
}

impl GenServer for Counter {
    type Args = ();
    type Info = ();
    type Call = ();
    type Reply = u64;
    fn init((): (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Counter(0))
    }
    fn handle_call(&mut self, (): (), _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
        self.0 += 1;
        CallFlow::Reply(self.0)
    }
}

impl HandleRequest<Get> for Counter {
    fn handle_request(&mut self, _: Get, _: ReplyTo<u64>, _: &mut Context<'_, Self>) -> CallFlow<u64> {
        self.0 += 1;
        CallFlow::Reply(self.0)
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark()
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Cx::from_waker(&waker)) {
            return v;
        }
        std::thread::park();
    }
}

/// Allocations per operation, over `n` operations (after a warm-up, so that queues and
/// thread-locals already exist).
fn per_op(n: usize, mut op: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        op();
    }
    let before = ALLOCS.load(Ordering::SeqCst);
    for _ in 0..n {
        op();
    }
    (ALLOCS.load(Ordering::SeqCst) - before) as f64 / n as f64
}

#[test]
fn a_typed_request_allocates_no_more_than_a_call() {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let counter = rt.start::<Counter>(()).unwrap();
    let n = 20_000;
    let call = per_op(n, || {
        counter.call(()).unwrap();
    });
    let request = per_op(n, || {
        counter.request(Get).unwrap();
    });
    let async_call = per_op(n, || {
        block_on(counter.call_async(())).unwrap();
    });
    let async_request = per_op(n, || {
        block_on(counter.request_async(Get)).unwrap();
    });
    println!(
        "allocations per operation: call {call:.2}, request {request:.2}, call_async {async_call:.2}, request_async {async_request:.2}"
    );
    // Counted over the whole process (the worker and timer threads too); a small margin
    // for the runtime's own occasional allocations (queue segments).
    assert!(request <= call + 0.05, "request {request} vs call {call}");
    assert!(
        async_request <= async_call + 0.05,
        "request_async {async_request} vs call_async {async_call}"
    );
}
