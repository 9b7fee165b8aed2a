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
