//! Crash reports go through `log`, naming the pid, the server type and the reason. Alone in
//! its file: it installs the global logger.

mod common;
use arbor_core::*;
use common::*;
use parking_lot::Mutex;

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

#[test]
fn panics_are_reported_through_log_and_the_worker_survives() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let rt = rt(1);
    let log = Log::default();
    let s = probe(&rt, "a", &log, InitMode::Ok).unwrap();
    let pid = s.pid();
    s.send("panic".into()).unwrap();
    assert_eq!(s.wait_exit(DEADLINE), Some(ExitReason::panic("boom in handle_info")));
    let errors: Vec<String> = RECORDS
        .lock()
        .iter()
        .filter(|(l, _)| *l == log::Level::Error)
        .map(|(_, m)| m.clone())
        .collect();
    let report = errors
        .iter()
        .find(|m| m.contains(&pid.to_string()))
        .expect("a crash report");
    assert!(report.contains("Probe"), "{report}");
    assert!(report.contains("handle_info"), "{report}");
    assert!(report.contains("boom in handle_info"), "{report}");
    // The single worker thread survived the panic.
    let t = probe(&rt, "b", &log, InitMode::Ok).unwrap();
    assert_eq!(t.call(Req::Echo(1)), Ok(Rep::N(1)));
}
