//! loom model of the mailbox's push/schedule handshake: no lost wake-up, no double
//! schedule, nothing lost at close. Run with `RUSTFLAGS="--cfg loom" cargo test -p
//! arbor-core --release --test loom_mailbox`.
#![cfg(loom)]

use arbor_core::loom_api::{Mailbox, Pop};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

fn drain(mb: &Mailbox<u32>) -> usize {
    let mut n = 0;
    loop {
        match mb.pop() {
            Pop::Msg(_) => n += 1,
            Pop::Empty | Pop::Closed => return n,
        }
    }
}

#[test]
fn push_and_go_idle_never_lose_a_wakeup() {
    loom::model(|| {
        let mb = Arc::new(Mailbox::<u32>::new_running());
        let scheduled = Arc::new(AtomicUsize::new(0));
        let producers: Vec<_> = (0..2)
            .map(|i| {
                let mb = mb.clone();
                let scheduled = scheduled.clone();
                thread::spawn(move || {
                    if mb.push(i).unwrap() {
                        scheduled.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        // The runner drains until it goes idle, concurrently with the pushes.
        let mut consumed = drain(&mb);
        for p in producers {
            p.join().unwrap();
        }
        let remaining = 2 - consumed;
        // Whatever the runner left behind, exactly one sender scheduled it, once.
        assert_eq!(scheduled.load(Ordering::SeqCst), usize::from(remaining > 0));
        if remaining > 0 {
            consumed += drain(&mb);
        }
        assert_eq!(consumed, 2);
    });
}

#[test]
fn yield_requeues_when_messages_wait() {
    loom::model(|| {
        let mb = Arc::new(Mailbox::<u32>::new_running());
        let m2 = mb.clone();
        let producer = thread::spawn(move || m2.push(7).unwrap());
        let requeue = mb.yield_now(false);
        let scheduled_by_push = producer.join().unwrap();
        // Exactly one of the runner and the sender re-queues the process if a message
        // waits; neither does otherwise.
        let waiting = mb.len();
        assert_eq!(
            usize::from(requeue) + usize::from(scheduled_by_push),
            usize::from(waiting > 0)
        );
    });
}

#[test]
fn close_races_push_and_nothing_is_lost() {
    loom::model(|| {
        let mb = Arc::new(Mailbox::<u32>::new_running());
        let m2 = mb.clone();
        let producer = thread::spawn(move || m2.push(1).is_ok());
        let (queue, _schedule) = mb.close().unwrap();
        let accepted = producer.join().unwrap();
        // Accepted means it was queued before the close and handed back by it.
        assert_eq!(accepted, queue.len() == 1);
        assert!(mb.close().is_none());
    });
}
