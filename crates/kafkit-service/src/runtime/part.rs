//! One assigned partition: the records fetched and not yet started, the offsets not yet
//! finished, and what may be committed.

use bytes::Bytes;
use kafkit::Message;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::Instant;

pub(crate) struct Part {
    /// Which assignment of the partition this is (results of an earlier one are dropped).
    pub epoch: u64,
    /// Fetched, not started, in offset order.
    pub pending: VecDeque<(Message, Instant)>,
    /// Offsets fetched and not finished (pending or in flight). The commit point is the
    /// lowest of them: everything below it is finished.
    pub unfinished: BTreeSet<i64>,
    /// The first offset fetched in this assignment (-1: none yet).
    pub first: i64,
    /// The offset after the last one fetched.
    pub next: i64,
    /// The last offset this member committed for it (-1: none).
    pub committed: i64,
    /// Units holding records of it.
    pub inflight: usize,
    /// Keys in flight (key ordering).
    pub busy: HashSet<Option<Bytes>>,
    /// Why it is stopped (a dead-letter or retry-topic write fails), and by which unit.
    pub stalled: Option<(u64, String)>,
    /// Fetching paused because `max_buffered` records wait.
    pub fetch_paused: bool,
    /// Being revoked: nothing new starts.
    pub revoking: bool,
}

impl Part {
    pub fn new(epoch: u64) -> Part {
        Part {
            epoch,
            pending: VecDeque::new(),
            unfinished: BTreeSet::new(),
            first: -1,
            next: -1,
            committed: -1,
            inflight: 0,
            busy: HashSet::new(),
            stalled: None,
            fetch_paused: false,
            revoking: false,
        }
    }

    pub fn accept(&mut self, m: Message) {
        if self.first < 0 {
            self.first = m.offset;
        }
        self.next = self.next.max(m.offset + 1);
        self.unfinished.insert(m.offset);
        self.pending.push_back((m, Instant::now()));
    }

    /// Puts back a record that was started and not finished (a cancelled unit's), in offset
    /// order.
    pub fn requeue(&mut self, m: Message) {
        let at = self.pending.partition_point(|(p, _)| p.offset < m.offset);
        self.pending.insert(at, (m, Instant::now()));
    }

    /// The offset to commit, when it moved: the lowest unfinished offset, or the one after
    /// the last fetched when all are finished; only past the first fetched (something was
    /// finished) and past the last commit.
    pub fn commit_point(&self) -> Option<i64> {
        if self.first < 0 {
            return None;
        }
        let p = self.unfinished.first().copied().unwrap_or(self.next);
        (p > self.first && p > self.committed).then_some(p)
    }

    /// Index of the first pending record whose key is not in flight.
    pub fn free_key(&self) -> Option<usize> {
        self.pending.iter().position(|(m, _)| !self.busy.contains(&m.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(offset: i64, key: &str) -> Message {
        Message { offset, key: Some(Bytes::from(key.to_string())), ..Message::default() }
    }

    #[test]
    fn the_commit_point_never_passes_an_unfinished_offset() {
        let mut p = Part::new(1);
        assert_eq!(p.commit_point(), None);
        for (o, k) in [(10, "a"), (11, "b"), (12, "a"), (14, "c")] {
            p.accept(msg(o, k));
        }
        assert_eq!(p.commit_point(), None, "nothing finished");
        p.unfinished.remove(&11);
        assert_eq!(p.commit_point(), None, "10 is not finished, so nothing past it");
        p.unfinished.remove(&10);
        assert_eq!(p.commit_point(), Some(12));
        p.unfinished.remove(&14);
        assert_eq!(p.commit_point(), Some(12), "12 holds the point though 14 is done");
        p.unfinished.remove(&12);
        assert_eq!(p.commit_point(), Some(15), "all done: the offset after the last fetched");
        p.committed = 15;
        assert_eq!(p.commit_point(), None);
    }

    #[test]
    fn keys_in_flight_are_skipped_and_requeued_records_keep_their_place() {
        let mut p = Part::new(1);
        for (o, k) in [(1, "a"), (2, "a"), (3, "b")] {
            p.accept(msg(o, k));
        }
        let (first, _) = p.pending.remove(p.free_key().unwrap()).unwrap();
        p.busy.insert(first.key.clone());
        assert_eq!(p.pending[p.free_key().unwrap()].0.offset, 3, "a is busy: b goes next");
        p.requeue(first);
        assert_eq!(p.pending.iter().map(|(m, _)| m.offset).collect::<Vec<_>>(), vec![1, 2, 3]);
    }
}
