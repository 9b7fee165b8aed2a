//! A hierarchical hashed timer wheel: pure data, driven by time given in
//! whole milliseconds ("ticks"). No threads, no clock reads, no locks.
//!
//! # Layout
//!
//! There are [`LEVELS`] levels of 64 slots. A slot at level `l` spans
//! `64^l` ms; the whole of level `l` spans one "level-`l` frame" of
//! `64^(l+1)` ms, namely the frame that contains the wheel's current time
//! `now`. Entries live in a [`Slab`]; every slot (and the two extra lists
//! below) is an intrusive doubly linked list threaded through the slab by
//! index, so insert and cancel are O(1). A 64-bit occupancy bitmap per level
//! records which slots are non-empty.
//!
//! # Invariants (hold between public calls)
//!
//! * Every pending entry with `deadline > now` is in exactly one place,
//!   determined by the highest bit in which `deadline` and `now` differ:
//!   that bit's level `l = bit / 6` if `l < LEVELS`, in slot
//!   `(deadline >> 6l) & 63`; otherwise in the *overflow* list. So a level-`l`
//!   slot holds entries in the same level-(`l`+1) frame as `now`, and its
//!   slot number is strictly greater than `now`'s digit at level `l`: every
//!   occupied slot starts after `now`. A level-0 slot holds entries of one
//!   single deadline.
//! * Entries with `deadline <= now` (inserted already due) sit in the
//!   *overdue* list and fire at the start of the next `advance`.
//! * An entry moves down a level when time reaches the start of its slot:
//!   the slot is emptied and each entry either fires (its deadline is that
//!   start) or is re-placed relative to the new `now`, which puts it on a
//!   lower level. The overflow list is re-examined when `now` enters the
//!   top-level frame of (a lower bound on) its earliest deadline. Lists are
//!   only ever appended to and are drained front to back, so all pending
//!   entries with the same deadline share one list, in insertion order.
//! * Events come in time order: level-`l` slots all start before any
//!   level-(`l`+1) slot, and every level before the overflow, so `advance`
//!   visits only occupied slots (skipping empty ranges by bitmap) and its
//!   output is sorted by deadline.
//! * Each slab index carries a generation, bumped whenever the entry at that
//!   index is removed (fired or cancelled). A [`TimerKey`] holds index and
//!   generation, so a stale key never matches a newer timer that reused
//!   the index (until the same index has been reused 2^32 times).

use slab::Slab;

/// Bits of the slot number within a level.
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Number of levels; together they span `2^(6 * LEVELS)` ms (about 2.2 years).
const LEVELS: usize = 6;
/// Mask of the bits below the top-level frame.
const FRAME_MASK: u64 = (1 << (SLOT_BITS as usize * LEVELS)) - 1;
/// List index of the overflow list (deadlines beyond the top-level frame).
const OVERFLOW: u16 = (LEVELS * SLOTS) as u16;
/// List index of the overdue list (inserted with `deadline <= now`).
const OVERDUE: u16 = OVERFLOW + 1;
/// Total number of lists.
const LISTS: usize = LEVELS * SLOTS + 2;
/// "No entry" in the intrusive links.
const NIL: u32 = u32::MAX;

/// Identifies one timer in a wheel; stale keys (fired or cancelled) are
/// detected and rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TimerKey {
    /// Slab index of the entry.
    index: u32,
    /// Generation of the index when the timer was inserted.
    generation: u32,
}

impl TimerKey {
    /// Packs the key into a `u64` (generation in the high half).
    pub(crate) fn to_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// Unpacks a key produced by [`TimerKey::to_u64`].
    pub(crate) fn from_u64(v: u64) -> TimerKey {
        TimerKey {
            index: v as u32,
            generation: (v >> 32) as u32,
        }
    }
}

/// One pending timer.
#[derive(Debug)]
struct Entry<T> {
    /// When it fires (ms).
    deadline: u64,
    /// Which list it is linked into.
    list: u16,
    /// Previous entry in the list, or `NIL`.
    prev: u32,
    /// Next entry in the list, or `NIL`.
    next: u32,
    /// The payload.
    value: T,
}

/// Head and tail of one intrusive list.
#[derive(Clone, Copy, Debug)]
struct List {
    /// First entry, or `NIL`.
    head: u32,
    /// Last entry, or `NIL`.
    tail: u32,
}

impl List {
    /// The empty list.
    const EMPTY: List = List { head: NIL, tail: NIL };
}

/// Something `advance` has to do at a given time.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// Drain this wheel slot (list index).
    Slot(u16),
    /// Re-examine the overflow list.
    Overflow,
}

/// A hierarchical hashed timer wheel holding values of type `T`.
#[derive(Debug)]
pub(crate) struct Wheel<T> {
    /// The current time (ms).
    now: u64,
    /// All pending entries.
    entries: Slab<Entry<T>>,
    /// Current generation of every slab index ever used.
    generations: Vec<u32>,
    /// Wheel slots (level-major), then overflow, then overdue.
    lists: Box<[List]>,
    /// Per level, bit `s` set iff slot `s` is non-empty.
    occupied: [u64; LEVELS],
    /// While the overflow list is non-empty, a lower bound on its deadlines
    /// (exact after each re-examination; cancels may leave it lower), always
    /// in a later top-level frame than `now`.
    overflow_min: u64,
    /// While the overdue list is non-empty, a lower bound on its deadlines.
    overdue_min: u64,
}

impl<T> Wheel<T> {
    /// A wheel whose current time is `now` (ms).
    pub(crate) fn new(now: u64) -> Self {
        Wheel {
            now,
            entries: Slab::new(),
            generations: Vec::new(),
            lists: vec![List::EMPTY; LISTS].into_boxed_slice(),
            occupied: [0; LEVELS],
            overflow_min: u64::MAX,
            overdue_min: u64::MAX,
        }
    }

    /// The wheel's current time (the last `advance` target, or the start).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// Number of pending timers.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is pending.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Schedules `value` to fire at `deadline` ms. A deadline <= now fires on
    /// the next `advance` call.
    ///
    /// # Panics
    ///
    /// If more than `u32::MAX - 1` timers are pending at once.
    pub(crate) fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let index = self.entries.vacant_key();
        let index32 = u32::try_from(index)
            .ok()
            .filter(|&i| i != NIL)
            .expect("timer wheel: too many pending timers");
        if index == self.generations.len() {
            self.generations.push(0);
        }
        let generation = self.generations[index];
        self.entries.insert(Entry {
            deadline,
            list: 0,
            prev: NIL,
            next: NIL,
            value,
        });
        self.place(index32);
        TimerKey {
            index: index32,
            generation,
        }
    }

    /// Removes a pending timer, returning its deadline and value; None if it
    /// already fired, was cancelled, or the key is stale/unknown.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<(u64, T)> {
        if !self.is_live(key) {
            return None;
        }
        self.unlink(key.index);
        let entry = self.remove(key.index);
        Some((entry.deadline, entry.value))
    }

    /// The deadline of a pending timer, or None.
    pub(crate) fn deadline(&self, key: TimerKey) -> Option<u64> {
        if self.is_live(key) {
            Some(self.entries[key.index as usize].deadline)
        } else {
            None
        }
    }

    /// Moves time forward to `now` (never backwards: a smaller `now` is
    /// treated as the current time) and pushes every timer whose deadline
    /// <= now onto `out`, as (key, value), ordered by deadline, and for equal
    /// deadlines in insertion order.
    pub(crate) fn advance(&mut self, now: u64, out: &mut Vec<(TimerKey, T)>) {
        let target = now.max(self.now);
        self.fire_overdue(out);
        while let Some((at, event)) = self.next_event() {
            if at > target {
                break;
            }
            debug_assert!(at > self.now, "event at {at} not after now {}", self.now);
            self.now = at;
            match event {
                Event::Slot(list) => self.drain_slot(list, out),
                Event::Overflow => self.drain_overflow(out),
            }
        }
        // No event lies in (self.now, target], so every entry stays within
        // the frames (and above the digits) of `target`: invariants hold.
        self.now = target;
    }

    /// The earliest time at which `advance` could have something to fire, or
    /// None when empty. It may be earlier than the true earliest deadline
    /// (e.g. the time a higher-level slot must be cascaded), but never later,
    /// and never earlier than now unless something is already due.
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        if self.lists[OVERDUE as usize].head != NIL {
            return Some(self.overdue_min);
        }
        self.next_event().map(|(at, _)| at)
    }

    /// Whether `key` names a pending timer.
    fn is_live(&self, key: TimerKey) -> bool {
        let index = key.index as usize;
        self.entries.contains(index) && self.generations[index] == key.generation
    }

    /// Removes an (already unlinked) entry from the slab and retires its key.
    fn remove(&mut self, index: u32) -> Entry<T> {
        let generation = &mut self.generations[index as usize];
        *generation = generation.wrapping_add(1);
        self.entries.remove(index as usize)
    }

    /// Removes an entry from the wheel and pushes it onto `out`.
    fn fire(&mut self, index: u32, out: &mut Vec<(TimerKey, T)>) {
        let key = TimerKey {
            index,
            generation: self.generations[index as usize],
        };
        out.push((key, self.remove(index).value));
    }

    /// The list an entry with `deadline` belongs to, relative to `self.now`.
    fn list_for(&self, deadline: u64) -> u16 {
        if deadline <= self.now {
            return OVERDUE;
        }
        let highest_bit = 63 - (deadline ^ self.now).leading_zeros();
        let level = (highest_bit / SLOT_BITS) as usize;
        if level >= LEVELS {
            return OVERFLOW;
        }
        let slot = (deadline >> (level as u32 * SLOT_BITS)) as usize & (SLOTS - 1);
        (level * SLOTS + slot) as u16
    }

    /// Links an unlinked entry into the list its deadline belongs to.
    fn place(&mut self, index: u32) {
        let deadline = self.entries[index as usize].deadline;
        let list = self.list_for(deadline);
        // A bound left over from cancelled entries is dropped once its list
        // is empty: it may lie before `now` by then.
        let was_empty = self.lists[list as usize].head == NIL;
        let bound = match list {
            OVERDUE => Some(&mut self.overdue_min),
            OVERFLOW => Some(&mut self.overflow_min),
            _ => None,
        };
        if let Some(bound) = bound {
            if was_empty || deadline < *bound {
                *bound = deadline;
            }
        }
        self.push_back(list, index);
    }

    /// Appends an unlinked entry to `list`.
    fn push_back(&mut self, list: u16, index: u32) {
        let tail = self.lists[list as usize].tail;
        let entry = &mut self.entries[index as usize];
        entry.list = list;
        entry.prev = tail;
        entry.next = NIL;
        if tail == NIL {
            self.lists[list as usize].head = index;
            if (list as usize) < LEVELS * SLOTS {
                self.occupied[list as usize / SLOTS] |= 1 << (list as usize % SLOTS);
            }
        } else {
            self.entries[tail as usize].next = index;
        }
        self.lists[list as usize].tail = index;
    }

    /// Unlinks an entry from whatever list holds it.
    fn unlink(&mut self, index: u32) {
        let entry = &self.entries[index as usize];
        let (list, prev, next) = (entry.list as usize, entry.prev, entry.next);
        if prev == NIL {
            self.lists[list].head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[list].tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        if self.lists[list].head == NIL && list < LEVELS * SLOTS {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
    }

    /// Empties `list`, returning its former head; the entries keep their
    /// `next` links so the caller can walk them.
    fn take(&mut self, list: u16) -> u32 {
        let list = list as usize;
        let head = self.lists[list].head;
        self.lists[list] = List::EMPTY;
        if list < LEVELS * SLOTS {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
        head
    }

    /// The next slot or overflow event after `self.now`, with its time.
    fn next_event(&self) -> Option<(u64, Event)> {
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let shift = level as u32 * SLOT_BITS;
            let digit = (self.now >> shift) as u32 & (SLOTS as u32 - 1);
            debug_assert_eq!(
                occupied & (u64::MAX >> (63 - digit)),
                0,
                "occupied slot at or before now"
            );
            let slot = u64::from(occupied.trailing_zeros());
            let frame_start = self.now & !((1u64 << (shift + SLOT_BITS)) - 1);
            let at = frame_start + (slot << shift);
            let list = (level * SLOTS) as u16 + slot as u16;
            return Some((at, Event::Slot(list)));
        }
        if self.lists[OVERFLOW as usize].head != NIL {
            // `overflow_min` lies in a later top-level frame than `now`.
            return Some((self.overflow_min & !FRAME_MASK, Event::Overflow));
        }
        None
    }

    /// Fires the overdue list, sorted by deadline (stable, so FIFO for ties).
    fn fire_overdue(&mut self, out: &mut Vec<(TimerKey, T)>) {
        if self.lists[OVERDUE as usize].head == NIL {
            return;
        }
        let mut due = Vec::new();
        let mut cur = self.take(OVERDUE);
        while cur != NIL {
            let entry = &self.entries[cur as usize];
            due.push((entry.deadline, cur));
            cur = entry.next;
        }
        due.sort_by_key(|&(deadline, _)| deadline);
        for (_, index) in due {
            self.fire(index, out);
        }
    }

    /// Time has reached the start of wheel slot `list`: fire what is due now
    /// and move the rest down to lower levels, in list order.
    fn drain_slot(&mut self, list: u16, out: &mut Vec<(TimerKey, T)>) {
        let mut cur = self.take(list);
        while cur != NIL {
            let entry = &self.entries[cur as usize];
            let next = entry.next;
            if entry.deadline <= self.now {
                self.fire(cur, out);
            } else {
                self.place(cur);
            }
            cur = next;
        }
    }

    /// Time has entered a new top-level frame: fire what is due now, move
    /// entries of this frame into the wheel, keep the rest (in order).
    fn drain_overflow(&mut self, out: &mut Vec<(TimerKey, T)>) {
        let mut cur = self.take(OVERFLOW);
        while cur != NIL {
            let entry = &self.entries[cur as usize];
            let next = entry.next;
            if entry.deadline <= self.now {
                self.fire(cur, out);
            } else {
                // Entries that stay recompute `overflow_min` exactly.
                self.place(cur);
            }
            cur = next;
        }
    }
}

#[cfg(test)]
#[path = "wheel_tests.rs"]
mod tests;
