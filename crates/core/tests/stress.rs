//! Stress: many processes and many messages. Sizes scale with `ARBOR_STRESS` (a float,
//! default 1.0 = 100,000 processes and 10,000,000 messages).

mod common;
use arbor_core::*;
use common::*;

struct Counter(u64);

impl GenServer for Counter {
    type Args = ();
    type Info = u64;
    type Call = ();
    type Reply = u64;
    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Counter(0))
    }
    fn handle_info(&mut self, n: u64, _ctx: &mut Context<'_, Self>) -> Flow {
        self.0 += n;
        Flow::Continue
    }
    fn handle_call(&mut self, _: (), _from: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(self.0)
    }
}

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
    let servers: Vec<ServerRef<Counter>> = (0..procs).map(|_| rt.start::<Counter>(()).unwrap()).collect();
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
