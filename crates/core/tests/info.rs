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

/// A server that opts in to `get_state`, and can be told to block in a handler.
struct Shown {
    items: Vec<u32>,
    panic_in_format: bool,
}

enum ShownMsg {
    Push(u32),
    Block(std::sync::mpsc::Receiver<()>),
    PanicInFormat,
    Timeout(Duration),
}

impl GenServer for Shown {
    type Args = ();
    type Info = ShownMsg;
    type Call = ();
    type Reply = usize;
    fn init(_: (), _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Shown {
            items: Vec::new(),
            panic_in_format: false,
        })
    }
    fn handle_info(&mut self, msg: ShownMsg, ctx: &mut Context<'_, Self>) -> Flow {
        match msg {
            ShownMsg::Push(n) => self.items.push(n),
            ShownMsg::Block(rx) => {
                let _ = blocking(|| rx.recv());
            }
            ShownMsg::PanicInFormat => self.panic_in_format = true,
            ShownMsg::Timeout(d) => ctx.set_timeout(d),
        }
        Flow::Continue
    }
    fn handle_timeout(&mut self, _ctx: &mut Context<'_, Self>) -> Flow {
        self.items.push(999);
        Flow::Continue
    }
    fn handle_call(&mut self, _: (), _f: ReplyTo<usize>, _ctx: &mut Context<'_, Self>) -> CallFlow<usize> {
        CallFlow::Reply(self.items.len())
    }
    fn format_state(&self) -> Option<String> {
        assert!(!self.panic_in_format, "formatting refused");
        Some(format!("{:?}", self.items))
    }
}

const T: Duration = Duration::from_secs(5);

#[test]
fn get_state_formats_the_state_between_messages() {
    let rt = rt(2);
    let s = rt.start::<Shown>(()).unwrap();
    assert_eq!(rt.get_state(s.pid(), T), Ok(Some("[]".to_string())));
    for n in 0..3 {
        s.send(ShownMsg::Push(n)).unwrap();
    }
    // Answered after the messages sent before it (one sender's order).
    assert_eq!(rt.get_state(s.pid(), T), Ok(Some("[0, 1, 2]".to_string())));
    // A server that does not opt in answers None: its type is all one sees.
    let c = rt.start::<Counter>(()).unwrap();
    assert_eq!(rt.get_state(c.pid(), T), Ok(None));
}

#[test]
fn get_state_waits_for_a_running_handler_and_times_out_without_harm() {
    let rt = rt(2);
    let s = rt.start::<Shown>(()).unwrap();
    let (release, blocked) = std::sync::mpsc::channel();
    s.send(ShownMsg::Block(blocked)).unwrap();
    s.send(ShownMsg::Push(7)).unwrap();
    // The handler is running: no answer until it returns, so no race with it.
    assert_eq!(
        rt.get_state(s.pid(), Duration::from_millis(100)),
        Err(CallError::Timeout)
    );
    release.send(()).unwrap();
    assert_eq!(rt.get_state(s.pid(), T), Ok(Some("[7]".to_string())));
    assert_eq!(s.call(()), Ok(1));
}

#[test]
fn get_state_of_a_dead_process_and_a_panicking_formatter() {
    let rt = rt(2);
    let s = rt.start::<Shown>(()).unwrap();
    s.send(ShownMsg::PanicInFormat).unwrap();
    let answer = rt.get_state(s.pid(), T).unwrap().unwrap();
    assert!(
        answer.starts_with("<format_state panicked: formatting refused"),
        "{answer}"
    );
    assert!(rt.is_alive(s.pid()), "a panic in format_state does not end the server");
    s.stop(ExitReason::Normal, T).unwrap();
    assert_eq!(rt.get_state(s.pid(), T), Err(CallError::NoProc));
}

#[test]
fn get_state_does_not_reset_an_inactivity_timeout() {
    let rt = rt(2);
    let s = rt.start::<Shown>(()).unwrap();
    s.send(ShownMsg::Timeout(Duration::from_millis(300))).unwrap();
    // Asking again and again, faster than the timeout, does not keep it from firing.
    let start = std::time::Instant::now();
    loop {
        let state = rt.get_state(s.pid(), T).unwrap().unwrap();
        if state == "[999]" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the timeout never fired: {state}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn memory_estimate_counts_the_state_and_each_waiting_message() {
    let rt = rt(2);
    let s = rt.start::<Shown>(()).unwrap();
    let idle = rt.process_info(s.pid()).unwrap().memory_estimate;
    assert!(idle >= std::mem::size_of::<Shown>() + 64, "{idle}");
    let (release, blocked) = std::sync::mpsc::channel();
    s.send(ShownMsg::Block(blocked)).unwrap();
    assert!(wait_until(|| rt.process_info(s.pid()).unwrap().mailbox_len == 0));
    for n in 0..100 {
        s.send(ShownMsg::Push(n)).unwrap();
    }
    let busy = rt.process_info(s.pid()).unwrap();
    assert_eq!(busy.mailbox_len, 100);
    let per_message = (busy.memory_estimate - idle) / 100;
    assert_eq!(busy.memory_estimate - idle, 100 * per_message);
    assert!(per_message >= std::mem::size_of::<ShownMsg>(), "{per_message}");
    release.send(()).unwrap();
    assert!(wait_until(|| rt.process_info(s.pid()).unwrap().memory_estimate == idle));
}
