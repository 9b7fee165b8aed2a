//! Blocking inside handlers: a call chain on one worker thread, and call cycles.

mod common;
use arbor_core::*;
use common::*;
use std::time::{Duration, Instant};

/// Calls the next server of the chain inside its own `handle_call`.
struct ChainLink {
    next: Option<ServerRef<ChainLink>>,
}

impl GenServer for ChainLink {
    type Args = Option<ServerRef<ChainLink>>;
    type Info = ();
    type Call = u32;
    type Reply = Result<u32, CallError>;
    fn init(next: Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(ChainLink { next })
    }
    fn handle_call(
        &mut self,
        depth: u32,
        _from: ReplyTo<Self::Reply>,
        _ctx: &mut Context<'_, Self>,
    ) -> CallFlow<Self::Reply> {
        match &self.next {
            Some(next) => CallFlow::Reply(next.call(depth + 1).and_then(|r| r)),
            None => CallFlow::Reply(Ok(depth)),
        }
    }
}

fn chain(rt: &Runtime, n: usize) -> ServerRef<ChainLink> {
    let mut next = None;
    for _ in 0..n {
        next = Some(rt.start::<ChainLink>(next).unwrap());
    }
    next.unwrap()
}

#[test]
fn call_chain_of_64_completes_on_one_worker_thread() {
    let rt = rt(1);
    let head = chain(&rt, 64);
    assert_eq!(head.call_timeout(0, DEADLINE), Ok(Ok(63)));
    // And again, now that compensating threads exist (they are reused, then retire).
    assert_eq!(head.call_timeout(0, DEADLINE), Ok(Ok(63)));
}

#[test]
fn call_chains_from_many_callers_on_one_worker_thread() {
    let rt = rt(1);
    let head = chain(&rt, 16);
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let head = head.clone();
            std::thread::spawn(move || (0..20).all(|_| head.call_timeout(0, DEADLINE) == Ok(Ok(15))))
        })
        .collect();
    for c in callers {
        assert!(c.join().unwrap());
    }
}

#[test]
fn deadlock_two_servers_calling_each_other_fails_at_once() {
    let rt = rt(2);
    let log = Log::default();
    let a = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    let b = probe(&rt, "b", &log, InitMode::Ok).unwrap();
    let start = Instant::now();
    // a calls b, whose handler calls a back: a cycle.
    let r = a.call(Req::Call(
        b.clone(),
        Box::new(Req::Call(a.clone(), Box::new(Req::Echo(1)))),
    ));
    assert_eq!(r, Ok(Rep::Called(Ok(Box::new(Rep::Called(Err(CallError::Deadlock)))))));
    assert!(start.elapsed() < Duration::from_secs(1), "no timeout was waited for");
    assert!(a.is_alive() && b.is_alive());
}

#[test]
fn deadlock_through_a_chain_of_three_fails_at_once() {
    let rt = rt(1);
    let log = Log::default();
    let a = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    let b = probe(&rt, "b", &log, InitMode::Ok).unwrap();
    let c = probe(&rt, "c", &log, InitMode::Ok).unwrap();
    let start = Instant::now();
    let inner = Req::Call(a.clone(), Box::new(Req::Echo(1)));
    let r = a.call(Req::Call(b.clone(), Box::new(Req::Call(c.clone(), Box::new(inner)))));
    let want = Rep::Called(Ok(Box::new(Rep::Called(Ok(Box::new(Rep::Called(Err(
        CallError::Deadlock,
    ))))))));
    assert_eq!(r, Ok(want));
    assert!(start.elapsed() < Duration::from_secs(1));
}
