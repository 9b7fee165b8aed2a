//! loom model of worker park/unpark: work pushed while a worker decides to sleep always
//! wakes it (loom reports a deadlock otherwise).
#![cfg(loom)]

use arbor_core::loom_api::Sleep;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

#[test]
fn pushed_work_always_wakes_a_sleeping_worker() {
    loom::model(|| {
        let sleep = Arc::new(Sleep::new());
        let work = Arc::new(AtomicBool::new(false));
        let (s2, w2) = (sleep.clone(), work.clone());
        let worker = thread::spawn(move || {
            while !w2.load(Ordering::SeqCst) {
                s2.sleep(None, || w2.load(Ordering::SeqCst));
            }
        });
        work.store(true, Ordering::SeqCst);
        sleep.wake_one();
        worker.join().unwrap();
    });
}

#[test]
fn two_pushes_two_sleepers() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let sleep = Arc::new(Sleep::new());
        let items = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (s, items) = (sleep.clone(), items.clone());
                thread::spawn(move || {
                    // Take one item, sleeping while there is none.
                    loop {
                        let n = items.load(Ordering::SeqCst);
                        if n > 0
                            && items
                                .compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
                                .is_ok()
                        {
                            return;
                        }
                        if n == 0 {
                            s.sleep(None, || items.load(Ordering::SeqCst) > 0);
                        } else {
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            items.fetch_add(1, Ordering::SeqCst);
            sleep.wake_one();
        }
        for w in workers {
            w.join().unwrap();
        }
    });
}

/// A worker's loop as the pool runs it: take a task (and if more are left, make sure a
/// worker is on its way for them, as `Pool::pop_injector` does), else spin (if no one
/// else does), else park. Returns once it has taken one task.
fn take_one(s: &Sleep, items: &AtomicUsize) {
    loop {
        let n = items.load(Ordering::SeqCst);
        if n > 0 {
            if items
                .compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                if n > 1 {
                    s.notify();
                }
                return;
            }
            continue;
        }
        if s.start_spinning() {
            let mut found = false;
            for _ in 0..2 {
                if items.load(Ordering::SeqCst) > 0 {
                    found = true;
                    break;
                }
                thread::yield_now();
            }
            s.stop_spinning(|| items.load(Ordering::SeqCst));
            if found {
                continue;
            }
        }
        s.sleep(None, || items.load(Ordering::SeqCst) > 0);
    }
}

/// A push that skips the wake-up because a worker spins is never lost, whether the
/// spinner finds it or gives up at that very moment.
#[test]
fn a_push_seen_by_a_spinner_is_never_lost() {
    loom::model(|| {
        let sleep = Arc::new(Sleep::new());
        let items = Arc::new(AtomicUsize::new(0));
        let (s, i) = (sleep.clone(), items.clone());
        let worker = thread::spawn(move || take_one(&s, &i));
        items.fetch_add(1, Ordering::SeqCst);
        sleep.notify();
        worker.join().unwrap();
    });
}

/// Two pushes while one worker spins and another sleeps: the spinner passes the word
/// on, whether it found the work or gave up just as it came, and both tasks are taken.
#[test]
fn a_spinner_that_finds_more_wakes_another_worker() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let sleep = Arc::new(Sleep::new());
        let items = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (s, i) = (sleep.clone(), items.clone());
                thread::spawn(move || take_one(&s, &i))
            })
            .collect();
        for _ in 0..2 {
            items.fetch_add(1, Ordering::SeqCst);
            sleep.notify();
        }
        for w in workers {
            w.join().unwrap();
        }
    });
}
