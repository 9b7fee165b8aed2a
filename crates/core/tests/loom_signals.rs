//! loom models of links, monitors and held calls against a process's exit: the real
//! `Bonds` of `process/bonds.rs` (what every process's header holds), the real `link`,
//! `monitor` and `announce` that `signal.rs` and `cell.rs` call, and the real reply
//! handle's shared part (`reply.rs`: reply, forget-once, drop), through `loom_api`.
//!
//! What stands in for the runtime is the model's [`World`], a [`Peers`]: its table never
//! drops a process (the runtime's keeps an exiting one until it is finalized), an exit
//! signal is `deliver_exit`'s rule (a trapping process gets a message, a `Normal` signal
//! from another is ignored, any other kills), and a death is what `Cell::die` does to the
//! bonds: `begin_exit`, the hooks, `announce`. Messages are recorded whether or not their
//! receiver is alive (a real mailbox drops them once closed), so "at most once" is checked
//! of every message sent, not only of those a live process would handle.
//!
//! Each model is checked without a preemption bound (all of them take a few seconds).
#![cfg(loom)]

use arbor_core::loom_api::bonds::{link, link_new_child, link_pair, monitor};
use arbor_core::loom_api::{pid, Abort, Bonds, Peers, ReplyHandle, Slot};
use arbor_core::{CallError, ExitReason, MonitorRef, NoProc, Pid};
use loom::sync::Mutex;
use loom::thread;
use std::sync::Arc;

/// Checks `f` in every interleaving (no preemption bound: each model takes well under a
/// second; `LOOM_MAX_PREEMPTIONS` would set one).
fn model(f: impl Fn() + Sync + Send + 'static) {
    loom::model::Builder::new().check(f);
}

/// What one model process was sent.
#[derive(Default)]
struct Inbox {
    /// Trapped exit signals: `(from, reason)`.
    exits: Vec<(Pid, ExitReason)>,
    /// Monitors fired: `(monitor, pid, reason)`.
    downs: Vec<(MonitorRef, Pid, ExitReason)>,
}

struct Proc {
    bonds: Bonds,
    inbox: Mutex<Inbox>,
}

/// The model's runtime: processes `0..n`, found by pid for ever.
struct World {
    procs: Vec<Arc<Proc>>,
}

impl World {
    fn new(n: u32, trapping: &[u32]) -> Arc<World> {
        let procs = (0..n)
            .map(|i| {
                let bonds = Bonds::new(pid(i));
                bonds.set_trap_exits(trapping.contains(&i));
                Arc::new(Proc {
                    bonds,
                    inbox: Mutex::new(Inbox::default()),
                })
            })
            .collect();
        Arc::new(World { procs })
    }

    fn p(&self, i: u32) -> &Arc<Proc> {
        &self.procs[i as usize]
    }

    /// What `Cell::die` does to the bonds: the first death wins, its hooks run, then
    /// everyone is told.
    fn die(&self, i: u32, reason: ExitReason) {
        let b = &self.p(i).bonds;
        if b.begin_exit(&reason) {
            // `release_names`: the hooks run before anyone else learns of the exit.
            for (_, hook) in b.take_hooks() {
                hook.on_exit(b.pid(), &reason);
            }
            b.announce(self, &reason);
        }
    }

    /// Trapped exit signals `to` was sent by `from`.
    fn exits(&self, to: u32, from: u32) -> Vec<ExitReason> {
        let inbox = self.p(to).inbox.lock().unwrap();
        inbox
            .exits
            .iter()
            .filter(|(f, _)| *f == pid(from))
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The `Down`s `to` was sent for `monitor`.
    fn downs(&self, to: u32, m: MonitorRef) -> Vec<(Pid, ExitReason)> {
        let inbox = self.p(to).inbox.lock().unwrap();
        inbox
            .downs
            .iter()
            .filter(|(r, _, _)| *r == m)
            .map(|(_, p, r)| (*p, r.clone()))
            .collect()
    }
}

impl Peers for World {
    type Proc = Arc<Proc>;

    fn find(&self, p: Pid) -> Option<Arc<Proc>> {
        self.procs.get(arbor_core::loom_api::index(p) as usize).cloned()
    }

    fn bonds(p: &Arc<Proc>) -> &Bonds {
        &p.bonds
    }

    fn exit_signal(&self, p: &Arc<Proc>, from: Pid, reason: ExitReason) {
        // `deliver_exit`'s rule for a trappable signal.
        if p.bonds.trap_exits() {
            self.exit_message(p, from, reason);
        } else if reason.is_normal() {
            if from == p.bonds.pid() {
                self.die(arbor_core::loom_api::index(from), ExitReason::Normal);
            }
        } else {
            self.die(arbor_core::loom_api::index(p.bonds.pid()), reason);
        }
    }

    fn exit_message(&self, p: &Arc<Proc>, from: Pid, reason: ExitReason) {
        p.inbox.lock().unwrap().exits.push((from, reason));
    }

    fn down(&self, p: Arc<Proc>, monitor: MonitorRef, of: Pid, reason: ExitReason) {
        p.inbox.lock().unwrap().downs.push((monitor, of, reason));
    }
}

/// Process 0 (`A`) links to process 1 (`B`) while `B` exits with `Shutdown`.
///
/// Either the link was in place before `B` closed, and `B`'s announcement signals `A`
/// (a trapping `A` gets the message, exactly once; any other dies with `Shutdown`), or
/// the link call finds `B` closed: a trapping `A` gets `{'EXIT', B, NoProc}` (exactly
/// once, and `link` says `Ok`, as OTP's `link/1`), any other gets `Err(NoProc)`. Never
/// a live `A` left linked to the dead `B` (the orphan of issue 9, item 1).
fn link_races_the_targets_exit(a_traps: bool) {
    model(move || {
        let w = World::new(2, if a_traps { &[0] } else { &[] });
        let w2 = w.clone();
        let b_exits = thread::spawn(move || w2.die(1, ExitReason::Shutdown));
        let linked = link(&*w, w.p(0), pid(1));
        b_exits.join().unwrap();

        let (a, b) = (&w.p(0).bonds, &w.p(1).bonds);
        assert!(!b.is_alive());
        assert_eq!(b.counts().links, 0, "a dead process keeps no link");
        if a.is_alive() {
            assert!(a.links().is_empty(), "A alive and linked to dead B: an orphan");
            if a_traps {
                let got = w.exits(0, 1);
                assert_eq!(got.len(), 1, "a trapping A hears of B's exit exactly once: {got:?}");
                assert!(matches!(got[0], ExitReason::Shutdown | ExitReason::NoProc));
                assert_eq!(linked, Ok(()));
            } else {
                assert_eq!(linked, Err(NoProc), "A alive, not signalled: the link must fail");
            }
        } else {
            assert!(!a_traps, "a trapping A never dies of a signal");
            assert_eq!(a.exit_reason(), Some(ExitReason::Shutdown), "A dies of B's exit only");
        }
    });
}

#[test]
fn link_races_the_targets_exit_not_trapping() {
    link_races_the_targets_exit(false);
}

#[test]
fn link_races_the_targets_exit_trapping() {
    link_races_the_targets_exit(true);
}

/// `A` (0), killed while its handler still runs, links to `B` (1): whatever the order,
/// `B` gets `A`'s exit signal exactly once (a trapping `B` as a message, any other dies
/// of it), and no link to the dead `A` is left on a live `B`.
fn link_from_an_exiting_process(b_traps: bool) {
    model(move || {
        let w = World::new(2, if b_traps { &[1] } else { &[] });
        let w2 = w.clone();
        let killer = thread::spawn(move || w2.die(0, ExitReason::Killed));
        let _ = link(&*w, w.p(0), pid(1));
        killer.join().unwrap();

        let (a, b) = (&w.p(0).bonds, &w.p(1).bonds);
        assert!(!a.is_alive());
        assert_eq!(a.counts().links, 0);
        if b_traps {
            assert!(b.is_alive());
            assert!(b.links().is_empty(), "B alive and linked to dead A: an orphan");
            assert_eq!(
                w.exits(1, 0),
                vec![ExitReason::Killed],
                "B hears of A's exit exactly once"
            );
        } else {
            assert_eq!(b.exit_reason(), Some(ExitReason::Killed), "B must go down with A");
        }
    });
}

#[test]
fn link_from_an_exiting_process_not_trapping() {
    link_from_an_exiting_process(false);
}

#[test]
fn link_from_an_exiting_process_trapping() {
    link_from_an_exiting_process(true);
}

/// `A` links to `B` while both exit (both trap, so every signal is counted): both end
/// dead with no link left, and neither was sent the other's exit more than once.
#[test]
fn link_while_both_sides_exit() {
    model(|| {
        let w = World::new(2, &[0, 1]);
        let (w2, w3) = (w.clone(), w.clone());
        let a_dies = thread::spawn(move || w2.die(0, ExitReason::Killed));
        let b_dies = thread::spawn(move || w3.die(1, ExitReason::Shutdown));
        let _ = link(&*w, w.p(0), pid(1));
        a_dies.join().unwrap();
        b_dies.join().unwrap();

        for (me, other) in [(0, 1), (1, 0)] {
            let b = &w.p(me).bonds;
            assert!(!b.is_alive());
            assert_eq!(b.counts().links, 0);
            assert!(w.exits(me, other).len() <= 1, "an exit signal sent twice");
        }
    });
}

/// `start_link`: a parent (0), killed while its handler still runs, links a new child (1)
/// before the child's `init`. Either the start fails with the parent's reason and the
/// child vanishes (what `cell::vanish` does to its bonds), or the link is in place and the
/// parent's exit kills the child: the child never outlives the parent unlinked (the
/// orphan of issue 9, item 1).
#[test]
fn start_link_races_the_parents_exit() {
    model(|| {
        let w = World::new(2, &[]);
        let w2 = w.clone();
        let killer = thread::spawn(move || w2.die(0, ExitReason::Killed));
        let (parent, child) = (&w.p(0).bonds, &w.p(1).bonds);
        let started = link_new_child(child, parent);
        if started.is_err() {
            // `vanish`: the child never ran and goes without notice.
            child.remove_links();
            child.begin_exit(&ExitReason::Normal);
            child.announce(&*w, &ExitReason::Normal);
        }
        killer.join().unwrap();

        assert!(!parent.is_alive());
        assert_eq!(parent.counts().links, 0);
        assert_eq!(child.counts().links, 0);
        match started {
            Err(reason) => {
                assert_eq!(reason, ExitReason::Killed, "the start fails with the parent's reason");
                assert_eq!(child.exit_reason(), Some(ExitReason::Normal), "the child vanished");
            }
            Ok(()) => assert_eq!(
                child.exit_reason(),
                Some(ExitReason::Killed),
                "the child outlived its parent"
            ),
        }
    });
}

/// `RuntimeHandle::link(a, b)` from outside while `b` (1) exits; `a` (0) traps, so its
/// messages are counted. Either no link was made (`Err`), or `a` hears of `b`'s exit
/// exactly once; a live `a` keeps no link to the dead `b`.
#[test]
fn link_from_outside_races_an_exit() {
    model(|| {
        let w = World::new(2, &[0]);
        let w2 = w.clone();
        let b_exits = thread::spawn(move || w2.die(1, ExitReason::Shutdown));
        let linked = link_pair(&*w, pid(0), pid(1));
        b_exits.join().unwrap();

        let (a, b) = (&w.p(0).bonds, &w.p(1).bonds);
        assert!(a.is_alive());
        assert!(a.links().is_empty(), "a live process linked to a dead one");
        assert_eq!(b.counts().links, 0);
        let got = w.exits(0, 1);
        assert!(got.len() <= 1, "an exit signal sent twice: {got:?}");
        if linked.is_ok() {
            assert_eq!(got, vec![ExitReason::Shutdown], "linked, so told of the exit");
        }
    });
}

/// The same while `a` (0) exits; `b` (1) traps: `b` hears of `a`'s exit at most once, and
/// exactly once if the link was reported made; `b` keeps no link to the dead `a`.
#[test]
fn link_from_outside_races_the_first_sides_exit() {
    model(|| {
        let w = World::new(2, &[1]);
        let w2 = w.clone();
        let a_exits = thread::spawn(move || w2.die(0, ExitReason::Shutdown));
        let linked = link_pair(&*w, pid(0), pid(1));
        a_exits.join().unwrap();

        let b = &w.p(1).bonds;
        assert!(b.links().is_empty(), "a live process linked to a dead one");
        let got = w.exits(1, 0);
        assert!(got.len() <= 1, "an exit signal sent twice: {got:?}");
        if linked.is_ok() {
            assert_eq!(got, vec![ExitReason::Shutdown], "linked, so told of the exit");
        }
    });
}

/// `A` (0) monitors `B` (1) while `B` exits: exactly one `Down` for the monitor, from the
/// announcement (`Shutdown`) or at once from the monitor call (`NoProc`); neither side
/// keeps an entry for it.
#[test]
fn monitor_races_the_targets_exit() {
    model(|| {
        let w = World::new(2, &[]);
        let w2 = w.clone();
        let b_exits = thread::spawn(move || w2.die(1, ExitReason::Shutdown));
        let m = monitor(&*w, &w.p(0).bonds, pid(1));
        b_exits.join().unwrap();

        let downs = w.downs(0, m);
        assert_eq!(downs.len(), 1, "exactly one Down: {downs:?}");
        assert_eq!(downs[0].0, pid(1));
        assert!(matches!(downs[0].1, ExitReason::Shutdown | ExitReason::NoProc));
        assert_eq!(w.p(0).bonds.counts().held_monitors, 0, "a fired monitor is not held");
        assert_eq!(w.p(1).bonds.counts().monitors, 0);
    });
}

/// `A` (0), killed while its handler runs, monitors `B` (1), which lives on: `B` keeps no
/// entry for the dead watcher (issue 9, item 2), and `A` none for `B`.
#[test]
fn a_dying_watcher_leaves_no_monitor_behind() {
    model(|| {
        let w = World::new(2, &[]);
        let w2 = w.clone();
        let killer = thread::spawn(move || w2.die(0, ExitReason::Killed));
        let m = monitor(&*w, &w.p(0).bonds, pid(1));
        killer.join().unwrap();

        assert!(w.p(1).bonds.is_alive());
        assert_eq!(
            w.p(1).bonds.counts().monitors,
            0,
            "the dead watcher's monitor stays on B"
        );
        assert_eq!(w.p(0).bonds.counts().held_monitors, 0);
        assert!(w.downs(0, m).is_empty(), "B did not exit");
    });
}

/// A monitor in place, then watcher and target exit at once: no entry is left on either
/// side, and the watcher was sent at most one `Down`.
#[test]
fn watcher_and_target_exit_at_once() {
    model(|| {
        let w = World::new(2, &[]);
        let m = monitor(&*w, &w.p(0).bonds, pid(1));
        assert_eq!(w.p(1).bonds.counts().monitors, 1);
        let (w2, w3) = (w.clone(), w.clone());
        let a_dies = thread::spawn(move || w2.die(0, ExitReason::Killed));
        let b_dies = thread::spawn(move || w3.die(1, ExitReason::Shutdown));
        a_dies.join().unwrap();
        b_dies.join().unwrap();

        assert_eq!(w.p(1).bonds.counts().monitors, 0);
        assert_eq!(w.p(0).bonds.counts().held_monitors, 0);
        assert!(w.downs(0, m).len() <= 1, "a Down sent twice");
    });
}

/// An exit hook added (and, if `remove`, removed) while its process exits: a hook whose
/// `add_hook` was refused never runs; one that was added runs exactly once, unless
/// `remove_hook` took it first (then never): whether it landed before `release_names`
/// took the hooks or after (then `announce` runs it); no hook is left behind.
fn exit_hook_races_the_exit(remove: bool) {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    model(move || {
        let w = World::new(1, &[]);
        let w2 = w.clone();
        let exits = thread::spawn(move || w2.die(0, ExitReason::Shutdown));
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let hook = w.p(0).bonds.add_hook(Arc::new(move |p: Pid, reason: &ExitReason| {
            assert_eq!((p, reason), (pid(0), &ExitReason::Shutdown));
            r.fetch_add(1, Ordering::SeqCst);
        }));
        let removed = hook.filter(|_| remove).map(|h| w.p(0).bonds.remove_hook(h));
        exits.join().unwrap();

        let expected = match (hook, removed) {
            (None, _) => 0,       // refused: the process was closed
            (_, Some(true)) => 0, // taken back before it ran
            (Some(_), _) => 1,    // it ran (the exit took it): exactly once
        };
        assert_eq!(
            runs.load(Ordering::SeqCst),
            expected,
            "hook added: {hook:?}, removed: {removed:?}"
        );
        assert_eq!(w.p(0).bonds.counts().hooks, 0, "a hook left behind");
    });
}

#[test]
fn exit_hook_races_the_exit_kept() {
    exit_hook_races_the_exit(false);
}

#[test]
fn exit_hook_races_the_exit_removed() {
    exit_hook_races_the_exit(true);
}

/// The calls module: a server's `Bonds` alone (no other process is reached).
mod calls {
    use super::*;
    use std::task::Poll;

    /// No other process: a server's death reaches only its held calls.
    struct Alone;

    impl Peers for Alone {
        type Proc = Arc<Bonds>;

        fn find(&self, _: Pid) -> Option<Arc<Bonds>> {
            None
        }

        fn bonds(p: &Arc<Bonds>) -> &Bonds {
            p
        }

        fn exit_signal(&self, _: &Arc<Bonds>, _: Pid, _: ExitReason) {
            unreachable!("no process is found")
        }

        fn exit_message(&self, _: &Arc<Bonds>, _: Pid, _: ExitReason) {
            unreachable!("no process is found")
        }

        fn down(&self, _: Arc<Bonds>, _: MonitorRef, _: Pid, _: ExitReason) {
            unreachable!("no process is found")
        }
    }

    fn kill(server: &Bonds) {
        if server.begin_exit(&ExitReason::Killed) {
            server.announce(&Alone, &ExitReason::Killed);
        }
    }

    /// A slot with no waiting thread (so no resolution unparks a thread that may be
    /// waiting for one of loom's locks: see `loom_pool.rs`); the caller looks, then gives
    /// up, as `Slot::wait` does at its deadline.
    fn slot() -> Arc<Slot<u32>> {
        Arc::new(Slot::for_task(None))
    }

    fn give_up(slot: &Slot<u32>) -> Result<u32, CallError> {
        match slot.try_take() {
            Some(v) => v,
            None => slot.abandon().unwrap_or(Err(CallError::Timeout)),
        }
    }

    /// The server holds a call and drops its reply handle unanswered while the caller
    /// gives up (and, if `killed`, while the server is killed): the caller gets one
    /// outcome, and the held-call entry goes whatever the order (issue 9, item 3).
    fn unanswered_call_races_the_callers_timeout(killed: bool) {
        model(move || {
            let server = Arc::new(Bonds::new(pid(0)));
            let call = slot();
            let (s, c) = (server.clone(), call.clone());
            let handler = thread::spawn(move || {
                let key = s.held_calls().hold(c.clone() as Arc<dyn Abort>);
                if let Some(key) = key {
                    drop(ReplyHandle::new(c, s, key));
                } else {
                    // Dequeued after the server's death: failed at once, as the runner does.
                    c.resolve(Err(CallError::Exited(ExitReason::Killed)));
                }
            });
            let killer = killed.then(|| {
                let s = server.clone();
                thread::spawn(move || kill(&s))
            });
            let got = give_up(&call);
            handler.join().unwrap();
            if let Some(k) = killer {
                k.join().unwrap();
            }
            match got {
                Err(CallError::NoReply) | Err(CallError::Timeout) => {}
                Err(CallError::Exited(ExitReason::Killed)) if killed => {}
                other => panic!("unexpected {other:?}"),
            }
            assert_eq!(server.counts().held_calls, 0, "a held call left behind");
        });
    }

    #[test]
    fn unanswered_call_races_the_callers_timeout_server_alive() {
        unanswered_call_races_the_callers_timeout(false);
    }

    #[test]
    fn unanswered_call_races_the_callers_timeout_server_killed() {
        unanswered_call_races_the_callers_timeout(true);
    }

    /// Two replies race through clones of one reply handle while a second call is held,
    /// possibly under the key the first just gave back (issue 9, item 4): exactly one
    /// reply wins, the second call's entry stays held (the losing reply removes nothing),
    /// so the server's death then fails the second call at once; at the end no call is
    /// held.
    #[test]
    fn a_losing_reply_never_forgets_another_call() {
        model(|| {
            let server = Arc::new(Bonds::new(pid(0)));
            let first = slot();
            let key = server.held_calls().hold(first.clone() as Arc<dyn Abort>).unwrap();
            let reply_to = ReplyHandle::new(first.clone(), server.clone(), key);
            let clone = reply_to.clone();
            let one = thread::spawn(move || reply_to.reply(1));
            let two = thread::spawn(move || clone.reply(2));

            let second = slot();
            let key2 = server.held_calls().hold(second.clone() as Arc<dyn Abort>).unwrap();
            let second_to = ReplyHandle::new(second.clone(), server.clone(), key2);
            let won = usize::from(one.join().unwrap()) + usize::from(two.join().unwrap());

            assert_eq!(won, 1, "exactly one reply is accepted");
            assert!(matches!(first.try_take(), Some(Ok(1 | 2))));
            assert_eq!(server.counts().held_calls, 1, "the second call must still be held");
            kill(&server);
            let waker = std::task::Waker::noop();
            assert_eq!(
                second.poll_take(waker),
                Poll::Ready(Err(CallError::Exited(ExitReason::Killed))),
                "the server's death fails the second call at once"
            );
            drop(second_to);
            assert_eq!(server.counts().held_calls, 0);
        });
    }
}
