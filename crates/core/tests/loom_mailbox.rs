//! loom model of the mailbox's push/schedule handshake: no lost wake-up, no double
//! schedule, nothing lost at close, per-sender FIFO across the inbox and the batch. Run with `RUSTFLAGS="--cfg loom" cargo test -p
//! arbor-core --release --test loom_mailbox`.
#![cfg(loom)]

use arbor_core::loom_api::{Mailbox, Pop};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::collections::VecDeque;

fn drain(mb: &Mailbox<u32>) -> usize {
    let mut batch = VecDeque::new();
    let mut n = 0;
    loop {
        match mb.pop(&mut batch) {
            Pop::Msg(_) | Pop::Refilled(_) => n += 1,
            Pop::Empty | Pop::Closed => return n,
        }
    }
}

/// Pops until empty or closed; returns what it got, in order, and whether it saw the close.
fn drain_all(mb: &Mailbox<u32>, batch: &mut VecDeque<u32>) -> (Vec<u32>, bool) {
    let mut got = Vec::new();
    loop {
        match mb.pop(batch) {
            Pop::Msg(m) | Pop::Refilled(m) => got.push(m),
            Pop::Empty => return (got, false),
            Pop::Closed => return (got, true),
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

#[test]
fn batch_swap_keeps_each_senders_order() {
    loom::model(|| {
        let mb = Arc::new(Mailbox::<u32>::new_running());
        // Two messages already queued: the runner's first pop takes the inbox as a batch.
        mb.push(1).unwrap();
        mb.push(2).unwrap();
        let m2 = mb.clone();
        let producer = thread::spawn(move || {
            let a = m2.push(3).unwrap();
            let b = m2.push(4).unwrap();
            usize::from(a) + usize::from(b)
        });
        let mut batch = VecDeque::new();
        let (mut got, closed) = drain_all(&mb, &mut batch);
        assert!(!closed);
        let scheduled = producer.join().unwrap();
        // Whatever the runner left behind, exactly one push scheduled it.
        assert_eq!(scheduled, usize::from(got.len() < 4));
        let (rest, _) = drain_all(&mb, &mut batch);
        got.extend(rest);
        assert_eq!(got, vec![1, 2, 3, 4]);
    });
}

#[test]
fn close_during_a_batch_hands_back_everything_once() {
    loom::model(|| {
        let mb = Arc::new(Mailbox::<u32>::new_running());
        mb.push(1).unwrap();
        mb.push(2).unwrap();
        mb.push(3).unwrap();
        let m2 = mb.clone();
        let closer = thread::spawn(move || m2.close().map(|(q, _)| q.into_iter().collect::<Vec<_>>()));
        let m3 = mb.clone();
        let producer = thread::spawn(move || m3.push(4).is_ok());
        let mut batch = VecDeque::new();
        let mut popped = Vec::new();
        // The runner pops one message, as a handler would, then looks again.
        if let Pop::Msg(m) | Pop::Refilled(m) = mb.pop(&mut batch) {
            popped.push(m);
            let (rest, _) = drain_all(&mb, &mut batch);
            popped.extend(rest);
        }
        let handed_back = closer.join().unwrap().expect("the only close");
        let accepted = producer.join().unwrap();
        let mut all: Vec<u32> = popped.iter().chain(handed_back.iter()).copied().collect();
        all.sort_unstable();
        let expected: Vec<u32> = if accepted { vec![1, 2, 3, 4] } else { vec![1, 2, 3] };
        // Every accepted message was popped (the runner's batch first, which it pops
        // before it can see the close) or handed back, exactly once.
        assert_eq!(all, expected);
        // The runner's messages come first, in order; the close hands back the rest in order.
        let mut order = popped.clone();
        order.extend(handed_back.iter().filter(|m| **m != 4));
        let without_4: Vec<u32> = order.into_iter().filter(|m| *m != 4).collect();
        assert_eq!(without_4, vec![1, 2, 3]);
    });
}

#[test]
fn push_all_schedules_once_and_keeps_order_against_another_sender() {
    loom::model(|| {
        let mb = Arc::new(Mailbox::<u32>::new_running());
        // The runner goes idle first, or races the pushes below.
        let m2 = mb.clone();
        let batcher = thread::spawn(move || usize::from(m2.push_all(vec![1, 2, 3]).unwrap()));
        let m3 = mb.clone();
        let single = thread::spawn(move || usize::from(m3.push(10).unwrap()));
        let mut batch = VecDeque::new();
        let (mut got, closed) = drain_all(&mb, &mut batch);
        assert!(!closed);
        let scheduled = batcher.join().unwrap() + single.join().unwrap();
        // Whatever the runner left behind, exactly one of the two pushes scheduled it,
        // once; nothing queued after the runner went idle is left without a schedule.
        assert_eq!(scheduled, usize::from(got.len() < 4));
        let (rest, _) = drain_all(&mb, &mut batch);
        got.extend(rest);
        // Every message once; the batch's three in their order.
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![1, 2, 3, 10]);
        let from_batch: Vec<u32> = got.into_iter().filter(|m| *m != 10).collect();
        assert_eq!(from_batch, vec![1, 2, 3]);
    });
}

#[test]
fn push_all_races_close_all_or_nothing() {
    loom::model(|| {
        let mb = Arc::new(Mailbox::<u32>::new_running());
        let m2 = mb.clone();
        let producer = thread::spawn(move || match m2.push_all(vec![1, 2]) {
            Ok(_) => None,
            Err(back) => Some(back),
        });
        let (queue, _schedule) = mb.close().unwrap();
        let refused = producer.join().unwrap();
        // Either the close handed back the whole batch, or the push handed it back whole.
        match refused {
            None => assert_eq!(queue.into_iter().collect::<Vec<_>>(), vec![1, 2]),
            Some(back) => {
                assert_eq!(back, vec![1, 2]);
                assert!(queue.is_empty());
            }
        }
        assert!(mb.push_all(vec![3]).is_err());
    });
}
