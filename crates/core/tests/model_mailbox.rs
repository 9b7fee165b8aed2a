//! Model-based test of mailboxes (issue 10): random interleavings of many senders (each a
//! process of its own), with kills, exit signals and stops of the receiver, checked against
//! the model "per sender, the handled messages are a prefix of the accepted ones, each
//! handled once; a stop handles everything queued before it; every accepted message is
//! handled or dropped exactly once".

mod common;

use arbor_core::*;
use common::{rt, DEADLINE};
use parking_lot::Mutex;
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts how each message ended.
#[derive(Default)]
struct Books {
    made: AtomicU64,
    handled: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    /// (incarnation, sender, seq) in the order handled.
    log: Mutex<Vec<(usize, usize, u64)>>,
}

/// Rides in each message; says on drop whether it was handled.
struct Token {
    books: Arc<Books>,
    done: bool,
}

impl Token {
    fn new(books: &Arc<Books>) -> Token {
        books.made.fetch_add(1, Ordering::SeqCst);
        Token {
            books: books.clone(),
            done: false,
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if !self.done {
            self.books.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

enum Msg {
    Data {
        sender: usize,
        seq: u64,
        token: Token,
    },
    /// Sleeps a little, so a backlog builds up behind it.
    Pause(u64),
}

struct Receiver {
    incarnation: usize,
    books: Arc<Books>,
}

impl GenServer for Receiver {
    type Args = (usize, Arc<Books>);
    type Info = Msg;
    type Call = ();
    type Reply = ();

    fn init((incarnation, books): (usize, Arc<Books>), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Receiver { incarnation, books })
    }

    fn handle_info(&mut self, msg: Msg, _: &mut Context<'_, Self>) -> Flow {
        match msg {
            Msg::Data { sender, seq, mut token } => {
                token.done = true;
                self.books.handled.fetch_add(1, Ordering::SeqCst);
                self.books.log.lock().push((self.incarnation, sender, seq));
            }
            Msg::Pause(us) => std::thread::sleep(Duration::from_micros(us)),
        }
        Flow::Continue
    }
}

/// A sender: a process that sends what it is told to, from itself.
struct Sender;

impl GenServer for Sender {
    type Args = ();
    type Info = ();
    type Call = Box<dyn FnOnce() + Send>;
    type Reply = ();

    fn init(_: (), _: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Sender)
    }

    fn handle_call(&mut self, f: Box<dyn FnOnce() + Send>, _: ReplyTo<()>, _: &mut Context<'_, Self>) -> CallFlow<()> {
        f();
        CallFlow::Reply(())
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Sender `s` sends `n` messages.
    Send(usize, u64),
    /// The receiver sleeps this many microseconds in a handler.
    Pause(u64),
    /// The receiver is killed / gets an exit signal / is stopped; a new one takes its place.
    Kill,
    Exit,
    Stop,
}

const SENDERS: usize = 6;

/// Sequence numbers per (incarnation of the receiver, sender).
type BySender = HashMap<(usize, usize), Vec<u64>>;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..SENDERS, 1..30u64).prop_map(|(s, n)| Op::Send(s, n)),
        2 => (0..300u64).prop_map(Op::Pause),
        1 => Just(Op::Kill),
        1 => Just(Op::Exit),
        1 => Just(Op::Stop),
    ]
}

proptest! {
    #[test]
    fn per_sender_fifo_and_exactly_once_under_kills_and_stops(ops in proptest::collection::vec(op(), 1..40)) {
        let books = Arc::new(Books::default());
        // Accepted seqs per (incarnation, sender); incarnations that ended in a stop.
        let accepted: Arc<Mutex<BySender>> = Default::default();
        let mut stopped = Vec::new();
        {
            let rt = rt(2);
            let senders: Vec<ServerRef<Sender>> = (0..SENDERS).map(|_| rt.start::<Sender>(()).unwrap()).collect();
            let mut incarnation = 0;
            let mut receiver = rt.start::<Receiver>((incarnation, books.clone())).unwrap();
            let mut next_seq = [0u64; SENDERS];
            for op in ops {
                match op {
                    Op::Send(s, n) => {
                        let (r, b, acc) = (receiver.clone(), books.clone(), accepted.clone());
                        let first = next_seq[s] + 1;
                        next_seq[s] += n;
                        senders[s]
                            .call(Box::new(move || {
                                for seq in first..first + n {
                                    let token = Token::new(&b);
                                    match r.send(Msg::Data { sender: s, seq, token }) {
                                        Ok(()) => acc.lock().entry((incarnation, s)).or_default().push(seq),
                                        Err(SendError(Msg::Data { mut token, .. })) => {
                                            token.done = true;
                                            b.rejected.fetch_add(1, Ordering::SeqCst);
                                        }
                                        Err(_) => unreachable!("a send hands back its own message"),
                                    }
                                }
                            }))
                            .unwrap();
                    }
                    Op::Pause(us) => {
                        let _ = receiver.send(Msg::Pause(us));
                    }
                    Op::Kill | Op::Exit | Op::Stop => {
                        match op {
                            Op::Kill => receiver.kill(),
                            Op::Exit => receiver.exit(ExitReason::custom("model")),
                            _ => {
                                prop_assert_eq!(receiver.stop(ExitReason::Normal, DEADLINE), Ok(()));
                                stopped.push(incarnation);
                            }
                        }
                        prop_assert!(receiver.wait_exit(DEADLINE).is_some());
                        incarnation += 1;
                        receiver = rt.start::<Receiver>((incarnation, books.clone())).unwrap();
                    }
                }
            }
            prop_assert_eq!(receiver.stop(ExitReason::Normal, DEADLINE), Ok(()));
            stopped.push(incarnation);
            rt.shutdown();
        }
        // Exactly once: every message made ended one way.
        let made = books.made.load(Ordering::SeqCst);
        let (h, d, r) = (
            books.handled.load(Ordering::SeqCst),
            books.dropped.load(Ordering::SeqCst),
            books.rejected.load(Ordering::SeqCst),
        );
        prop_assert_eq!(made, h + d + r, "made = handled + dropped + rejected");
        // Per sender and incarnation, what was handled is a prefix of what was accepted (FIFO,
        // no loss in the middle, no duplicate), all of it after a stop.
        let mut handled = BySender::new();
        for (inc, s, seq) in books.log.lock().iter() {
            handled.entry((*inc, *s)).or_default().push(*seq);
        }
        let accepted = accepted.lock();
        for (key, got) in &handled {
            let acc = accepted.get(key).cloned().unwrap_or_default();
            prop_assert!(got.len() <= acc.len() && acc[..got.len()] == got[..], "{:?}: handled {:?}, accepted {:?}", key, got, acc);
        }
        for (key, acc) in accepted.iter() {
            if stopped.contains(&key.0) {
                let got = handled.get(key).map_or(0, |g| g.len());
                prop_assert_eq!(got, acc.len(), "{:?}: a stop handles everything queued before it", key);
            }
        }
    }
}
