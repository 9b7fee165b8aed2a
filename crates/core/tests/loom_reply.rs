//! loom model of the reply slot: a reply racing the server's death and the caller's
//! timeout resolves the call exactly once, and a late reply is dropped.
#![cfg(loom)]

use arbor_core::loom_api::Slot;
use arbor_core::{CallError, ExitReason};
use loom::sync::Arc;
use loom::thread;

fn race(give_up: bool) {
    loom::model(move || {
        let slot: Arc<Slot<u32>> = Arc::new(Slot::new());
        let (a, b) = (slot.clone(), slot.clone());
        let reply = thread::spawn(move || a.resolve(Ok(1)));
        let exit = thread::spawn(move || b.resolve(Err(CallError::Exited(ExitReason::Killed))));
        let got = slot.wait_loom(give_up);
        let accepted = usize::from(reply.join().unwrap()) + usize::from(exit.join().unwrap());
        match got {
            Ok(1) | Err(CallError::Exited(ExitReason::Killed)) => assert_eq!(accepted, 1),
            Err(CallError::Timeout) => assert_eq!(accepted, 0, "a resolution after giving up is dropped"),
            other => panic!("unexpected {other:?}"),
        }
    });
}

#[test]
fn reply_races_exit() {
    race(false);
}

#[test]
fn reply_races_exit_and_timeout() {
    race(true);
}

/// The waker path: a task polls the slot (storing its waker while the slot is empty) and
/// parks until woken; resolvers race it. A lost wake-up would leave the task parked
/// forever, which loom reports as a deadlock.
mod task {
    use super::*;
    use std::task::{Poll, Wake, Waker};

    struct Unpark(thread::Thread);

    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }

    /// Polls until resolved, or (if `drop_it`) abandons the slot after the first poll, as
    /// a dropped future does.
    fn await_slot(slot: &Slot<u32>, drop_it: bool) -> Result<u32, CallError> {
        let waker = Waker::from(std::sync::Arc::new(Unpark(thread::current())));
        loop {
            match slot.poll_take(&waker) {
                Poll::Ready(v) => return v,
                Poll::Pending if drop_it => return slot.abandon().unwrap_or(Err(CallError::Timeout)),
                Poll::Pending => thread::park(),
            }
        }
    }

    /// `second` is the other resolver: the server's death, or the future's own timer.
    fn race(second: CallError, drop_it: bool) {
        loom::model(move || {
            let slot: Arc<Slot<u32>> = Arc::new(Slot::for_task(None));
            let (a, b) = (slot.clone(), slot.clone());
            let err = second.clone();
            let reply = thread::spawn(move || a.resolve(Ok(1)));
            let other = thread::spawn(move || b.resolve(Err(err)));
            let got = await_slot(&slot, drop_it);
            let accepted = usize::from(reply.join().unwrap()) + usize::from(other.join().unwrap());
            match got {
                Ok(1) => assert_eq!(accepted, 1),
                Err(e) if e == second => assert_eq!(accepted, 1),
                Err(CallError::Timeout) if drop_it => assert_eq!(accepted, 0, "a resolution after the drop is dropped"),
                other => panic!("unexpected {other:?}"),
            }
        });
    }

    #[test]
    fn task_reply_races_exit() {
        race(CallError::Exited(ExitReason::Killed), false);
    }

    #[test]
    fn task_reply_races_timer() {
        race(CallError::Timeout, false);
    }

    #[test]
    fn task_reply_races_exit_and_drop() {
        race(CallError::Exited(ExitReason::Killed), true);
    }
}
