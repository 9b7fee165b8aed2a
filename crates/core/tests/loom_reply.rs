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

/// The callback path (`call_with`): a reply, the server's death and the timer race; the
/// callback runs exactly once, with the winner, and a losing resolution is refused. A
/// callback slot dropped unresolved still runs its callback, once.
mod callback {
    use super::*;
    use loom::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn reply_races_exit_and_timer() {
        loom::model(|| {
            let runs = Arc::new(AtomicUsize::new(0));
            let got = Arc::new(loom::sync::Mutex::new(None));
            let (r, g) = (runs.clone(), got.clone());
            let slot: Arc<Slot<u32>> = Arc::new(Slot::with_callback(
                None,
                Box::new(move |outcome, _timer| {
                    r.fetch_add(1, Ordering::SeqCst);
                    *g.lock().unwrap() = Some(outcome);
                }),
            ));
            let (a, b) = (slot.clone(), slot.clone());
            let reply = thread::spawn(move || a.resolve(Ok(1)));
            let exit = thread::spawn(move || b.resolve(Err(CallError::Exited(ExitReason::Killed))));
            let timer = slot.resolve(Err(CallError::Timeout));
            let accepted = usize::from(reply.join().unwrap()) + usize::from(exit.join().unwrap()) + usize::from(timer);
            assert_eq!(accepted, 1, "one resolution wins");
            assert_eq!(runs.load(Ordering::SeqCst), 1, "the callback ran once");
            let outcome = got.lock().unwrap().take().expect("the callback's outcome");
            assert!(matches!(
                outcome,
                Ok(1) | Err(CallError::Exited(ExitReason::Killed)) | Err(CallError::Timeout)
            ));
        });
    }

    #[test]
    fn the_timer_key_is_handed_over_or_refused() {
        loom::model(|| {
            let cancelled = Arc::new(AtomicUsize::new(0));
            let c = cancelled.clone();
            let slot: Arc<Slot<u32>> = Arc::new(Slot::with_callback(
                None,
                Box::new(move |_outcome, timer| {
                    if timer.is_some() {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                }),
            ));
            let a = slot.clone();
            let reply = thread::spawn(move || a.resolve(Ok(1)));
            // The caller hands the timer's key over; if the reply won first, it is refused
            // and the caller cancels the timer itself.
            let handed = slot.set_timer(7);
            reply.join().unwrap();
            let by_callback = cancelled.load(Ordering::SeqCst);
            assert_eq!(usize::from(handed), by_callback, "exactly one side cancels the timer");
        });
    }

    #[test]
    fn dropped_unresolved_runs_the_callback_once() {
        loom::model(|| {
            let runs = Arc::new(AtomicUsize::new(0));
            let r = runs.clone();
            let slot: Slot<u32> = Slot::with_callback(
                None,
                Box::new(move |outcome, _| {
                    assert_eq!(outcome, Err(CallError::NoReply));
                    r.fetch_add(1, Ordering::SeqCst);
                }),
            );
            drop(slot);
            assert_eq!(runs.load(Ordering::SeqCst), 1);
        });
    }
}
