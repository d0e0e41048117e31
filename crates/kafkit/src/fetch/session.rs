//! Fetch sessions (KIP-227, Fetch v7+), from the client's side: after one full Fetch creates
//! a session on the broker, each later Fetch names only the partitions whose fetch position
//! (or leader epoch) changed, and those to drop (`forgotten_topics_data`); the broker answers
//! only for partitions with new records, a changed high watermark or log start offset, or an
//! error. A steady consumer then sends, and the broker parses and answers, a fraction of the
//! partitions per request (Java's `FetchSessionHandler`).
//!
//! The broker keeps each partition's fetch offset as the client last sent it, and fetches
//! every partition of the session on every request: so a partition is kept in the session only
//! while it is being fetched, and forgotten as soon as a request leaves it out (its buffer is
//! full, it is paused, another fetch task has it), exactly as the Java consumer does.

use kafkit_protocol::messages::{fetch_request, fetch_response};
use kafkit_protocol::Uuid;
use std::collections::HashMap;

/// What the broker holds for one partition of the session.
#[derive(Clone, Debug, PartialEq)]
struct Cached {
    topic_id: Uuid,
    /// The fetch offset and leader epoch last sent.
    offset: i64,
    leader_epoch: i32,
    /// What the broker last answered: an omitted partition has the same.
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
}

/// One broker's fetch session, as a fetch task keeps it between its requests. The default
/// is no session: the next Fetch is a full one that asks for a session.
///
/// # Cancellation
/// [`FetchSession::take`] moves the state out for one request and [`FetchSession::keep`] puts
/// the next state back once its response is handled; a request dropped or failed in between
/// leaves the default, so the next Fetch is full again (the broker's epoch can no longer be
/// trusted). The broker's stale session is left to its cache's eviction.
#[derive(Default, Debug)]
pub(crate) struct FetchSession {
    /// 0: none.
    id: i32,
    /// The epoch of the next incremental Fetch (1 up, wrapping to 1).
    epoch: i32,
    parts: HashMap<(String, i32), Cached>,
}

/// The session fields of one Fetch request, and what the request changes in the session.
pub(crate) struct Plan {
    pub(crate) session_id: i32,
    pub(crate) session_epoch: i32,
    pub(crate) incremental: bool,
    /// Indexes (into the partitions asked for) of those the request names.
    pub(crate) named: Vec<usize>,
    pub(crate) forgotten: Vec<fetch_request::ForgottenTopic>,
}

/// One partition a Fetch asks for: topic, topic id, partition, fetch offset, leader epoch.
pub(crate) type Asked<'a> = (&'a str, Uuid, i32, i64, i32);

impl FetchSession {
    /// The state, for one request (see the type's cancellation note).
    pub(crate) fn take(&mut self) -> FetchSession {
        std::mem::take(self)
    }

    /// Puts the state after a handled response back.
    pub(crate) fn keep(&mut self, next: FetchSession) {
        *self = next;
    }

    /// The session fields of a Fetch for `asked`; `by_id` when topics go by id (v13+).
    pub(crate) fn plan(&self, asked: &[Asked<'_>], by_id: bool) -> Plan {
        if self.id == 0 {
            // A full Fetch asking for a new session.
            return Plan {
                session_id: 0,
                session_epoch: 0,
                incremental: false,
                named: (0..asked.len()).collect(),
                forgotten: Vec::new(),
            };
        }
        let named = asked
            .iter()
            .enumerate()
            .filter(|(_, (t, _, p, off, le))| {
                self.parts.get(&(t.to_string(), *p)).is_none_or(|c| c.offset != *off || c.leader_epoch != *le)
            })
            .map(|(i, _)| i)
            .collect();
        let mut forgotten: Vec<fetch_request::ForgottenTopic> = Vec::new();
        let mut gone: Vec<(&(String, i32), &Cached)> =
            self.parts.iter().filter(|((t, p), _)| !asked.iter().any(|(at, _, ap, _, _)| at == t && ap == p)).collect();
        gone.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for ((topic, p), c) in gone {
            let same =
                |f: &fetch_request::ForgottenTopic| if by_id { f.topic_id == c.topic_id } else { &f.topic == topic };
            match forgotten.iter_mut().find(|f| same(f)) {
                Some(f) => f.partitions.push(*p),
                None => {
                    let f = fetch_request::ForgottenTopic::default().with_partitions(vec![*p]);
                    forgotten.push(if by_id { f.with_topic_id(c.topic_id) } else { f.with_topic(topic.clone()) });
                }
            }
        }
        Plan { session_id: self.id, session_epoch: self.epoch, incremental: true, named, forgotten }
    }

    /// The session after a response to `plan` (top-level error none): `found[i]` is the
    /// broker's data for `asked[i]`, if it answered for it. Fills in, for a partition an
    /// incremental response left out, what the broker last said of it (no records).
    pub(crate) fn answered(
        mut self,
        plan: &Plan,
        asked: &[Asked<'_>],
        response_session_id: i32,
        found: &mut [Option<fetch_response::PartitionData>],
    ) -> FetchSession {
        if !plan.incremental {
            self.parts.clear();
        }
        let mut next: HashMap<(String, i32), Cached> = HashMap::with_capacity(asked.len());
        for ((t, id, p, off, le), slot) in asked.iter().zip(found.iter_mut()) {
            let key = (t.to_string(), *p);
            let before = self.parts.remove(&key);
            match slot {
                // An error: kept (so it is forgotten if not asked for again), but named again
                // next time whatever its offset, and its last sound figures kept.
                Some(d) if d.error_code != 0 => {
                    let c = before.unwrap_or(Cached {
                        topic_id: *id,
                        offset: 0,
                        leader_epoch: *le,
                        high_watermark: -1,
                        last_stable_offset: -1,
                        log_start_offset: -1,
                    });
                    next.insert(key, Cached { offset: i64::MIN, ..c });
                }
                Some(d) => {
                    next.insert(
                        key,
                        Cached {
                            topic_id: *id,
                            offset: *off,
                            leader_epoch: *le,
                            high_watermark: d.high_watermark,
                            last_stable_offset: d.last_stable_offset,
                            log_start_offset: d.log_start_offset,
                        },
                    );
                }
                None => {
                    // Left out of an incremental response: nothing new since the last answer.
                    let Some(c) = before.filter(|_| plan.incremental) else { continue };
                    *slot = Some(
                        fetch_response::PartitionData::default()
                            .with_partition_index(*p)
                            .with_high_watermark(c.high_watermark)
                            .with_last_stable_offset(c.last_stable_offset)
                            .with_log_start_offset(c.log_start_offset),
                    );
                    next.insert(key, Cached { offset: *off, leader_epoch: *le, ..c });
                }
            }
        }
        if response_session_id == 0 {
            // The broker keeps no session (none created, or its cache is full): full fetches.
            return FetchSession::default();
        }
        let epoch = if plan.incremental && response_session_id == plan.session_id {
            if plan.session_epoch == i32::MAX {
                1
            } else {
                plan.session_epoch + 1
            }
        } else {
            1
        };
        FetchSession { id: response_session_id, epoch, parts: next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(p: i32, hw: i64) -> fetch_response::PartitionData {
        fetch_response::PartitionData::default().with_partition_index(p).with_high_watermark(hw)
    }

    #[test]
    fn a_session_names_only_what_changed_and_forgets_what_is_left_out() {
        let id = Uuid::ZERO;
        let s = FetchSession::default();
        let asked = [("t", id, 0, 10, 1), ("t", id, 1, 20, 1)];
        let plan = s.plan(&asked, false);
        assert_eq!(
            (plan.session_id, plan.session_epoch, plan.incremental, plan.named.clone()),
            (0, 0, false, vec![0, 1])
        );
        let mut found = [Some(data(0, 50)), Some(data(1, 60))];
        let s = s.answered(&plan, &asked, 7, &mut found);
        assert_eq!((s.id, s.epoch), (7, 1));

        // Partition 0 moved on; 1 did not; 2 is new.
        let asked = [("t", id, 0, 15, 1), ("t", id, 1, 20, 1), ("t", id, 2, 0, 1)];
        let plan = s.plan(&asked, false);
        assert_eq!(
            (plan.session_id, plan.session_epoch, plan.incremental, plan.named.clone()),
            (7, 1, true, vec![0, 2])
        );
        assert!(plan.forgotten.is_empty());
        // The broker answers for 0 and 2 only: 1 comes back as it was, with no records.
        let mut found = [Some(data(0, 55)), None, Some(data(2, 5))];
        let s = s.answered(&plan, &asked, 7, &mut found);
        let one = found[1].as_ref().expect("filled in");
        assert_eq!(
            (one.partition_index, one.high_watermark, one.records.as_ref().is_none_or(|r| r.is_empty())),
            (1, 60, true)
        );
        assert_eq!(s.epoch, 2);

        // Partition 1 left out: forgotten; the others unchanged: named none.
        let asked = [("t", id, 0, 15, 1), ("t", id, 2, 0, 1)];
        let plan = s.plan(&asked, false);
        assert!(plan.named.is_empty());
        assert_eq!(plan.forgotten.len(), 1);
        assert_eq!((plan.forgotten[0].topic.as_str(), plan.forgotten[0].partitions.clone()), ("t", vec![1]));
        let mut found = [None, None];
        let s = s.answered(&plan, &asked, 7, &mut found);
        assert!(found.iter().all(Option::is_some));
        assert!(!s.parts.contains_key(&("t".to_string(), 1)));

        // A leader epoch change names the partition again.
        let plan = s.plan(&[("t", id, 0, 15, 2), ("t", id, 2, 0, 1)], false);
        assert_eq!(plan.named, vec![0]);
    }

    #[test]
    fn no_session_from_the_broker_means_full_fetches_and_the_epoch_wraps() {
        let asked = [("t", Uuid::ZERO, 0, 0, -1)];
        let s = FetchSession::default();
        let plan = s.plan(&asked, false);
        let s = s.answered(&plan, &asked, 0, &mut [Some(data(0, 1))]);
        assert_eq!(s.id, 0);
        assert!(!s.plan(&asked, false).incremental);

        let mut s = FetchSession { id: 3, epoch: i32::MAX, ..FetchSession::default() };
        let plan = s.plan(&asked, false);
        s = s.answered(&plan, &asked, 3, &mut [Some(data(0, 1))]);
        assert_eq!(s.epoch, 1);
        // A partition the session never had, left out of the response, stays missing.
        let mut s2 = FetchSession { id: 3, epoch: 4, ..FetchSession::default() };
        let plan = s2.plan(&asked, false);
        let mut found = [None];
        s2 = s2.answered(&plan, &asked, 3, &mut found);
        assert!(found[0].is_none());
        assert!(s2.parts.is_empty());
    }

    #[test]
    fn forgotten_topics_go_by_id_from_v13() {
        let id = Uuid::from_bytes([7; 16]);
        let mut s = FetchSession { id: 9, epoch: 1, ..FetchSession::default() };
        let asked = [("t", id, 0, 0, 0)];
        let plan = s.plan(&asked, true);
        s = s.answered(&plan, &asked, 9, &mut [Some(data(0, 0))]);
        let plan = s.plan(&[], true);
        assert_eq!((plan.forgotten[0].topic_id, plan.forgotten[0].topic.as_str()), (id, ""));
    }
}
