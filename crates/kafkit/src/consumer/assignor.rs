//! Partition assignors for consumer groups: the group leader runs one to split the
//! subscribed topics' partitions among the members (the classic protocol's client-side
//! assignment; kafka-go's `GroupBalancer`, Java's `ConsumerPartitionAssignor`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`/`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// Groups `(key, value)` pairs by key, keeping the values' order (partitions by topic,
/// partitions by broker).
pub(crate) fn group_by<K: Ord, V>(items: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, Vec<V>> {
    let mut out: BTreeMap<K, Vec<V>> = BTreeMap::new();
    for (k, v) in items {
        out.entry(k).or_default().push(v);
    }
    out
}

/// How members give up partitions in a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before rejoining ("stop the world").
    Eager,
    /// Members keep their partitions through the rebalance and revoke only those the new
    /// assignment moves elsewhere, which then reach their new owner in a second rebalance
    /// (KIP-429).
    Cooperative,
}

/// One member of the group as the leader sees it (from its JoinGroup subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member id the coordinator gave it.
    pub id: String,
    /// Its group instance id, for static members (KIP-345).
    pub instance_id: Option<String>,
    /// The topics it subscribes to.
    pub topics: Vec<String>,
    /// The partitions it owns now (ConsumerProtocolSubscription v1+; cooperative members
    /// send them).
    pub owned: Vec<TopicPartition>,
    /// The generation in which it owned them (-1 when unknown).
    pub generation: i32,
}

impl GroupMember {
    /// The key members are ordered by: the group instance id when set, else the member id
    /// (as the Java assignors order them), so static members keep their place across
    /// restarts.
    fn sort_key(&self) -> (&str, &str) {
        (self.instance_id.as_deref().unwrap_or(&self.id), &self.id)
    }
}

/// Partitions per member id.
pub type Assignments = BTreeMap<String, Vec<TopicPartition>>;

/// Splits partitions among the members of a group. kafkit ships [`RangeAssignor`],
/// [`RoundRobinAssignor`] and [`CooperativeStickyAssignor`]; implement this for your own.
/// Every member must offer an assignor of the same name for the group to use it.
pub trait Assignor: Debug + Send + Sync {
    /// The protocol name in JoinGroup, the same in every client (`range`, `roundrobin`,
    /// `cooperative-sticky`).
    fn name(&self) -> &str;
    /// Whether members keep partitions through a rebalance. Default [`RebalanceProtocol::Eager`].
    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }
    /// The assignment: every partition of `partitions` (topic → partition count) that some
    /// member subscribes to, to exactly one subscribed member. Members absent from the
    /// result get nothing.
    fn assign(&self, members: &[GroupMember], partitions: &BTreeMap<String, i32>) -> Assignments;
}

fn sorted(members: &[GroupMember]) -> Vec<&GroupMember> {
    let mut v: Vec<&GroupMember> = members.iter().collect();
    v.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    v
}

fn empty(members: &[GroupMember]) -> Assignments {
    members.iter().map(|m| (m.id.clone(), Vec::new())).collect()
}

/// Per topic, consecutive ranges of partitions to the members that subscribe to it, the
/// first `partitions % members` getting one more (Java `RangeAssignor`, kafka-go
/// `RangeGroupBalancer`; protocol name `range`). The Java default.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }
    fn assign(&self, members: &[GroupMember], partitions: &BTreeMap<String, i32>) -> Assignments {
        let mut out = empty(members);
        for (topic, &count) in partitions {
            let subs: Vec<&GroupMember> = sorted(members).into_iter().filter(|m| m.topics.contains(topic)).collect();
            if subs.is_empty() || count <= 0 {
                continue;
            }
            let (each, extra) = (count as usize / subs.len(), count as usize % subs.len());
            let mut next = 0i32;
            for (i, m) in subs.iter().enumerate() {
                let n = (each + usize::from(i < extra)) as i32;
                let list = out.entry(m.id.clone()).or_default();
                list.extend((next..next + n).map(|p| TopicPartition::new(topic.clone(), p)));
                next += n;
            }
        }
        out
    }
}

/// All partitions in (topic, partition) order, dealt one at a time to the members in turn,
/// skipping members that do not subscribe to the topic (Java `RoundRobinAssignor`, kafka-go
/// `RoundRobinGroupBalancer`; protocol name `roundrobin`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        "roundrobin"
    }
    fn assign(&self, members: &[GroupMember], partitions: &BTreeMap<String, i32>) -> Assignments {
        let mut out = empty(members);
        let order = sorted(members);
        if order.is_empty() {
            return out;
        }
        let mut turn = 0usize;
        for (topic, &count) in partitions {
            if !order.iter().any(|m| m.topics.contains(topic)) {
                continue;
            }
            for p in 0..count.max(0) {
                // The next member in turn that subscribes to this topic.
                while !order[turn % order.len()].topics.contains(topic) {
                    turn += 1;
                }
                let m = order[turn % order.len()];
                out.entry(m.id.clone()).or_default().push(TopicPartition::new(topic.clone(), p));
                turn += 1;
            }
        }
        out
    }
}

/// A balanced assignment that keeps each member's partitions where it can (sticky), used
/// with incremental cooperative rebalancing (KIP-429; Java `CooperativeStickyAssignor`,
/// protocol name `cooperative-sticky`).
///
/// Members keep the partitions they own up to their fair share (the total divided by the
/// members, some getting one more); the rest go to the members with the fewest. A partition
/// that moves from one member to another is left out of this round's assignment: its owner
/// revokes it and rejoins, and the second rebalance gives it to the new owner. So a member
/// never stops consuming a partition it keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        "cooperative-sticky"
    }
    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }
    fn assign(&self, members: &[GroupMember], partitions: &BTreeMap<String, i32>) -> Assignments {
        let order = sorted(members);
        let exists = |tp: &TopicPartition| partitions.get(&tp.topic).is_some_and(|&n| tp.partition < n);
        let subscribed = |m: &GroupMember, topic: &str| m.topics.iter().any(|t| t == topic);
        let all: Vec<TopicPartition> = partitions
            .iter()
            .filter(|(t, _)| order.iter().any(|m| subscribed(m, t)))
            .flat_map(|(t, &n)| (0..n.max(0)).map(move |p| TopicPartition::new(t.clone(), p)))
            .collect();

        // Current owners: a partition claimed by two members goes to the one with the
        // higher generation (the other's claim is stale), ties to the first in order.
        let mut owner: HashMap<&TopicPartition, (&GroupMember, i32)> = HashMap::new();
        for m in &order {
            for tp in &m.owned {
                if !exists(tp) || !subscribed(m, &tp.topic) {
                    continue;
                }
                match owner.get(tp) {
                    Some((_, g)) if *g >= m.generation => {}
                    _ => {
                        owner.insert(tp, (m, m.generation));
                    }
                }
            }
        }
        let previous: HashMap<TopicPartition, String> =
            owner.iter().map(|(tp, (m, _))| ((*tp).clone(), m.id.clone())).collect();

        // Fair shares: `each` per member, `extra` members may hold one more.
        let n = order.len().max(1);
        let (each, mut extra) = (all.len() / n, all.len() % n);
        let mut out: BTreeMap<String, BTreeSet<TopicPartition>> =
            order.iter().map(|m| (m.id.clone(), BTreeSet::new())).collect();
        // Keep owned partitions up to the share, members owning the most first so that
        // they take the "one more" slots.
        let mut by_owned: Vec<&GroupMember> = order.clone();
        by_owned.sort_by_key(|m| std::cmp::Reverse(previous.values().filter(|id| **id == m.id).count()));
        for m in by_owned {
            let mut mine: Vec<&TopicPartition> =
                previous.iter().filter(|(_, id)| **id == m.id).map(|(tp, _)| tp).collect();
            mine.sort();
            let cap = if mine.len() > each && extra > 0 {
                extra -= 1;
                each + 1
            } else {
                each
            };
            if let Some(set) = out.get_mut(&m.id) {
                set.extend(mine.into_iter().take(cap).cloned());
            }
        }
        // The rest, each to the subscribed member holding the fewest.
        let kept: BTreeSet<TopicPartition> = out.values().flatten().cloned().collect();
        for tp in all.iter().filter(|tp| !kept.contains(tp)) {
            let pick = order
                .iter()
                .filter(|m| subscribed(m, &tp.topic))
                .min_by_key(|m| (out.get(&m.id).map_or(0, BTreeSet::len), m.sort_key()));
            if let Some(m) = pick {
                if let Some(set) = out.get_mut(&m.id) {
                    set.insert(tp.clone());
                }
            }
        }
        // Cooperative: a partition moving between members is withheld this round.
        out.into_iter()
            .map(|(id, set)| {
                let list = set.into_iter().filter(|tp| previous.get(tp).is_none_or(|prev| *prev == id)).collect();
                (id, list)
            })
            .collect()
    }
}

/// The assignors a reader offers by default: range, then round-robin (kafka-go's default
/// `GroupBalancers`).
pub(crate) fn default_assignors() -> Vec<std::sync::Arc<dyn Assignor>> {
    vec![std::sync::Arc::new(RangeAssignor), std::sync::Arc::new(RoundRobinAssignor)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str], owned: &[(&str, i32)], generation: i32) -> GroupMember {
        GroupMember {
            id: id.into(),
            instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned: owned.iter().map(|(t, p)| TopicPartition::new(*t, *p)).collect(),
            generation,
        }
    }

    fn parts(a: &Assignments, id: &str) -> Vec<(String, i32)> {
        a[id].iter().map(|tp| (tp.topic.clone(), tp.partition)).collect()
    }

    fn every_partition_once(a: &Assignments, partitions: &BTreeMap<String, i32>) {
        let mut seen: Vec<&TopicPartition> = a.values().flatten().collect();
        seen.sort();
        let want: Vec<TopicPartition> =
            partitions.iter().flat_map(|(t, &n)| (0..n).map(move |p| TopicPartition::new(t.clone(), p))).collect();
        assert_eq!(seen, want.iter().collect::<Vec<_>>());
    }

    #[test]
    fn range_matches_the_java_layout() {
        // Java's RangeAssignor javadoc: C0, C1; t0, t1 with 3 partitions each gives
        // C0: [t0p0, t0p1, t1p0, t1p1], C1: [t0p2, t1p2].
        let members = [member("C0", &["t0", "t1"], &[], -1), member("C1", &["t0", "t1"], &[], -1)];
        let partitions: BTreeMap<String, i32> = [("t0".into(), 3), ("t1".into(), 3)].into();
        let a = RangeAssignor.assign(&members, &partitions);
        assert_eq!(parts(&a, "C0"), [("t0".into(), 0), ("t0".into(), 1), ("t1".into(), 0), ("t1".into(), 1)]);
        assert_eq!(parts(&a, "C1"), [("t0".into(), 2), ("t1".into(), 2)]);
        every_partition_once(&a, &partitions);
    }

    #[test]
    fn round_robin_matches_the_java_layout() {
        // Java's RoundRobinAssignor javadoc: C0: [t0p0, t0p2, t1p1], C1: [t0p1, t1p0, t1p2].
        let members = [member("C0", &["t0", "t1"], &[], -1), member("C1", &["t0", "t1"], &[], -1)];
        let partitions: BTreeMap<String, i32> = [("t0".into(), 3), ("t1".into(), 3)].into();
        let a = RoundRobinAssignor.assign(&members, &partitions);
        assert_eq!(parts(&a, "C0"), [("t0".into(), 0), ("t0".into(), 2), ("t1".into(), 1)]);
        assert_eq!(parts(&a, "C1"), [("t0".into(), 1), ("t1".into(), 0), ("t1".into(), 2)]);
        every_partition_once(&a, &partitions);
    }

    #[test]
    fn round_robin_skips_members_not_subscribed() {
        // Java's javadoc, unequal subscriptions: C0 [t0], C1 [t0, t1], C2 [t0, t1, t2];
        // t0 1 partition, t1 2, t2 3 gives C0 [t0p0], C1 [t1p0], C2 [t1p1, t2p0, t2p1, t2p2].
        let members = [
            member("C0", &["t0"], &[], -1),
            member("C1", &["t0", "t1"], &[], -1),
            member("C2", &["t0", "t1", "t2"], &[], -1),
        ];
        let partitions: BTreeMap<String, i32> = [("t0".into(), 1), ("t1".into(), 2), ("t2".into(), 3)].into();
        let a = RoundRobinAssignor.assign(&members, &partitions);
        assert_eq!(parts(&a, "C0"), [("t0".into(), 0)]);
        assert_eq!(parts(&a, "C1"), [("t1".into(), 0)]);
        assert_eq!(parts(&a, "C2"), [("t1".into(), 1), ("t2".into(), 0), ("t2".into(), 1), ("t2".into(), 2)]);
    }

    #[test]
    fn cooperative_sticky_keeps_owned_partitions_and_withholds_moves() {
        let partitions: BTreeMap<String, i32> = [("t".into(), 12)].into();
        // First rebalance: two members, nothing owned: 6 each.
        let members = [member("a", &["t"], &[], -1), member("b", &["t"], &[], -1)];
        let first = CooperativeStickyAssignor.assign(&members, &partitions);
        every_partition_once(&first, &partitions);
        assert_eq!(first["a"].len(), 6);
        // A third member joins: a and b keep 4 of their 6 each; the 4 they give up are
        // withheld this round (nobody gets them yet).
        let owned = |id: &str| first[id].iter().map(|tp| (tp.topic.as_str(), tp.partition)).collect::<Vec<_>>();
        let members =
            [member("a", &["t"], &owned("a"), 1), member("b", &["t"], &owned("b"), 1), member("c", &["t"], &[], -1)];
        let second = CooperativeStickyAssignor.assign(&members, &partitions);
        for id in ["a", "b"] {
            assert_eq!(second[id].len(), 4, "{second:?}");
            assert!(second[id].iter().all(|tp| first[id].contains(tp)), "{id} keeps only its own: {second:?}");
        }
        assert!(second["c"].is_empty(), "moves wait for the second round: {second:?}");
        // The second round: a and b now own 4 each; c gets the remaining 4.
        let owned2 = |id: &str| second[id].iter().map(|tp| (tp.topic.as_str(), tp.partition)).collect::<Vec<_>>();
        let members =
            [member("a", &["t"], &owned2("a"), 2), member("b", &["t"], &owned2("b"), 2), member("c", &["t"], &[], -1)];
        let third = CooperativeStickyAssignor.assign(&members, &partitions);
        every_partition_once(&third, &partitions);
        assert_eq!(third["a"], second["a"]);
        assert_eq!(third["b"], second["b"]);
        assert_eq!(third["c"].len(), 4);
    }

    #[test]
    fn cooperative_sticky_prefers_the_newer_claim() {
        let partitions: BTreeMap<String, i32> = [("t".into(), 2)].into();
        let members = [member("a", &["t"], &[("t", 0)], 3), member("b", &["t"], &[("t", 0)], 5)];
        let a = CooperativeStickyAssignor.assign(&members, &partitions);
        assert_eq!(parts(&a, "b"), [("t".into(), 0)]);
        assert_eq!(parts(&a, "a"), [("t".into(), 1)]);
    }
}
