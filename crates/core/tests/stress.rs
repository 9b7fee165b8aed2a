//! Stress: many processes and many messages. Sizes scale with `ARBOR_STRESS` (a float,
//! default 1.0 = 100,000 processes and 10,000,000 messages).

mod common;
use arbor_core::*;
use common::*;

fn scale() -> f64 {
    std::env::var("ARBOR_STRESS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0)
}

#[test]
fn stress_many_processes_many_messages_exactly_once() {
    let procs = ((100_000.0 * scale()) as usize).max(10);
    let messages = ((10_000_000.0 * scale()) as usize).max(1000);
    let per = messages / procs;
    let rt = rt(2);
    let servers: Vec<ServerRef<Summer>> = (0..procs).map(|_| rt.start::<Summer>(()).unwrap()).collect();
    assert_eq!(rt.process_count(), procs);
    let senders = 4;
    std::thread::scope(|s| {
        for t in 0..senders {
            let servers = &servers;
            s.spawn(move || {
                for round in 0..per {
                    for (i, srv) in servers.iter().enumerate() {
                        if i % senders == t {
                            srv.send(round as u64 + 1).unwrap();
                        }
                    }
                }
            });
        }
    });
    let want = (per as u64) * (per as u64 + 1) / 2;
    for srv in &servers {
        assert_eq!(srv.call_timeout((), DEADLINE), Ok(want));
    }
    for srv in &servers {
        srv.kill();
    }
    assert!(wait_until(|| rt.process_count() == 0));
}

/// Counts the calls it handles; each reply is its argument.
struct Echo(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl GenServer for Echo {
    type Args = std::sync::Arc<std::sync::atomic::AtomicU64>;
    type Info = ();
    type Call = u64;
    type Reply = u64;
    fn init(handled: Self::Args, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Echo(handled))
    }
    fn handle_call(&mut self, x: u64, _from: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        CallFlow::Reply(x)
    }
}

/// Servers killed while callers keep calling them, so that the kill lands on calls in the
/// inbox, in the runner's batch and in a handler: every call ends (none times out), with
/// its own reply or with `Killed`/`NoProc`, and a handled call is answered at most once.
#[test]
fn stress_kills_amid_calls_fail_every_call_promptly_and_exactly() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    const CALLERS: u64 = 4;
    let rounds = ((40.0 * scale()) as usize).max(4);
    let rt = rt(2);
    for round in 0..rounds {
        let handled = Arc::new(AtomicU64::new(0));
        let s = rt.start::<Echo>(handled.clone()).unwrap();
        let callers: Vec<_> = (0..CALLERS)
            .map(|c| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let (mut ok, mut failed) = (0u64, 0u64);
                    for i in 0..2_000u64 {
                        let x = c * 1_000_000 + i;
                        match s.call_timeout(x, std::time::Duration::from_secs(10)) {
                            Ok(y) => {
                                assert_eq!(y, x, "a reply reached the wrong call");
                                ok += 1;
                            }
                            Err(CallError::Exited(ExitReason::Killed)) | Err(CallError::NoProc) => failed += 1,
                            Err(e) => panic!("round {round}: call {x} ended with {e:?}"),
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        let target = 200 + (round as u64 * 97) % 3_000;
        assert!(wait_until(
            || handled.load(Ordering::SeqCst) >= target.min(CALLERS * 2_000)
        ));
        s.kill();
        let (mut ok, mut failed) = (0, 0);
        for c in callers {
            let (o, f) = c.join().unwrap();
            ok += o;
            failed += f;
        }
        assert_eq!(ok + failed, CALLERS * 2_000);
        let handled = handled.load(Ordering::SeqCst);
        // A call handled just as the kill landed is failed, not answered: at most one per
        // caller (each has one call in flight).
        assert!(ok <= handled && handled <= ok + CALLERS, "ok {ok}, handled {handled}");
    }
}
