//! Exit reasons between arbor and the BEAM.
//!
//! | arbor | BEAM |
//! | --- | --- |
//! | `Normal` (and `Ignore`) | `normal` |
//! | `Shutdown` | `shutdown` |
//! | `ShutdownWith(text)` | `{shutdown, <<text>>}` (from the BEAM: `{shutdown, atom}` too) |
//! | `Killed` | `killed` |
//! | `NoProc` | `noproc` |
//! | `Panic(message)` | `{panic, <<message>>}` |
//! | `Error(e)` | `{error, <<e's text>>}` |
//!
//! From the BEAM, any other reason becomes `ExitReason::custom` of its printed form, so
//! `noconnection` arrives as `Error("noconnection")`.

use crate::term::Term;
use arbor_core::ExitReason;

/// The BEAM's form of an arbor exit reason.
pub fn exit_to_term(reason: &ExitReason) -> Term {
    match reason {
        ExitReason::Normal | ExitReason::Ignore => Term::atom("normal"),
        ExitReason::Shutdown => Term::atom("shutdown"),
        ExitReason::ShutdownWith(p) => Term::tuple([Term::atom("shutdown"), Term::binary(&**p)]),
        ExitReason::Killed => Term::atom("killed"),
        ExitReason::NoProc => Term::atom("noproc"),
        ExitReason::Panic(m) => Term::tuple([Term::atom("panic"), Term::binary(&**m)]),
        ExitReason::Error(e) => Term::tuple([Term::atom("error"), Term::binary(e.to_string())]),
        other => Term::tuple([Term::atom("error"), Term::binary(other.to_string())]),
    }
}

/// arbor's form of a BEAM exit reason.
pub fn term_to_exit(reason: &Term) -> ExitReason {
    match reason {
        Term::Atom(a) => match a.as_str() {
            "normal" => ExitReason::Normal,
            "shutdown" => ExitReason::Shutdown,
            "killed" | "kill" => ExitReason::Killed,
            "noproc" => ExitReason::NoProc,
            other => ExitReason::custom(other),
        },
        Term::Tuple(t) if t.len() == 2 && t[0].is_atom("shutdown") => match &t[1] {
            Term::Binary(b) => ExitReason::shutdown_with(String::from_utf8_lossy(b)),
            Term::Atom(a) => ExitReason::shutdown_with(a.as_str()),
            other => ExitReason::shutdown_with(other),
        },
        other => ExitReason::custom(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_cross_both_ways() {
        let kinds = [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::shutdown_with("done"),
            ExitReason::Killed,
            ExitReason::NoProc,
        ];
        for r in kinds {
            assert_eq!(term_to_exit(&exit_to_term(&r)), r);
        }
        assert_eq!(
            exit_to_term(&ExitReason::panic("boom")).to_string(),
            "{:panic, \"boom\"}"
        );
        assert_eq!(
            exit_to_term(&ExitReason::custom("bad")).to_string(),
            "{:error, \"bad\"}"
        );
        assert_eq!(
            term_to_exit(&Term::atom("noconnection")),
            ExitReason::custom("noconnection")
        );
        let shutdown_atom = Term::tuple([Term::atom("shutdown"), Term::atom("bye")]);
        assert_eq!(term_to_exit(&shutdown_atom), ExitReason::shutdown_with("bye"));
    }
}
