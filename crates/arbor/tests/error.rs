//! `arbor::Error`: every operation's error converts into it with `?`, keeps its text (each
//! saying what to do) and gives the operation's error as its `source`.

use arbor::registry::{NotAProcess, RegisterError, UpdateError};
use arbor::supervisor::{ChildError, OptionsError, SpecError, StartChildError, SupervisorStartError};
use arbor::{CallError, Error, ExitReason, NameError, NoProc, Pid, SendError, StartError};
use std::error::Error as _;

/// A pid, for the errors that carry one (its process is gone by the time it is used).
fn pid() -> Pid {
    struct Idle;
    impl arbor::GenServer for Idle {
        type Args = ();
        type Info = ();
        type Call = ();
        type Reply = ();
        fn init((): (), _: &mut arbor::Context<'_, Self>) -> Result<Self, ExitReason> {
            Ok(Idle)
        }
    }
    let rt = arbor::Runtime::new().unwrap();
    rt.start::<Idle>(()).unwrap().pid()
}

/// Converts with `?`, as an application function would.
fn via_question_mark<E: Into<Error>>(e: E) -> Result<(), Error> {
    Err(e.into())?;
    Ok(())
}

#[test]
fn every_error_converts_keeps_its_text_and_gives_its_source() {
    let p = pid();
    let cases: Vec<(Error, String)> = vec![
        (
            via_question_mark(CallError::Timeout).unwrap_err(),
            CallError::Timeout.to_string(),
        ),
        (
            via_question_mark(StartError::Timeout).unwrap_err(),
            StartError::Timeout.to_string(),
        ),
        (via_question_mark(NoProc).unwrap_err(), NoProc.to_string()),
        (
            via_question_mark(NameError::Taken(p)).unwrap_err(),
            NameError::Taken(p).to_string(),
        ),
        (
            via_question_mark(SpecError::EmptyId).unwrap_err(),
            SpecError::EmptyId.to_string(),
        ),
        (
            via_question_mark(OptionsError::ZeroMaxSeconds).unwrap_err(),
            OptionsError::ZeroMaxSeconds.to_string(),
        ),
        (
            via_question_mark(SupervisorStartError::Spec(SpecError::EmptyId)).unwrap_err(),
            SupervisorStartError::Spec(SpecError::EmptyId).to_string(),
        ),
        (
            via_question_mark(StartChildError::MaxChildren).unwrap_err(),
            StartChildError::MaxChildren.to_string(),
        ),
        (
            via_question_mark(ChildError::NotFound).unwrap_err(),
            ChildError::NotFound.to_string(),
        ),
        (
            via_question_mark(RegisterError::NotAProcess).unwrap_err(),
            RegisterError::NotAProcess.to_string(),
        ),
        (
            via_question_mark(UpdateError::NotRegistered).unwrap_err(),
            UpdateError::NotRegistered.to_string(),
        ),
        (via_question_mark(NotAProcess).unwrap_err(), NotAProcess.to_string()),
    ];
    for (err, text) in &cases {
        assert_eq!(&err.to_string(), text);
        let source = err.source().expect("the operation's error is the source");
        assert_eq!(&source.to_string(), text);
        // Each says what to do: a clause after the colon.
        assert!(text.contains(": ") || text.contains("; "), "no advice in {text:?}");
    }
    assert_eq!(cases.len(), 12);

    let send = via_question_mark(SendError(String::from("lost"))).unwrap_err();
    assert!(matches!(send, Error::Send(ty) if ty.contains("String")));
    assert!(send.to_string().contains("look the server up again"));

    let io = via_question_mark(std::io::Error::other("no threads")).unwrap_err();
    assert!(matches!(io, Error::Runtime(_)));
    assert!(io.source().is_some());

    let exited = via_question_mark(ExitReason::Killed).unwrap_err();
    assert!(matches!(exited, Error::Exited(ExitReason::Killed)));
}

#[test]
fn an_application_error_stops_a_server_through_question_mark() {
    // `arbor::Error` is a `std::error::Error`, so `?` in `init` and the `try_` handlers
    // turns it into the exit reason.
    struct Caller;
    impl arbor::GenServer for Caller {
        type Args = ();
        type Info = ();
        type Call = ();
        type Reply = ();
        fn init((): (), _: &mut arbor::Context<'_, Self>) -> Result<Self, ExitReason> {
            let failed: Result<(), Error> = Err(CallError::NoProc.into());
            failed?;
            Ok(Caller)
        }
    }
    let rt = arbor::Runtime::new().unwrap();
    let Err(StartError::Init(reason)) = rt.start::<Caller>(()) else {
        panic!("init fails")
    };
    assert!(reason.to_string().contains("no such process"), "{reason}");
}
