//! loom model of a worker's LIFO slot (`scheduler/lifo.rs`, the real code): its owner
//! fills and takes it while the pool's monitor steals from another thread; every task put
//! in is taken exactly once, by one of them, and nothing is lost or duplicated.
#![cfg(loom)]

use arbor_core::loom_api::LifoSlot;
use loom::sync::Arc;
use loom::thread;

#[test]
fn owner_and_monitor_take_each_task_exactly_once() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let slot: Arc<LifoSlot<u32>> = Arc::new(LifoSlot::new());
        let s = slot.clone();
        let monitor = thread::spawn(move || s.steal());
        // The owner: a handler wakes task 1, then task 2 displaces it (1 goes elsewhere),
        // then the worker takes what is left.
        let displaced_first = slot.replace(1);
        let displaced = slot.replace(2);
        let owner_took = slot.take();
        let monitor_took = monitor.join().unwrap();
        assert_eq!(displaced_first, None);
        let mut seen: Vec<u32> = [displaced, owner_took, monitor_took].into_iter().flatten().collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2], "each task exactly once");
        assert!(!slot.is_some());
    });
}

#[test]
fn two_stealers_and_the_owner_never_share_a_task() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let slot: Arc<LifoSlot<u32>> = Arc::new(LifoSlot::new());
        slot.replace(7);
        let (a, b) = (slot.clone(), slot.clone());
        let t1 = thread::spawn(move || a.steal());
        let t2 = thread::spawn(move || b.steal());
        let mine = slot.take();
        let got: Vec<u32> = [mine, t1.join().unwrap(), t2.join().unwrap()]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(got, vec![7]);
    });
}
