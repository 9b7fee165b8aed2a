//! Distribution frames after the handshake: a 4-byte length, then either nothing (a tick)
//! or a pass-through message (`112`, the control term, and for some controls the payload
//! term). This file turns frame bodies into [`Control`]s and back; it knows no sockets.

use crate::term::{self, Atom, DecodeError, DecodeLimits, EncodeError, ExtPid, ExtRef, Term};

const PASS_THROUGH: u8 = 112;

const LINK: i64 = 1;
const SEND: i64 = 2;
const EXIT: i64 = 3;
const UNLINK: i64 = 4;
const REG_SEND: i64 = 6;
const GROUP_LEADER: i64 = 7;
const EXIT2: i64 = 8;
const SEND_TT: i64 = 12;
const EXIT_TT: i64 = 13;
const REG_SEND_TT: i64 = 16;
const EXIT2_TT: i64 = 18;
const MONITOR_P: i64 = 19;
const DEMONITOR_P: i64 = 20;
const MONITOR_P_EXIT: i64 = 21;
const SEND_SENDER: i64 = 22;
const SEND_SENDER_TT: i64 = 23;
const PAYLOAD_EXIT: i64 = 24;
const PAYLOAD_EXIT_TT: i64 = 25;
const PAYLOAD_EXIT2: i64 = 26;
const PAYLOAD_EXIT2_TT: i64 = 27;
const PAYLOAD_MONITOR_P_EXIT: i64 = 28;
const ALIAS_SEND: i64 = 33;
const ALIAS_SEND_TT: i64 = 34;
const UNLINK_ID: i64 = 35;
const UNLINK_ID_ACK: i64 = 36;

/// A process named in a monitor: by pid, or by registered name (on the receiving node).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Proc {
    Pid(ExtPid),
    Name(Atom),
}

impl Proc {
    fn to_term(&self) -> Term {
        match self {
            Proc::Pid(p) => Term::Pid(p.clone()),
            Proc::Name(a) => Term::Atom(a.clone()),
        }
    }

    fn from_term(t: Term) -> Option<Proc> {
        match t {
            Term::Pid(p) => Some(Proc::Pid(p)),
            Term::Atom(a) => Some(Proc::Name(a)),
            _ => None,
        }
    }
}

/// A control message, with its payload where it has one. Trace tokens are read and
/// dropped; the payload (`PAYLOAD_*`) and plain forms of exits read the same.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Control {
    Link {
        from: ExtPid,
        to: ExtPid,
    },
    Send {
        to: ExtPid,
        msg: Term,
    },
    Exit {
        from: ExtPid,
        to: ExtPid,
        reason: Term,
    },
    /// The old unlink, without an id (peers without `UNLINK_ID`).
    Unlink {
        from: ExtPid,
        to: ExtPid,
    },
    RegSend {
        from: ExtPid,
        to: Atom,
        msg: Term,
    },
    GroupLeader,
    Exit2 {
        from: ExtPid,
        to: ExtPid,
        reason: Term,
    },
    MonitorP {
        from: ExtPid,
        to: Proc,
        reference: ExtRef,
    },
    DemonitorP {
        from: ExtPid,
        to: Proc,
        reference: ExtRef,
    },
    MonitorPExit {
        from: Proc,
        to: ExtPid,
        reference: ExtRef,
        reason: Term,
    },
    AliasSend {
        alias: ExtRef,
        msg: Term,
    },
    /// A `Send` whose message is `{'$gen_cast', req}` (as the parser reads it: the
    /// tuple is never built).
    Cast {
        to: ExtPid,
        req: Term,
    },
    /// A `RegSend` whose message is `{'$gen_cast', req}`.
    RegCast {
        from: ExtPid,
        to: Atom,
        req: Term,
    },
    UnlinkId {
        id: u64,
        from: ExtPid,
        to: ExtPid,
    },
    UnlinkIdAck {
        id: u64,
        from: ExtPid,
        to: ExtPid,
    },
}

/// Why a frame is not a message.
#[derive(Debug, PartialEq)]
pub(crate) enum FrameError {
    NotPassThrough(u8),
    Term(DecodeError),
    Control(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::NotPassThrough(b) => write!(f, "frame type {b} (only pass-through frames are negotiated)"),
            FrameError::Term(e) => write!(f, "{e}"),
            FrameError::Control(what) => write!(f, "bad control message: {what}"),
        }
    }
}

fn bad(what: &str, t: &[Term]) -> FrameError {
    let mut s = format!("{what}: {}", Term::Tuple(t.to_vec()));
    s.truncate(300);
    FrameError::Control(s)
}

fn pid(t: &Term) -> Option<ExtPid> {
    match t {
        Term::Pid(p) => Some(p.clone()),
        _ => None,
    }
}

fn reference(t: &Term) -> Option<ExtRef> {
    match t {
        Term::Ref(r) => Some((**r).clone()),
        _ => None,
    }
}

/// The control message of the last message frame a reader parsed, with its bytes. The
/// frames of a stream of messages from one sender to one process repeat it byte for
/// byte, and bytes that begin with a term's encoding hold that term (a term's encoding
/// ends where its own bytes say it does: none is a prefix of another), so a frame that
/// begins with these bytes has this control message, without decoding it again. The
/// reader's frames borrow it ([`Parsed::Message`]): no atom or pid is cloned per frame.
#[derive(Default)]
pub(crate) struct Memo {
    bytes: Vec<u8>,
    control: Option<Remembered>,
    /// Counts the control messages remembered: what the reader's routing keeps for the
    /// current one is valid while this stays the same (see `routing::RouteMemo`).
    serial: u64,
}

/// A remembered message's control message: where it goes (and who sent it).
#[derive(Debug)]
pub(crate) enum Remembered {
    /// `REG_SEND`: to a registered name.
    RegSend { from: ExtPid, to: Atom },
    /// `SEND` or `SEND_SENDER`: to a pid.
    Send { to: ExtPid },
}

/// Control messages longer than this are not remembered (a message's is well under).
const MEMO_MAX: usize = 512;

impl Memo {
    fn remember(&mut self, bytes: &[u8], control: Remembered) {
        self.bytes.clear();
        self.bytes.extend_from_slice(bytes);
        self.control = Some(control);
        self.serial = self.serial.wrapping_add(1);
    }

    /// The frame of `payload` with the remembered control message.
    fn message(&self, payload: Payload) -> Option<Parsed<'_>> {
        self.control.as_ref().map(|control| Parsed::Message {
            control,
            serial: self.serial,
            payload,
        })
    }
}

/// A frame as a reader reads it.
#[derive(Debug)]
pub(crate) enum Parsed<'m> {
    /// Any control message.
    Control(Control),
    /// A message whose control message is the reader's [`Memo`]'s (borrowed from it);
    /// `serial` tells one remembered control message from the next.
    Message {
        control: &'m Remembered,
        serial: u64,
        payload: Payload,
    },
}

impl Parsed<'_> {
    /// The frame as a [`Control`] (cloning what it borrows).
    #[cfg(test)]
    pub(crate) fn into_control(self) -> Control {
        match self {
            Parsed::Control(c) => c,
            Parsed::Message { control, payload, .. } => match control {
                Remembered::RegSend { from, to } => payload.reg_send(from.clone(), to.clone()),
                Remembered::Send { to } => payload.send(to.clone()),
            },
        }
    }
}

/// A message frame's payload: a cast's request, or any other message.
#[derive(Debug)]
pub(crate) enum Payload {
    /// `{'$gen_cast', Req}`: its `Req`.
    Cast(Term),
    /// Anything else, as it came.
    Msg(Term),
}

impl Payload {
    /// Tells a cast (`{'$gen_cast', Req}`) from any other message.
    fn of(msg: Term) -> Payload {
        match msg {
            Term::Tuple(mut t) if t.len() == 2 && t[0].is_atom("$gen_cast") => {
                Payload::Cast(t.pop().unwrap_or(Term::List(Vec::new())))
            }
            other => Payload::Msg(other),
        }
    }

    fn send(self, to: ExtPid) -> Control {
        match self {
            Payload::Cast(req) => Control::Cast { to, req },
            Payload::Msg(msg) => Control::Send { to, msg },
        }
    }

    fn reg_send(self, from: ExtPid, to: Atom) -> Control {
        match self {
            Payload::Cast(req) => Control::RegCast { from, to, req },
            Payload::Msg(msg) => Control::RegSend { from, to, msg },
        }
    }
}

/// The frames that carry messages (`SEND`, `SEND_SENDER`, `REG_SEND`: nearly all of a busy
/// connection's), read without the control tuple's vector, and without decoding a
/// control message equal to the last one (`memo`): the control message goes into the
/// memo (if it is not too long) and the frame borrows it. `None` for any other frame,
/// which [`parse_general`] reads. Same result as the general way.
fn parse_message<'m>(rest: &[u8], limits: DecodeLimits, memo: &'m mut Memo) -> Option<Result<Parsed<'m>, FrameError>> {
    use term::decode::{decode_tuple_prefix, SMALL_INTEGER_EXT};
    if rest.len() < 5 || rest[3] != SMALL_INTEGER_EXT {
        return None;
    }
    let op = i64::from(rest[4]);
    // As the general path: the payload is decoded (if there is one) before the control
    // message's elements are checked, and its absence is an error only after them.
    // The payload, read as a cast's request (without the tuple) when it is one.
    let payload = |used: usize| -> Result<Option<Payload>, FrameError> {
        let rest = &rest[used..];
        if rest.is_empty() {
            return Ok(None);
        }
        let (t, n) = match term::decode::decode_cast_prefix(rest, limits) {
            Some(r) => r.map(|(req, n)| (Payload::Cast(req), n)),
            None => term::decode_prefix(rest, limits).map(|(t, n)| (Payload::of(t), n)),
        }
        .map_err(FrameError::Term)?;
        if n != rest.len() {
            return Err(FrameError::Term(DecodeError::TrailingBytes(rest.len() - n)));
        }
        Ok(Some(t))
    };
    let need = |p: Option<Payload>| p.ok_or_else(|| FrameError::Control(format!("operation {op} without its payload")));
    if memo.control.is_some() && rest.starts_with(&memo.bytes) {
        let used = memo.bytes.len();
        return match payload(used).and_then(need) {
            Ok(p) => memo.message(p).map(Ok),
            Err(e) => Some(Err(e)),
        };
    }
    // A control message decoded here: remembered, and the frame borrows it; one too
    // long to remember is returned as it is.
    let (t, used) = match (rest[2], op) {
        (4, REG_SEND) => match decode_tuple_prefix::<4>(rest, limits)? {
            Ok((t, used)) => (Decoded::Four(t), used),
            Err(e) => return Some(Err(FrameError::Term(e))),
        },
        (3, SEND) | (3, SEND_SENDER) => match decode_tuple_prefix::<3>(rest, limits)? {
            Ok((t, used)) => (Decoded::Three(t), used),
            Err(e) => return Some(Err(FrameError::Term(e))),
        },
        _ => return None,
    };
    let p = match payload(used) {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    let (remembered, p) = match t {
        Decoded::Four([_, Term::Pid(from), _, Term::Atom(to)]) => (Remembered::RegSend { from, to }, need(p)),
        Decoded::Three([_, _, Term::Pid(to)]) => (Remembered::Send { to }, need(p)),
        Decoded::Four(t) => return Some(Err(bad("reg_send", &t))),
        Decoded::Three(t) => return Some(Err(bad("send", &t))),
    };
    let p = match p {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    if used > MEMO_MAX {
        return Some(Ok(Parsed::Control(match remembered {
            Remembered::RegSend { from, to } => p.reg_send(from, to),
            Remembered::Send { to } => p.send(to),
        })));
    }
    memo.remember(&rest[..used], remembered);
    memo.message(p).map(Ok)
}

/// A message's control tuple, as [`parse_message`] decodes it.
enum Decoded {
    Four([Term; 4]),
    Three([Term; 3]),
}

/// Reads a frame body (the bytes after the length; never empty: ticks are handled before).
#[cfg(test)]
pub(crate) fn parse(body: &[u8], limits: DecodeLimits) -> Result<Control, FrameError> {
    parse_remembering(body, limits, &mut Memo::default()).map(Parsed::into_control)
}

/// [`parse`] for a reader of a stream of frames, which keeps `memo` from one frame to the
/// next (see [`Memo`]).
pub(crate) fn parse_remembering<'m>(
    body: &[u8],
    limits: DecodeLimits,
    memo: &'m mut Memo,
) -> Result<Parsed<'m>, FrameError> {
    if body[0] != PASS_THROUGH {
        return Err(FrameError::NotPassThrough(body[0]));
    }
    let rest = &body[1..];
    if let Some(c) = parse_message(rest, limits, memo) {
        return c;
    }
    parse_general(rest, limits).map(Parsed::Control)
}

/// Reads a frame body after its pass-through byte, any operation.
fn parse_general(rest: &[u8], limits: DecodeLimits) -> Result<Control, FrameError> {
    let (ctl, used) = term::decode_prefix(rest, limits).map_err(FrameError::Term)?;
    let rest = &rest[used..];
    let payload = if rest.is_empty() {
        None
    } else {
        let (t, used) = term::decode_prefix(rest, limits).map_err(FrameError::Term)?;
        if used != rest.len() {
            return Err(FrameError::Term(DecodeError::TrailingBytes(rest.len() - used)));
        }
        Some(t)
    };
    let t = match ctl {
        Term::Tuple(t) if !t.is_empty() => t,
        other => return Err(FrameError::Control(format!("not a tuple: {other}"))),
    };
    let op = match t[0] {
        Term::Int(op) => op,
        _ => return Err(bad("no operation", &t)),
    };
    let need_payload =
        |p: Option<Term>| p.ok_or_else(|| FrameError::Control(format!("operation {op} without its payload")));
    let c = match (op, t.len()) {
        (LINK, 3) => Control::Link {
            from: pid(&t[1]).ok_or_else(|| bad("link", &t))?,
            to: pid(&t[2]).ok_or_else(|| bad("link", &t))?,
        },
        (SEND, 3) | (SEND_TT, 4) | (SEND_SENDER, 3) | (SEND_SENDER_TT, 4) => {
            let to = pid(&t[2]).ok_or_else(|| bad("send", &t))?;
            Payload::of(need_payload(payload)?).send(to)
        }
        (REG_SEND, 4) | (REG_SEND_TT, 5) => {
            let from = pid(&t[1]).ok_or_else(|| bad("reg_send", &t))?;
            let to = match &t[3] {
                Term::Atom(a) => a.clone(),
                _ => return Err(bad("reg_send", &t)),
            };
            Payload::of(need_payload(payload)?).reg_send(from, to)
        }
        (EXIT, 4) | (EXIT_TT, 5) | (EXIT2, 4) | (EXIT2_TT, 5) => {
            let from = pid(&t[1]).ok_or_else(|| bad("exit", &t))?;
            let to = pid(&t[2]).ok_or_else(|| bad("exit", &t))?;
            let reason = t[t.len() - 1].clone();
            if op == EXIT || op == EXIT_TT {
                Control::Exit { from, to, reason }
            } else {
                Control::Exit2 { from, to, reason }
            }
        }
        (PAYLOAD_EXIT, 3) | (PAYLOAD_EXIT_TT, 4) | (PAYLOAD_EXIT2, 3) | (PAYLOAD_EXIT2_TT, 4) => {
            let from = pid(&t[1]).ok_or_else(|| bad("exit", &t))?;
            let to = pid(&t[2]).ok_or_else(|| bad("exit", &t))?;
            let reason = need_payload(payload)?;
            if op == PAYLOAD_EXIT || op == PAYLOAD_EXIT_TT {
                Control::Exit { from, to, reason }
            } else {
                Control::Exit2 { from, to, reason }
            }
        }
        (UNLINK, 3) => Control::Unlink {
            from: pid(&t[1]).ok_or_else(|| bad("unlink", &t))?,
            to: pid(&t[2]).ok_or_else(|| bad("unlink", &t))?,
        },
        (GROUP_LEADER, 3) => Control::GroupLeader,
        (MONITOR_P, 4) | (DEMONITOR_P, 4) => {
            let from = pid(&t[1]).ok_or_else(|| bad("monitor", &t))?;
            let to = Proc::from_term(t[2].clone()).ok_or_else(|| bad("monitor", &t))?;
            let reference = reference(&t[3]).ok_or_else(|| bad("monitor", &t))?;
            if op == MONITOR_P {
                Control::MonitorP { from, to, reference }
            } else {
                Control::DemonitorP { from, to, reference }
            }
        }
        (MONITOR_P_EXIT, 5) | (PAYLOAD_MONITOR_P_EXIT, 4) => Control::MonitorPExit {
            from: Proc::from_term(t[1].clone()).ok_or_else(|| bad("monitor exit", &t))?,
            to: pid(&t[2]).ok_or_else(|| bad("monitor exit", &t))?,
            reference: reference(&t[3]).ok_or_else(|| bad("monitor exit", &t))?,
            reason: if op == MONITOR_P_EXIT {
                t[4].clone()
            } else {
                need_payload(payload)?
            },
        },
        (ALIAS_SEND, 3) | (ALIAS_SEND_TT, 4) => Control::AliasSend {
            alias: reference(&t[2]).ok_or_else(|| bad("alias send", &t))?,
            msg: need_payload(payload)?,
        },
        (UNLINK_ID, 4) | (UNLINK_ID_ACK, 4) => {
            let id = match &t[1] {
                Term::Int(i) if *i >= 0 => *i as u64,
                Term::BigInt(b) => b
                    .to_u128()
                    .and_then(|v| u64::try_from(v).ok())
                    .ok_or_else(|| bad("unlink id", &t))?,
                _ => return Err(bad("unlink id", &t)),
            };
            let from = pid(&t[2]).ok_or_else(|| bad("unlink", &t))?;
            let to = pid(&t[3]).ok_or_else(|| bad("unlink", &t))?;
            if op == UNLINK_ID {
                Control::UnlinkId { id, from, to }
            } else {
                Control::UnlinkIdAck { id, from, to }
            }
        }
        _ => return Err(bad("unknown operation", &t)),
    };
    Ok(c)
}

fn int(i: i64) -> Term {
    Term::Int(i)
}

fn p(pid: &ExtPid) -> Term {
    Term::Pid(pid.clone())
}

fn r(reference: &ExtRef) -> Term {
    Term::Ref(Box::new(reference.clone()))
}

/// Where [`message_frame`] sends.
pub(crate) enum To<'a> {
    Pid(&'a ExtPid),
    Name(&'a Atom),
}

/// A complete frame for a message from `from` to `to` (`SEND_SENDER` to a pid,
/// `REG_SEND` to a name), written straight from `msg`, wrapped as `{'$gen_cast', msg}`
/// if `cast`: what [`frame`] writes for a `Send` or `RegSend`, without building the
/// control tuple, cloning the message or allocating its atoms.
pub(crate) fn message_frame(
    from: &ExtPid,
    to: To<'_>,
    cast: bool,
    msg: &(impl crate::ToTerm + ?Sized),
) -> Result<Vec<u8>, EncodeError> {
    use term::decode::{SMALL_INTEGER_EXT, SMALL_TUPLE_EXT, VERSION};
    use term::encode::{put_atom, put_pid};
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&[0, 0, 0, 0, PASS_THROUGH, VERSION, SMALL_TUPLE_EXT]);
    match to {
        To::Pid(pid) => {
            out.extend_from_slice(&[3, SMALL_INTEGER_EXT, SEND_SENDER as u8]);
            put_pid(from, &mut out)?;
            put_pid(pid, &mut out)?;
        }
        To::Name(name) => {
            out.extend_from_slice(&[4, SMALL_INTEGER_EXT, REG_SEND as u8]);
            put_pid(from, &mut out)?;
            // the empty atom: SMALL_ATOM_UTF8_EXT, length 0
            out.extend_from_slice(&[term::decode::SMALL_ATOM_UTF8_EXT, 0]);
            put_atom(name, &mut out)?;
        }
    }
    out.push(VERSION);
    if cast {
        out.extend_from_slice(&[SMALL_TUPLE_EXT, 2, term::decode::SMALL_ATOM_UTF8_EXT, 9]);
        out.extend_from_slice(b"$gen_cast");
    }
    msg.encode_term(&mut out)?;
    let len = u32::try_from(out.len() - 4).map_err(|_| EncodeError::TooLong)?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// Where [`reply_frame`] sends: the caller's alias, or its pid.
pub(crate) enum ReplyTo<'a> {
    Alias(&'a ExtRef),
    Pid(&'a ExtPid),
}

/// A complete frame for the reply `{tag, reply}` to a BEAM caller, from `from`
/// (`ALIAS_SEND` to an alias, `SEND_SENDER` to a pid), written straight from `tag` and
/// `reply`: what [`frame`] writes for the `AliasSend` or `Send` of that tuple, without
/// building the tuple, the control message, or the reply's term.
pub(crate) fn reply_frame(
    from: &ExtPid,
    to: ReplyTo<'_>,
    tag: &Term,
    reply: &(impl crate::ToTerm + ?Sized),
) -> Result<Vec<u8>, EncodeError> {
    use term::decode::{SMALL_INTEGER_EXT, SMALL_TUPLE_EXT, VERSION};
    use term::encode::{put, put_pid, put_ref};
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&[0, 0, 0, 0, PASS_THROUGH, VERSION, SMALL_TUPLE_EXT, 3, SMALL_INTEGER_EXT]);
    match to {
        ReplyTo::Alias(alias) => {
            out.push(ALIAS_SEND as u8);
            put_pid(from, &mut out)?;
            put_ref(alias, &mut out)?;
        }
        ReplyTo::Pid(pid) => {
            out.push(SEND_SENDER as u8);
            put_pid(from, &mut out)?;
            put_pid(pid, &mut out)?;
        }
    }
    out.extend_from_slice(&[VERSION, SMALL_TUPLE_EXT, 2]);
    put(tag, &mut out)?;
    reply.encode_term(&mut out)?;
    let len = u32::try_from(out.len() - 4).map_err(|_| EncodeError::TooLong)?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// A complete frame (length included) for a control message, with its payload.
/// `from` is the sending process where the control carries one.
pub(crate) fn frame(c: &Control, from: Option<&ExtPid>) -> Result<Vec<u8>, EncodeError> {
    use std::borrow::Cow;
    let cast = |req: &Term| Cow::Owned(Term::Tuple(vec![Term::atom("$gen_cast"), req.clone()]));
    let (ctl, payload): (Term, Option<Cow<'_, Term>>) = match c {
        Control::Cast { to, req } => match from {
            Some(f) => (Term::Tuple(vec![int(SEND_SENDER), p(f), p(to)]), Some(cast(req))),
            None => (Term::Tuple(vec![int(SEND), Term::atom(""), p(to)]), Some(cast(req))),
        },
        Control::RegCast { from, to, req } => (
            Term::Tuple(vec![int(REG_SEND), p(from), Term::atom(""), Term::Atom(to.clone())]),
            Some(cast(req)),
        ),
        Control::Link { from, to } => (Term::Tuple(vec![int(LINK), p(from), p(to)]), None),
        Control::Send { to, msg } => match from {
            Some(f) => (
                Term::Tuple(vec![int(SEND_SENDER), p(f), p(to)]),
                Some(Cow::Borrowed(msg)),
            ),
            None => (
                Term::Tuple(vec![int(SEND), Term::atom(""), p(to)]),
                Some(Cow::Borrowed(msg)),
            ),
        },
        Control::Exit { from, to, reason } => (
            Term::Tuple(vec![int(PAYLOAD_EXIT), p(from), p(to)]),
            Some(Cow::Borrowed(reason)),
        ),
        Control::Exit2 { from, to, reason } => (
            Term::Tuple(vec![int(PAYLOAD_EXIT2), p(from), p(to)]),
            Some(Cow::Borrowed(reason)),
        ),
        Control::Unlink { from, to } => (Term::Tuple(vec![int(UNLINK), p(from), p(to)]), None),
        Control::RegSend { from, to, msg } => (
            Term::Tuple(vec![int(REG_SEND), p(from), Term::atom(""), Term::Atom(to.clone())]),
            Some(Cow::Borrowed(msg)),
        ),
        Control::GroupLeader => return Err(EncodeError::TooLong),
        Control::MonitorP { from, to, reference } => (
            Term::Tuple(vec![int(MONITOR_P), p(from), to.to_term(), r(reference)]),
            None,
        ),
        Control::DemonitorP { from, to, reference } => (
            Term::Tuple(vec![int(DEMONITOR_P), p(from), to.to_term(), r(reference)]),
            None,
        ),
        Control::MonitorPExit {
            from,
            to,
            reference,
            reason,
        } => (
            Term::Tuple(vec![int(PAYLOAD_MONITOR_P_EXIT), from.to_term(), p(to), r(reference)]),
            Some(Cow::Borrowed(reason)),
        ),
        Control::AliasSend { alias, msg } => {
            let f = from.map(p).unwrap_or_else(|| Term::atom(""));
            (
                Term::Tuple(vec![int(ALIAS_SEND), f, r(alias)]),
                Some(Cow::Borrowed(msg)),
            )
        }
        Control::UnlinkId { id, from, to } => (
            Term::Tuple(vec![int(UNLINK_ID), Term::Int(*id as i64), p(from), p(to)]),
            None,
        ),
        Control::UnlinkIdAck { id, from, to } => (
            Term::Tuple(vec![int(UNLINK_ID_ACK), Term::Int(*id as i64), p(from), p(to)]),
            None,
        ),
    };
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[0, 0, 0, 0, PASS_THROUGH]);
    term::encode_into(&ctl, &mut out)?;
    if let Some(m) = payload {
        term::encode_into(&m, &mut out)?;
    }
    let len = u32::try_from(out.len() - 4).map_err(|_| EncodeError::TooLong)?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(id: u32) -> ExtPid {
        ExtPid {
            node: Atom::new("a@h"),
            id,
            serial: 0,
            creation: 1,
        }
    }

    #[test]
    fn frames_read_back() {
        let reference = ExtRef {
            node: Atom::new("a@h"),
            creation: 1,
            id: vec![1, 2, 3],
        };
        let cases = vec![
            Control::Link {
                from: pid(1),
                to: pid(2),
            },
            Control::RegSend {
                from: pid(1),
                to: Atom::new("kv"),
                msg: Term::Int(5),
            },
            Control::Exit {
                from: pid(1),
                to: pid(2),
                reason: Term::atom("boom"),
            },
            Control::MonitorP {
                from: pid(1),
                to: Proc::Name(Atom::new("kv")),
                reference: reference.clone(),
            },
            Control::MonitorPExit {
                from: Proc::Pid(pid(2)),
                to: pid(1),
                reference: reference.clone(),
                reason: Term::atom("noproc"),
            },
            Control::UnlinkId {
                id: 7,
                from: pid(1),
                to: pid(2),
            },
        ];
        for c in cases {
            let f = frame(&c, None).unwrap();
            assert_eq!(u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize, f.len() - 4);
            assert_eq!(parse(&f[4..], DecodeLimits::default()).unwrap(), c);
        }
        let send = Control::Send {
            to: pid(2),
            msg: Term::atom("hi"),
        };
        let f = frame(&send, Some(&pid(1))).unwrap();
        assert_eq!(parse(&f[4..], DecodeLimits::default()).unwrap(), send);
        let alias = Control::AliasSend {
            alias: reference,
            msg: Term::atom("hi"),
        };
        let f = frame(&alias, Some(&pid(1))).unwrap();
        assert_eq!(parse(&f[4..], DecodeLimits::default()).unwrap(), alias);
    }

    #[test]
    fn message_frames_are_the_frames_of_send_and_reg_send() {
        let msg = Term::tuple([Term::atom("bump"), Term::binary("é"), Term::Int(-70000)]);
        let cast = Term::tuple([Term::atom("$gen_cast"), msg.clone()]);
        let name = Atom::new("sink");
        for (wrapped, is_cast) in [(&msg, false), (&cast, true)] {
            let by_name = Control::RegSend {
                from: pid(1),
                to: name.clone(),
                msg: wrapped.clone(),
            };
            assert_eq!(
                message_frame(&pid(1), To::Name(&name), is_cast, &msg).unwrap(),
                frame(&by_name, None).unwrap()
            );
            let by_pid = Control::Send {
                to: pid(2),
                msg: wrapped.clone(),
            };
            let f = message_frame(&pid(1), To::Pid(&pid(2)), is_cast, &msg).unwrap();
            assert_eq!(f, frame(&by_pid, Some(&pid(1))).unwrap());
            // A cast reads back as one (its request, without the tuple), and writes as
            // the `Send` it stands for.
            let (read_pid, read_name) = if is_cast {
                let c = Control::Cast {
                    to: pid(2),
                    req: msg.clone(),
                };
                assert_eq!(frame(&c, Some(&pid(1))).unwrap(), f);
                let rc = Control::RegCast {
                    from: pid(1),
                    to: name.clone(),
                    req: msg.clone(),
                };
                assert_eq!(frame(&rc, None).unwrap(), frame(&by_name, None).unwrap());
                (c, rc)
            } else {
                (by_pid, by_name.clone())
            };
            assert_eq!(parse(&f[4..], DecodeLimits::default()).unwrap(), read_pid);
            let f = frame(&by_name, None).unwrap();
            assert_eq!(parse(&f[4..], DecodeLimits::default()).unwrap(), read_name);
        }
        // Every encoding of the tag reads as a cast: SMALL_ATOM_UTF8, ATOM_UTF8, SMALL_ATOM, ATOM.
        let tag = b"$gen_cast";
        for head in [vec![119u8, 9], vec![118, 0, 9], vec![115, 9], vec![100, 0, 9]] {
            let mut f = frame(
                &Control::Send {
                    to: pid(2),
                    msg: Term::Int(0),
                },
                None,
            )
            .unwrap();
            f.truncate(f.len() - 3); // the payload: 131, 97, 0
            f.extend_from_slice(&[131, 104, 2]);
            f.extend_from_slice(&head);
            f.extend_from_slice(tag);
            f.extend_from_slice(&[97, 5]);
            assert_eq!(
                parse(&f[4..], DecodeLimits::default()).unwrap(),
                Control::Cast {
                    to: pid(2),
                    req: Term::Int(5)
                },
                "{head:?}"
            );
        }
        // A value that is not a `Term` goes through its `to_term`.
        let f = message_frame(&pid(1), To::Name(&name), false, &(1u8, "x".to_string())).unwrap();
        let c = parse(&f[4..], DecodeLimits::default()).unwrap();
        assert_eq!(
            c,
            Control::RegSend {
                from: pid(1),
                to: name,
                msg: Term::tuple([Term::Int(1), Term::binary("x")]),
            }
        );
    }

    #[test]
    fn reply_frames_are_the_frames_of_alias_send_and_send() {
        let alias = ExtRef {
            node: Atom::new("c@h"),
            creation: 9,
            id: vec![4, 5, 6],
        };
        let tag = Term::ImproperList(Box::new((
            vec![Term::atom("alias")],
            Term::Ref(Box::new(alias.clone())),
        )));
        let reply = Term::tuple([Term::atom("ping"), Term::Int(70000)]);
        let msg = Term::tuple([tag.clone(), reply.clone()]);
        assert_eq!(
            reply_frame(&pid(1), ReplyTo::Alias(&alias), &tag, &reply).unwrap(),
            frame(
                &Control::AliasSend {
                    alias: alias.clone(),
                    msg: msg.clone()
                },
                Some(&pid(1))
            )
            .unwrap()
        );
        assert_eq!(
            reply_frame(&pid(1), ReplyTo::Pid(&pid(2)), &tag, &reply).unwrap(),
            frame(&Control::Send { to: pid(2), msg }, Some(&pid(1))).unwrap()
        );
        // A reply that is not a `Term` goes through its `encode_term`.
        let f = reply_frame(&pid(1), ReplyTo::Pid(&pid(2)), &Term::Int(1), &(7u8, "x".to_string())).unwrap();
        assert_eq!(
            parse(&f[4..], DecodeLimits::default()).unwrap(),
            Control::Send {
                to: pid(2),
                msg: Term::tuple([Term::Int(1), Term::tuple([Term::Int(7), Term::binary("x")])]),
            }
        );
    }

    /// The fast path for messages reads what the general path reads, and fails where it
    /// fails, on valid frames and on every one-byte mutation of them.
    #[test]
    fn the_message_fast_path_agrees_with_the_general_parse() {
        let msg = Term::tuple([Term::atom("$gen_cast"), Term::tuple([Term::atom("bump"), Term::Int(7)])]);
        let frames = [
            frame(
                &Control::RegSend {
                    from: pid(1),
                    to: Atom::new("sink"),
                    msg: msg.clone(),
                },
                None,
            )
            .unwrap(),
            frame(
                &Control::Send {
                    to: pid(2),
                    msg: msg.clone(),
                },
                Some(&pid(1)),
            )
            .unwrap(),
            frame(&Control::Send { to: pid(2), msg }, None).unwrap(),
        ];
        let limits = DecodeLimits::default();
        let fast_parse =
            |rest: &[u8], memo: &mut Memo| parse_message(rest, limits, memo).map(|r| r.map(Parsed::into_control));
        let mut fast = 0;
        // Once with a fresh memo each time, once with one memo kept across every frame,
        // mutated or not (as a reader keeps it): a remembered control message changes
        // nothing in what is read.
        let mut kept = Memo::default();
        for keep in [false, true] {
            let memo = |kept: &mut Memo| if keep { std::mem::take(kept) } else { Memo::default() };
            for f in &frames {
                let rest = &f[5..];
                let mut m0 = memo(&mut kept);
                assert_eq!(fast_parse(rest, &mut m0), Some(parse_general(rest, limits)));
                // the same frame again, from what it left in the memo
                assert_eq!(fast_parse(rest, &mut m0), Some(parse_general(rest, limits)));
                kept = m0;
                for i in 0..rest.len() {
                    for b in [0u8, 1, 2, 3, 4, 6, 22, 97, 100, 104, 119, 255] {
                        let mut m = rest.to_vec();
                        m[i] = b;
                        let mut mm = memo(&mut kept);
                        if let Some(r) = fast_parse(&m, &mut mm) {
                            fast += 1;
                            assert_eq!(r, parse_general(&m, limits), "byte {i} = {b}, memo kept: {keep}");
                        }
                        kept = mm;
                    }
                    // cut short
                    let mut mm = memo(&mut kept);
                    if let Some(r) = fast_parse(&rest[..i], &mut mm) {
                        assert_eq!(r, parse_general(&rest[..i], limits), "cut at {i}, memo kept: {keep}");
                    }
                    kept = mm;
                }
            }
        }
        assert!(fast > 200, "the fast path was taken {fast} times");
    }

    #[test]
    fn mutated_frames_never_panic() {
        let reference = ExtRef {
            node: Atom::new("a@h"),
            creation: 1,
            id: vec![1, 2, 3],
        };
        let frames: Vec<Vec<u8>> = vec![
            frame(
                &Control::RegSend {
                    from: pid(1),
                    to: Atom::new("kv"),
                    msg: Term::tuple([Term::atom("$gen_call"), Term::Int(1)]),
                },
                None,
            )
            .unwrap(),
            frame(
                &Control::MonitorPExit {
                    from: Proc::Name(Atom::new("kv")),
                    to: pid(1),
                    reference: reference.clone(),
                    reason: Term::atom("noproc"),
                },
                None,
            )
            .unwrap(),
            frame(
                &Control::AliasSend {
                    alias: reference,
                    msg: Term::binary("reply"),
                },
                Some(&pid(2)),
            )
            .unwrap(),
            frame(
                &Control::UnlinkId {
                    id: 1 << 40,
                    from: pid(1),
                    to: pid(2),
                },
                None,
            )
            .unwrap(),
        ];
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let base = &frames[(next() % frames.len() as u64) as usize][4..];
            let mut b = base.to_vec();
            for _ in 0..(1 + next() % 3) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            if next() % 3 == 0 {
                b.truncate(1 + (next() as usize) % b.len());
            }
            let _ = parse(&b, DecodeLimits::default());
        }
    }

    #[test]
    fn malformed_frames_are_errors() {
        let lim = DecodeLimits::default();
        assert_eq!(parse(&[68, 0], lim), Err(FrameError::NotPassThrough(68)));
        assert!(matches!(parse(&[112, 131, 97, 1], lim), Err(FrameError::Control(_))));
        assert!(matches!(
            parse(&[112, 131, 104, 1, 97, 99], lim),
            Err(FrameError::Control(_))
        ));
        // a send without its payload
        let f = frame(
            &Control::Send {
                to: pid(2),
                msg: Term::Int(1),
            },
            None,
        )
        .unwrap();
        let cut = f.len() - 3;
        assert!(parse(&f[4..cut], lim).is_err());
    }
}
