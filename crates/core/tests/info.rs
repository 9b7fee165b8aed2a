//! Introspection: what `process_info` reports of a process's activity.

mod common;
use arbor_core::*;
use common::*;
use std::time::{Duration, SystemTime};

struct Counter(u64);

impl GenServer for Counter {
    type Args = ();
    type Info = ();
    type Call = ();
    type Reply = u64;
    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Counter(0))
    }
    fn handle_info(&mut self, _: (), _ctx: &mut Context<'_, Self>) -> Flow {
        self.0 += 1;
        Flow::Continue
    }
    fn handle_call(&mut self, _: (), _f: ReplyTo<u64>, _ctx: &mut Context<'_, Self>) -> CallFlow<u64> {
        CallFlow::Reply(self.0)
    }
}

#[test]
fn messages_handled_counts_each_message_once_and_start_time_is_set() {
    let before = SystemTime::now();
    let rt = rt(2);
    let server = rt.start::<Counter>(()).unwrap();
    let info = rt.process_info(server.pid()).unwrap();
    assert_eq!(info.messages_handled, 0, "init is not a message");
    assert!(info.started >= before && info.started <= SystemTime::now());
    for _ in 0..1000 {
        server.send(()).unwrap();
    }
    // The call is handled after the 1000 messages (one sender's order), and its run
    // ends with it: the count is added as each run ends.
    assert_eq!(server.call_timeout((), Duration::from_secs(5)), Ok(1000));
    assert!(wait_until(|| rt
        .process_info(server.pid())
        .is_some_and(|i| i.messages_handled == 1001)));
    // Nothing more arrives: the count stays.
    assert_eq!(rt.process_info(server.pid()).unwrap().messages_handled, 1001);
}
