//! loom model of a worker's LIFO slot (`scheduler/lifo.rs`, the real code): its owner
//! fills and takes it while the pool's monitor takes it from another thread; every task put
//! in is taken exactly once, by one of them, and nothing is lost or duplicated.
#![cfg(loom)]

use arbor_core::loom_api::LifoSlot;
use loom::sync::Arc;
use loom::thread;

#[test]
fn owner_and_monitor_take_each_task_exactly_once() {
    loom::model(|| {
        let slot: Arc<LifoSlot<u32>> = Arc::new(LifoSlot::new());
        let s = slot.clone();
        let monitor = thread::spawn(move || s.take());
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
