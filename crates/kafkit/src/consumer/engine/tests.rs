//! The hand-out order of buffered chunks (`State::take`).

use super::*;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

/// Adds a chunk of messages at `offsets` to partition `p`, as a fetch task does.
fn push(st: &mut State, p: i32, offsets: &[i64]) {
    let messages = offsets.iter().map(|&offset| Message { partition: p, offset, ..Message::default() }).collect();
    let next = offsets.last().map_or(0, |o| o + 1);
    queue(st, p, Chunk { seq: 0, messages, next, bytes: 0, _permit: None, response: None });
}

/// Queues `chunk` for partition `p`, as a fetch task does.
fn queue(st: &mut State, p: i32, chunk: Chunk) {
    let State { parts, ready, next_seq, .. } = st;
    let part = parts.entry(tp(p)).or_insert_with(|| Part::new(1, 0, -1));
    queue_chunk(ready, next_seq, &tp(p), part, chunk);
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

/// A chunk of messages with `values`, pointing into one "response" that holds `budget`.
fn framed(budget: &Arc<Semaphore>, values: &[&str]) -> Chunk {
    let response = Some(Arc::new(budget.clone().try_acquire_many_owned(60).unwrap()));
    let frame = bytes::Bytes::from(values.concat());
    let (mut at, mut messages) = (0, VecDeque::new());
    for (i, v) in values.iter().enumerate() {
        let value = frame.slice(at..at + v.len());
        at += v.len();
        let headers = vec![kafkit_protocol::record::Header { key: "h".into(), value: Some(value.slice(..1)) }];
        messages.push_back(Message {
            offset: i as i64,
            key: Some(value.clone()),
            value: Some(value),
            headers,
            ..Message::default()
        });
    }
    Chunk { seq: 0, messages, next: values.len() as i64, bytes: at, _permit: None, response }
}

#[test]
fn pausing_copies_a_partitions_chunks_out_of_their_response_and_gives_its_budget_back() {
    let budget = Arc::new(Semaphore::new(100));
    let mut st = State::default();
    queue(&mut st, 0, framed(&budget, &["ab", "cde"]));
    assert_eq!(budget.available_permits(), 40, "the response holds its budget while a chunk points into it");
    st.set_paused(&tp(0), true);
    assert_eq!(budget.available_permits(), 100, "copied out: the response is gone");
    // Arriving while paused, a chunk is copied out at once.
    queue(&mut st, 0, framed(&budget, &["f"]));
    assert_eq!(budget.available_permits(), 100);
    assert!(st.take(false).is_none(), "paused");
    st.set_paused(&tp(0), false);
    let got: Vec<(i64, String, String, String)> = std::iter::from_fn(|| st.take(false))
        .map(|(m, _)| {
            let s = |b: &Option<bytes::Bytes>| String::from_utf8(b.as_ref().unwrap().to_vec()).unwrap();
            (m.offset, s(&m.key), s(&m.value), s(&m.headers[0].value))
        })
        .collect();
    let want = [(0, "ab", "ab", "a"), (1, "cde", "cde", "c"), (0, "f", "f", "f")];
    assert_eq!(got, want.map(|(o, k, v, h)| (o, k.to_string(), v.to_string(), h.to_string())));
}

#[test]
fn an_unpaused_partitions_chunk_keeps_its_response_until_read() {
    let budget = Arc::new(Semaphore::new(100));
    let mut st = State::default();
    queue(&mut st, 0, framed(&budget, &["ab", "cd"]));
    let (_, read) = st.take(false).unwrap();
    assert!(read.is_none());
    assert_eq!(budget.available_permits(), 40);
    let (m, read) = st.take(false).unwrap();
    drop(read);
    assert_eq!(budget.available_permits(), 100, "its last chunk read, the response's budget is back");
    assert_eq!(m.value.as_deref(), Some(&b"cd"[..]));
}
