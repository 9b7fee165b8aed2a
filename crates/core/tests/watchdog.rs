//! The stuck-handler watchdog: a handler running past the threshold is reported once
//! through `log` (process, name, callback, message type) and listed by
//! `RuntimeHandle::stuck_handlers` while it runs. Alone in its file: it installs the
//! global logger.

mod common;
use arbor_core::*;
use common::{wait_until, DEADLINE};
use parking_lot::Mutex;
use std::sync::mpsc;
use std::time::Duration;

static RECORDS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;
impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS.lock().push((record.level(), record.args().to_string()));
    }
    fn flush(&self) {}
}

/// A request that blocks its handler until its channel speaks.
struct Wait(Mutex<Option<mpsc::Receiver<()>>>);

struct Slow;

impl GenServer for Slow {
    type Args = ();
    type Info = ();
    type Call = Wait;
    type Reply = ();
    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Slow)
    }
    fn handle_call(&mut self, w: Wait, _from: ReplyTo<()>, _ctx: &mut Context<'_, Self>) -> CallFlow<()> {
        if let Some(rx) = w.0.lock().take() {
            let _ = rx.recv_timeout(DEADLINE);
        }
        CallFlow::Reply(())
    }
}

#[test]
fn a_handler_past_the_threshold_is_reported_once_and_listed_while_it_runs() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let rt = Runtime::builder()
        .worker_threads(2)
        .watchdog_threshold(Duration::from_millis(30))
        .build()
        .unwrap();
    let slow = rt.start::<Slow>(()).unwrap();
    let (tx, rx) = mpsc::channel();
    let s2 = slow.clone();
    let caller = std::thread::spawn(move || s2.call_timeout(Wait(Mutex::new(Some(rx))), DEADLINE));
    assert!(wait_until(|| !rt.stuck_handlers().is_empty()));
    let stuck = rt.stuck_handlers();
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!(stuck[0].pid, slow.pid());
    assert!(stuck[0].type_name.ends_with("Slow"), "{stuck:?}");
    assert!(stuck[0].callback.starts_with("handle_call("), "{stuck:?}");
    assert!(stuck[0].callback.contains("Wait"), "{stuck:?}");
    assert!(stuck[0].running_for >= Duration::from_millis(30));
    assert!(wait_until(|| RECORDS
        .lock()
        .iter()
        .any(|(l, m)| *l == log::Level::Warn
            && m.contains(&slow.pid().to_string())
            && m.contains("handle_call"))));
    tx.send(()).unwrap();
    assert_eq!(caller.join().unwrap(), Ok(()));
    assert!(wait_until(|| rt.stuck_handlers().is_empty()));
    // Reported once for that one run, however long it lasted.
    let reports = RECORDS
        .lock()
        .iter()
        .filter(|(_, m)| m.contains(&slow.pid().to_string()) && m.contains("watchdog"))
        .count();
    assert_eq!(reports, 1);
    // A quick handler is never reported.
    let (tx2, rx2) = mpsc::channel();
    tx2.send(()).unwrap();
    assert_eq!(slow.call(Wait(Mutex::new(Some(rx2)))), Ok(()));
    assert!(rt.stuck_handlers().is_empty());
}
