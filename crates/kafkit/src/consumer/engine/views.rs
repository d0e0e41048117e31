//! What the `Reader` and the group task read and change of the partitions, through the
//! engine: commit marks and acknowledgements, positions and lags.

use super::*;

impl Engine {
    /// Marks for commit, per partition, the offset after each of `highest` (offsets the
    /// application has been given): (partition, assignment epoch, offset) to commit, and why
    /// any was refused (not returned yet, or not from the current assignment).
    pub fn mark_for_commit(
        &self,
        highest: BTreeMap<TopicPartition, i64>,
    ) -> (Vec<(TopicPartition, u64, i64)>, Option<String>) {
        let mut offsets = Vec::new();
        let mut refused = None;
        let mut st = self.lock();
        for (tp, off) in highest {
            match st.parts.get_mut(&tp) {
                Some(p) if off >= p.start && off < p.position => {
                    p.to_commit = p.to_commit.max(off + 1);
                    offsets.push((tp, p.epoch, off + 1));
                }
                Some(p) if off >= p.position => {
                    refused.get_or_insert_with(|| {
                        format!("{tp} offset {off} was not returned by this reader yet (next: {})", p.position)
                    });
                }
                _ => {
                    refused.get_or_insert_with(|| {
                        format!("{tp} offset {off} is not from this reader's current assignment of the partition")
                    });
                }
            }
        }
        (offsets, refused)
    }

    /// Offsets marked for commit and not yet acknowledged, of the partitions in `owned`.
    pub fn pending_commits(&self, owned: &BTreeSet<TopicPartition>) -> Vec<(TopicPartition, u64, i64)> {
        let st = self.lock();
        st.parts
            .iter()
            .filter(|(tp, p)| p.to_commit > p.committed && owned.contains(*tp))
            .map(|(tp, p)| (tp.clone(), p.epoch, p.to_commit))
            .collect()
    }

    /// The coordinator acknowledged these commits (of partitions still in the same
    /// assignment epoch).
    pub fn committed(&self, offsets: &[(TopicPartition, u64, i64)]) {
        let mut st = self.lock();
        for (tp, epoch, off) in offsets {
            if let Some(p) = st.parts.get_mut(tp).filter(|p| p.epoch == *epoch) {
                p.committed = p.committed.max(*off);
            }
        }
    }

    /// Position, high watermark, lag, committed offset and pause state of every partition.
    pub fn partition_states(&self) -> BTreeMap<TopicPartition, PartitionState> {
        let st = self.lock();
        st.parts
            .iter()
            .map(|(tp, p)| {
                let state = PartitionState {
                    position: p.position,
                    high_watermark: p.high_watermark,
                    lag: p.lag(),
                    committed: p.committed,
                    paused: p.paused,
                };
                (tp.clone(), state)
            })
            .collect()
    }

    /// The next offset to hand out of `tp`.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.lock().parts.get(tp).map(|p| p.position)
    }

    /// The summed lag of every partition (-1 before any fetch).
    pub fn lag(&self) -> i64 {
        let st = self.lock();
        let known = st.parts.values().map(|p| p.lag()).filter(|l| *l >= 0);
        known.fold(-1, |sum, l| sum.max(0).saturating_add(l))
    }

    /// Messages handed out and their key and value bytes.
    pub fn handed_out(&self) -> (u64, u64) {
        let st = self.lock();
        (st.messages, st.bytes)
    }

    /// Whether the reader was closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}
