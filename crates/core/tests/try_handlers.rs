//! `?` inside handlers: `try_handle_info`, `try_handle_call`, `TryHandleCast`,
//! `TryHandleRequest` stop the server with the error as the reason; servers written with
//! the plain callbacks are unchanged.

mod common;
use arbor_core::*;
use std::num::ParseIntError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Parses what it is given; `?` on a `ParseIntError` everywhere.
struct Parser {
    total: i64,
    terminated: Arc<AtomicUsize>,
}

struct Add(String);
struct Parse(String);

impl Request for Parse {
    type Reply = i64;
}

#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

impl GenServer for Parser {
    type Args = Arc<AtomicUsize>;
    type Info = String;
    type Call = String;
    type Reply = i64;

    fn init(terminated: Arc<AtomicUsize>, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Parser { total: 0, terminated })
    }

    fn try_handle_info(&mut self, text: String, _ctx: &mut Context<'_, Self>) -> Result<Flow, ExitReason> {
        self.total += text.parse::<i64>()?;
        Ok(Flow::Continue)
    }

    fn try_handle_call(
        &mut self,
        text: String,
        _from: ReplyTo<i64>,
        _ctx: &mut Context<'_, Self>,
    ) -> Result<CallFlow<i64>, ExitReason> {
        if text == "no" {
            return Err(Refused("no").into());
        }
        self.total += text.parse::<i64>()?;
        Ok(CallFlow::Reply(self.total))
    }

    fn terminate(&mut self, _reason: &ExitReason, _ctx: &mut Context<'_, Self>) {
        self.terminated.fetch_add(1, Ordering::SeqCst);
    }
}

impl TryHandleCast<Add> for Parser {
    fn try_handle_cast(&mut self, Add(text): Add, _: &mut Context<'_, Self>) -> Result<Flow, ExitReason> {
        self.total += text.parse::<i64>()?;
        Ok(Flow::Continue)
    }
}

impl TryHandleRequest<Parse> for Parser {
    fn try_handle_request(
        &mut self,
        Parse(text): Parse,
        _: ReplyTo<i64>,
        _: &mut Context<'_, Self>,
    ) -> Result<CallFlow<i64>, ExitReason> {
        let n: i64 = text.parse()?;
        Ok(CallFlow::Reply(n))
    }
}

fn start() -> (Runtime, ServerRef<Parser>, Arc<AtomicUsize>) {
    let rt = Runtime::builder()
        .worker_threads(2)
        .crash_reports(CrashReports::Off)
        .build()
        .unwrap();
    let terminated = Arc::new(AtomicUsize::new(0));
    let server = rt.start::<Parser>(terminated.clone()).unwrap();
    (rt, server, terminated)
}

fn parse_error(text: &str) -> ParseIntError {
    text.parse::<i64>().unwrap_err()
}

#[test]
fn question_mark_in_handle_info_stops_with_the_error() {
    let (_rt, server, terminated) = start();
    server.send("1".into()).unwrap();
    server.send("x".into()).unwrap();
    let reason = server.wait_exit(common::DEADLINE).unwrap();
    assert_eq!(reason, ExitReason::error(parse_error("x")));
    assert_eq!(terminated.load(Ordering::SeqCst), 1, "terminate ran once");
}

#[test]
fn question_mark_in_handle_call_replies_ok_then_stops_the_caller_learning_why() {
    let (_rt, server, terminated) = start();
    assert_eq!(server.call("2".into()), Ok(2));
    assert_eq!(
        server.call("two".into()),
        Err(CallError::Exited(ExitReason::error(parse_error("two"))))
    );
    assert_eq!(
        server.wait_exit(common::DEADLINE),
        Some(ExitReason::error(parse_error("two")))
    );
    assert_eq!(terminated.load(Ordering::SeqCst), 1);
}

#[test]
fn an_error_of_ones_own_converts_with_into() {
    let (_rt, server, _) = start();
    let Err(CallError::Exited(reason)) = server.call("no".into()) else {
        panic!("the server refuses")
    };
    assert_eq!(reason.to_string(), ExitReason::error(Refused("no")).to_string());
}

#[test]
fn question_mark_in_a_cast_and_a_request() {
    let (_rt, server, _) = start();
    server.cast(Add("5".into())).unwrap();
    assert_eq!(server.request(Parse("7".into())), Ok(7));
    assert_eq!(server.call("0".into()), Ok(5));
    assert_eq!(
        server.request(Parse("seven".into())),
        Err(CallError::Exited(ExitReason::error(parse_error("seven"))))
    );

    let (_rt2, server, _) = start();
    server.cast(Add("five".into())).unwrap();
    assert_eq!(
        server.wait_exit(common::DEADLINE),
        Some(ExitReason::error(parse_error("five")))
    );
}

#[test]
fn wait_exit_gives_the_reason_even_when_the_server_leaves_the_table_first() {
    // The server stops right after the send; `wait_exit` may look while it is alive and
    // monitor it once it is gone: the reason must still be its own, never `NoProc`.
    let (rt, _, terminated) = start();
    for _ in 0..2_000 {
        let s = rt.start::<Parser>(terminated.clone()).unwrap();
        s.send("x".into()).unwrap();
        assert_eq!(s.wait_exit(common::DEADLINE), Some(ExitReason::error(parse_error("x"))));
    }
}
