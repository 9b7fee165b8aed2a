//! Smoke test: start, call, stop.
use arbor_core::*;
use std::time::Duration;

struct Echo;
impl GenServer for Echo {
    type Args = ();
    type Info = u32;
    type Call = u32;
    type Reply = u32;
    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Echo)
    }
    fn handle_call(&mut self, req: u32, _f: ReplyTo<u32>, _ctx: &mut Context<'_, Self>) -> CallFlow<u32> {
        CallFlow::Reply(req + 1)
    }
}

#[test]
fn smoke() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let s = rt.start::<Echo>(()).unwrap();
    for i in 0..1000 {
        assert_eq!(s.call(i), Ok(i + 1));
    }
    s.stop(ExitReason::Normal, Duration::from_secs(1)).unwrap();
    assert_eq!(s.call(1), Err(CallError::NoProc));
    drop(rt);
}
