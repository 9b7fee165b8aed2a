//! With no logger installed, a crash report goes to standard error (as Elixir prints one
//! by default): the server, the callback and message type, the reason, the panic's file and
//! line, and a backtrace when `RUST_BACKTRACE` asks for one. The crash runs in a child
//! process (this test binary, re-run) so that its standard error can be read.

use arbor_core::*;
use std::process::Command;
use std::time::Duration;

struct Fragile;

impl GenServer for Fragile {
    type Args = ();
    type Info = u32;
    type Call = ();
    type Reply = ();
    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Fragile)
    }
    fn handle_info(&mut self, n: u32, _ctx: &mut Context<'_, Self>) -> Flow {
        panic!("fragile got {n}");
    }
}

/// The child's side: crash a server, with no logger installed.
fn crash_in_child() {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let s = rt.start::<Fragile>(()).unwrap();
    println!("pid {}", s.pid());
    s.send(7).unwrap();
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
}

fn run_child(backtrace: &str) -> (String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_reports_go_to_stderr_without_a_logger",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ARBOR_CRASH_CHILD", "1")
        .env("RUST_BACKTRACE", backtrace)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn crash_reports_go_to_stderr_without_a_logger() {
    if std::env::var_os("ARBOR_CRASH_CHILD").is_some() {
        crash_in_child();
        return;
    }
    let (stdout, stderr) = run_child("0");
    // The harness prints the test's name on the same line as the child's own output.
    let pid = stdout
        .split("pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the child's pid in: {stdout}"));
    let report = stderr
        .lines()
        .find(|l| l.starts_with("[arbor crash report]"))
        .unwrap_or_else(|| panic!("no report in: {stderr}"));
    assert!(report.contains(pid), "{report}");
    assert!(report.contains("Fragile"), "{report}");
    assert!(report.contains("handle_info(u32)"), "{report}");
    assert!(report.contains("fragile got 7"), "{report}");
    assert!(
        stderr.contains("panicked at ") && stderr.contains("crash_stderr.rs:"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace:"), "no backtrace unless asked: {stderr}");
    let (_, with_bt) = run_child("1");
    assert!(with_bt.contains("backtrace:"), "{with_bt}");
}
