//! The hand-out order of buffered chunks (`State::take`).

use super::*;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

/// Adds a chunk of messages at `offsets` to partition `p`, as a fetch task does.
fn push(st: &mut State, p: i32, offsets: &[i64]) {
    let messages = offsets.iter().map(|&offset| Message { partition: p, offset, ..Message::default() }).collect();
    let next = offsets.last().map_or(0, |o| o + 1);
    let State { parts, ready, next_seq, .. } = st;
    let part = parts.entry(tp(p)).or_insert_with(|| Part::new(1, 0, -1));
    queue_chunk(ready, next_seq, &tp(p), part, Chunk { seq: 0, messages, next, bytes: 0, _permit: None });
}

/// Takes every message there is now, as (partition, offset).
fn drain(st: &mut State) -> Vec<(i32, i64)> {
    std::iter::from_fn(|| st.take(false)).map(|(m, _)| (m.partition, m.offset)).collect()
}

#[test]
fn chunks_go_out_in_the_order_they_were_fetched_whatever_their_partition() {
    let mut st = State::default();
    push(&mut st, 0, &[0, 1]);
    push(&mut st, 0, &[2]);
    push(&mut st, 1, &[0]);
    push(&mut st, 1, &[1, 2]);
    push(&mut st, 0, &[3]);
    // Taking turns by partition would give 1/0 before 0/2, keeping the first chunk's
    // response (which the second may share) alive the longer.
    assert_eq!(drain(&mut st), [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3)]);
    assert_eq!(st.messages, 7);
    assert!(st.ready.is_empty());
    assert_eq!((st.parts[&tp(0)].position, st.parts[&tp(1)].position), (4, 3));
}

#[test]
fn an_emptied_chunk_is_handed_back_once_with_its_last_message() {
    let mut st = State::default();
    push(&mut st, 0, &[0, 1]);
    let (m, read) = st.take(true).unwrap();
    assert_eq!((m.offset, read.is_some()), (0, false));
    let (m, read) = st.take(true).unwrap();
    assert_eq!((m.offset, read.map(|c| c.next)), (1, Some(2)));
    assert_eq!(st.parts[&tp(0)].to_commit, 2);
    assert!(st.take(true).is_none());
}

#[test]
fn a_paused_partition_keeps_its_chunks_and_resumes_them_in_order() {
    let mut st = State::default();
    push(&mut st, 0, &[0]);
    push(&mut st, 1, &[0]);
    push(&mut st, 0, &[1]);
    st.set_paused(&tp(0), true);
    push(&mut st, 0, &[2]);
    push(&mut st, 1, &[1]);
    assert_eq!(drain(&mut st), [(1, 0), (1, 1)]);
    assert_eq!(st.parts[&tp(0)].chunks.len(), 3, "paused, not dropped");
    st.set_paused(&tp(0), false);
    // Resuming twice queues nothing twice.
    st.set_paused(&tp(0), false);
    assert_eq!(drain(&mut st), [(0, 0), (0, 1), (0, 2)]);
}

#[test]
fn chunks_dropped_by_a_seek_leave_only_skipped_entries() {
    let mut st = State::default();
    push(&mut st, 0, &[0, 1]);
    push(&mut st, 1, &[0]);
    // A seek of partition 0 drops its chunks; its next fetch brings a new one.
    st.parts.get_mut(&tp(0)).unwrap().chunks.clear();
    push(&mut st, 0, &[7]);
    assert_eq!(drain(&mut st), [(1, 0), (0, 7)]);
    assert!(st.ready.is_empty());
}
