//! Reading one partition, shared by [`PartitionConn`](crate::PartitionConn) and the
//! [`Reader`](crate::Reader): the Fetch and ListOffsets requests for a single partition, and
//! turning fetched batches into the messages an application may see.

use crate::error::{Error, Result};
use crate::message::{from_millis, Message};
use crate::net::{Conn, IsolationLevel};
use kafkit_protocol::messages::{
    fetch_request, fetch_response, list_offsets_request, FetchRequest, ListOffsetsRequest,
};
use kafkit_protocol::record::{ControlRecordType, DecodeOptions, Record, RecordBatch, RecordSet};
use kafkit_protocol::{ErrorCode, Uuid};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

mod session;
pub(crate) use session::FetchSession;

/// One partition and where it is read from.
pub(crate) struct Spot<'a> {
    pub topic: &'a str,
    /// Used from Fetch v13, which names topics by id.
    pub topic_id: Uuid,
    pub partition: i32,
    /// The partition leader epoch the client knows (-1 if none); sent from Fetch v9 and
    /// ListOffsets v4 so a stale leader is told apart.
    pub leader_epoch: i32,
    pub isolation: IsolationLevel,
}

impl Spot<'_> {
    fn context(&self, what: &str, conn: &Conn) -> String {
        format!("{what} {}/{} on {}", self.topic, self.partition, conn.addr())
    }
}

/// ListOffsets for one partition: `timestamp` -2 for the earliest offset, -1 for the latest
/// (the last stable offset under read_committed), else the first offset at or after that
/// time in milliseconds (-1 when there is none).
pub(crate) async fn list_offset(conn: &Conn, spot: &Spot<'_>, timestamp: i64) -> Result<i64> {
    let v = conn.version_for::<ListOffsetsRequest>()?;
    let mut part = list_offsets_request::ListOffsetsPartition::default()
        .with_partition_index(spot.partition)
        .with_timestamp(timestamp);
    if v.0 >= 4 {
        part = part.with_current_leader_epoch(spot.leader_epoch);
    }
    let mut req = ListOffsetsRequest::default().with_replica_id(-1).with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default().with_name(spot.topic.to_string()).with_partitions(vec![part]),
    ]);
    if v.0 >= 2 && spot.isolation == IsolationLevel::ReadCommitted {
        req = req.with_isolation_level(1);
    }
    if v.0 >= 10 {
        // How long the broker may wait on remote (tiered) storage (KIP-1075).
        req = req.with_timeout_ms(conn.timeout_ms());
    }
    let resp = conn.request_version(&req, v).await?;
    let p =
        resp.topics.iter().flat_map(|t| t.partitions.iter()).find(|p| p.partition_index == spot.partition).ok_or_else(
            || Error::Broker {
                code: ErrorCode::UnknownServerError,
                context: spot.context("list offsets response lacks", conn),
                message: None,
            },
        )?;
    Error::check(p.error_code, None, || spot.context("listing offsets of", conn))?;
    Ok(p.offset)
}

/// Fetch of one partition from `offset`: the partition's data, its error code checked.
pub(crate) async fn fetch(
    conn: &Conn,
    spot: &Spot<'_>,
    offset: i64,
    min_bytes: i32,
    max_bytes: i32,
    max_wait: Duration,
) -> Result<fetch_response::PartitionData> {
    let limits = Limits { min_bytes, max_bytes, partition_max_bytes: max_bytes, max_wait };
    let (mut out, _) = fetch_many(conn, &[(spot, offset)], &limits, None).await?;
    out.pop().unwrap_or_else(|| Err(missing(spot, conn, offset)))
}

/// Byte and time limits of a Fetch request.
pub(crate) struct Limits {
    /// Bytes the broker waits for (Java `fetch.min.bytes`).
    pub min_bytes: i32,
    /// Most bytes in the whole response (Fetch v3+; Java `fetch.max.bytes`).
    pub max_bytes: i32,
    /// Most bytes per partition (Java `max.partition.fetch.bytes`).
    pub partition_max_bytes: i32,
    /// How long the broker waits for `min_bytes`.
    pub max_wait: Duration,
}

fn missing(spot: &Spot<'_>, conn: &Conn, offset: i64) -> Error {
    Error::Broker {
        code: ErrorCode::UnknownServerError,
        context: spot.context(&format!("the fetch response lacks (at {offset})"), conn),
        message: None,
    }
}

/// What one Fetch request carried.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sent {
    /// Incremental within a fetch session.
    pub incremental: bool,
    /// Partitions it named.
    pub named: usize,
}

/// One Fetch request for several partitions led by the broker behind `conn`, each from its
/// offset. Returns each partition's data (its error code checked) in the order asked, and
/// what the request carried; the outer error is the request's own.
///
/// With a `session` (Fetch v7+), the request is incremental within it (KIP-227): it names
/// only the partitions whose offset or leader epoch changed, forgets those no longer asked
/// for, and a partition the broker leaves out of its answer comes back with no records and
/// the broker's last high watermark. FETCH_SESSION_ID_NOT_FOUND and
/// INVALID_FETCH_SESSION_EPOCH (the broker evicted or lost the session) are answered with one
/// full Fetch at once. Without one, the request is sessionless (epoch -1), as before v7.
///
/// # Cancellation
/// Dropping the future leaves `session` empty: the next Fetch is full (see [`FetchSession`]).
pub(crate) async fn fetch_many(
    conn: &Conn,
    parts: &[(&Spot<'_>, i64)],
    limits: &Limits,
    mut session: Option<&mut FetchSession>,
) -> Result<(Vec<Result<fetch_response::PartitionData>>, Sent)> {
    // Fetch v13+ names topics by id (KIP-516): only when every topic's id is known, else v12.
    let ids_known = parts.iter().all(|(s, _)| !s.topic_id.is_zero());
    let v = crate::topic_ids::version_for_topics::<FetchRequest>(conn, crate::topic_ids::FETCH_BY_ID, ids_known)?;
    let by_id = v.0 >= 13;
    let asked: Vec<session::Asked<'_>> =
        parts.iter().map(|(s, off)| (s.topic, s.topic_id, s.partition, *off, s.leader_epoch)).collect();
    let mut retried = false;
    loop {
        let state = match session.as_deref_mut() {
            Some(s) if v.0 >= 7 => Some(s.take()),
            _ => None,
        };
        let plan = state.as_ref().map(|s| s.plan(&asked, by_id));
        let named: Vec<usize> = plan.as_ref().map_or_else(|| (0..parts.len()).collect(), |p| p.named.clone());
        let isolation = parts.first().map_or(IsolationLevel::ReadUncommitted, |(s, _)| s.isolation);
        let mut req = fetch_request_for(&named.iter().map(|i| parts[*i]).collect::<Vec<_>>(), limits, v, isolation);
        if let Some(p) = &plan {
            req.session_id = p.session_id;
            req.session_epoch = p.session_epoch;
            req.forgotten_topics_data = p.forgotten.clone();
        }
        let resp = conn.request_version(&req, v).await?;
        let code = ErrorCode::from_code(resp.error_code);
        if !retried
            && plan.is_some()
            && matches!(code, ErrorCode::FetchSessionIdNotFound | ErrorCode::InvalidFetchSessionEpoch)
        {
            // The session is gone (evicted, or the broker restarted): start a new one now.
            tracing::debug!(addr = conn.addr(), ?code, "fetch session lost; fetching in full");
            retried = true;
            continue;
        }
        Error::check(resp.error_code, None, || format!("fetching from {}", conn.addr()))?;
        tracing::trace!(
            addr = conn.addr(),
            session = resp.session_id,
            epoch = req.session_epoch,
            named = ?req.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.fetch_offset))).collect::<Vec<_>>(),
            forgotten = req.forgotten_topics_data.iter().map(|t| t.partitions.len()).sum::<usize>(),
            answered = ?resp.responses.iter().flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.records.as_ref().map_or(0, |r| r.len())))).collect::<Vec<_>>(),
            "fetched"
        );
        let mut by_key: HashMap<(String, Uuid, i32), fetch_response::PartitionData> = HashMap::new();
        for t in resp.responses {
            for p in t.partitions {
                by_key.insert((t.topic.clone(), t.topic_id, p.partition_index), p);
            }
        }
        let mut found: Vec<Option<fetch_response::PartitionData>> = parts
            .iter()
            .map(|(spot, _)| {
                let key = if by_id {
                    (String::new(), spot.topic_id, spot.partition)
                } else {
                    (spot.topic.to_string(), Uuid::ZERO, spot.partition)
                };
                by_key.remove(&key)
            })
            .collect();
        let sent = Sent { incremental: plan.as_ref().is_some_and(|p| p.incremental), named: named.len() };
        if let (Some(state), Some(plan)) = (state, plan) {
            if let Some(s) = session.as_deref_mut() {
                s.keep(state.answered(&plan, &asked, resp.session_id, &mut found));
            }
        }
        let results = parts
            .iter()
            .zip(found)
            .map(|((spot, offset), p)| {
                let p = p.ok_or_else(|| missing(spot, conn, *offset))?;
                Error::check(p.error_code, None, || spot.context(&format!("fetching at {offset} from"), conn))?;
                Ok(p)
            })
            .collect();
        return Ok((results, sent));
    }
}

/// The Fetch request (at version `v`) for `parts`, without session fields (sessionless).
fn fetch_request_for(
    parts: &[(&Spot<'_>, i64)],
    limits: &Limits,
    v: kafkit_protocol::ApiVersion,
    isolation: IsolationLevel,
) -> FetchRequest {
    let mut topics: Vec<fetch_request::FetchTopic> = Vec::new();
    for (spot, offset) in parts {
        let mut part = fetch_request::FetchPartition::default()
            .with_partition(spot.partition)
            .with_fetch_offset(*offset)
            .with_partition_max_bytes(limits.partition_max_bytes);
        if v.0 >= 9 {
            part = part.with_current_leader_epoch(spot.leader_epoch);
        }
        let same = |t: &fetch_request::FetchTopic| {
            if v.0 >= 13 {
                t.topic_id == spot.topic_id
            } else {
                t.topic == spot.topic
            }
        };
        match topics.iter_mut().find(|t| same(t)) {
            Some(t) => t.partitions.push(part),
            None => {
                let t = fetch_request::FetchTopic::default().with_partitions(vec![part]);
                topics.push(if v.0 >= 13 {
                    t.with_topic_id(spot.topic_id)
                } else {
                    t.with_topic(spot.topic.to_string())
                });
            }
        }
    }
    let mut req = FetchRequest::default()
        .with_max_wait_ms(limits.max_wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(limits.min_bytes)
        .with_topics(topics);
    if v.0 >= 3 {
        req = req.with_max_bytes(limits.max_bytes);
    }
    if isolation == IsolationLevel::ReadCommitted {
        // Below Fetch v4 this is refused at encode time rather than silently dropped.
        req = req.with_isolation_level(1);
    }
    req
}

/// What a fetch gives the application.
pub(crate) struct Selected {
    pub messages: Vec<Message>,
    /// Key and value bytes of `messages`.
    pub bytes: usize,
    /// Of them, the bytes of compressed batches: in buffers of their own, not in the fetch
    /// response.
    pub decompressed: usize,
    /// Whether any of `messages` came from an uncompressed batch, so points into the fetch
    /// response (which stays in memory while it does).
    pub framed: bool,
    /// The offset after the last batch (control and aborted ones included).
    pub next: i64,
}

impl Selected {
    /// Nothing selected yet, into `messages` (empty), from offset `from`.
    pub fn new(messages: Vec<Message>, from: i64) -> Selected {
        Selected { messages, bytes: 0, decompressed: 0, framed: false, next: from }
    }
}

/// The messages of a fetched partition the application may see, from offset `from` on:
/// never control records; under read_committed not the batches of aborted transactions.
pub(crate) fn messages(
    conn: &Conn,
    spot: &Spot<'_>,
    p: &fetch_response::PartitionData,
    from: i64,
    decode: &DecodeOptions,
) -> Result<Selected> {
    let mut batches = Batches::new(conn, spot, p, from, *decode);
    let mut out = Selected::new(Vec::new(), from);
    while batches.next_into(&mut out)? {}
    Ok(out)
}

/// A fetched partition's record batches, decoded one at a time, so that a reader holds
/// decompressed records only as far as it has room for them.
pub(crate) struct Batches {
    set: Option<RecordSet>,
    selector: Selector,
    addr: String,
}

impl Batches {
    pub fn new(
        conn: &Conn,
        spot: &Spot<'_>,
        p: &fetch_response::PartitionData,
        from: i64,
        decode: DecodeOptions,
    ) -> Self {
        let aborted = if spot.isolation == IsolationLevel::ReadCommitted { aborted_of(p) } else { VecDeque::new() };
        Batches {
            set: p.records.clone().map(|data| RecordSet::new(data, decode)),
            selector: Selector::new(aborted, from, spot.topic, spot.partition, p.high_watermark),
            addr: conn.addr().to_string(),
        }
    }

    /// The offset after the last whole batch not yet decoded, from the batch headers alone.
    pub fn next_offset(&self) -> Option<i64> {
        self.set.as_ref().and_then(RecordSet::next_offset)
    }

    /// Decodes the next batch and adds what the application may see of it to `out`;
    /// `false` when there was none left.
    pub fn next_into(&mut self, out: &mut Selected) -> Result<bool> {
        match self.set.as_mut().and_then(Iterator::next) {
            None => Ok(false),
            Some(Err(source)) => Err(Error::Decode { addr: self.addr.clone(), source }),
            Some(Ok(batch)) => {
                let records = self.selector.add(batch, out).map_err(|what| Error::Malformed {
                    broker: self.addr.clone(),
                    what: format!("{}/{}: {what}", self.selector.topic, self.selector.partition),
                })?;
                if let Some(set) = self.set.as_mut() {
                    set.recycle(records);
                }
                Ok(true)
            }
        }
    }
}

/// As [`messages`], without a connection (`addr` named in errors): for tests that feed
/// arbitrary fetch responses.
#[cfg(test)]
pub(crate) fn messages_from(
    addr: &str,
    spot: &Spot<'_>,
    p: &fetch_response::PartitionData,
    from: i64,
) -> Result<Selected> {
    let aborted = if spot.isolation == IsolationLevel::ReadCommitted { aborted_of(p) } else { VecDeque::new() };
    let mut batches = Batches {
        set: p.records.clone().map(|data| RecordSet::new(data, DecodeOptions::default())),
        selector: Selector::new(aborted, from, spot.topic, spot.partition, p.high_watermark),
        addr: addr.to_string(),
    };
    let mut out = Selected::new(Vec::new(), from);
    while batches.next_into(&mut out)? {}
    Ok(out)
}

/// The messages of `batches` from offset `from` on, as a [`Selector`] chooses them.
#[cfg(test)]
pub(crate) fn select(
    batches: Vec<RecordBatch>,
    aborted: VecDeque<(i64, i64)>,
    from: i64,
    topic: &str,
    partition: i32,
    high_watermark: i64,
) -> std::result::Result<Selected, String> {
    let mut selector = Selector::new(aborted, from, topic, partition, high_watermark);
    let mut out = Selected::new(Vec::new(), from);
    for batch in batches {
        selector.add(batch, &mut out)?;
    }
    Ok(out)
}

/// Chooses, batch after batch of one partition, the messages the application may see, from
/// offset `from` on: control batches never; with a non-empty `aborted` list ((first offset,
/// producer id) of each aborted transaction, sorted) not the batches of a producer between
/// the first offset of its aborted transaction and its abort marker.
pub(crate) struct Selector {
    aborted: VecDeque<(i64, i64)>,
    /// Producers whose aborted transaction is in effect.
    active: HashSet<i64>,
    from: i64,
    topic: std::sync::Arc<str>,
    partition: i32,
    high_watermark: i64,
    /// The offset of the last record taken so far: offsets only go up.
    last: Option<i64>,
}

impl Selector {
    fn new(aborted: VecDeque<(i64, i64)>, from: i64, topic: &str, partition: i32, high_watermark: i64) -> Self {
        Selector { aborted, active: HashSet::new(), from, topic: topic.into(), partition, high_watermark, last: None }
    }

    /// Adds what the application may see of `batch` to `out`; returns the batch's records
    /// vector, emptied, for reuse.
    ///
    /// # Errors
    /// What is malformed (for [`Error::Malformed`]): offsets that overflow an `i64`, are
    /// negative, lie past their batch's last offset, or do not go up from record to record
    /// (within and across batches).
    fn add(&mut self, mut batch: RecordBatch, out: &mut Selected) -> std::result::Result<Vec<Record>, String> {
        let base_offset = batch.base_offset;
        let next = base_offset
            .checked_add(i64::from(batch.last_offset_delta))
            .and_then(|last| last.checked_add(1))
            .filter(|_| base_offset >= 0)
            .ok_or_else(|| {
                format!("a batch's offsets (base {base_offset}, last delta {}) overflow", batch.last_offset_delta)
            })?;
        let last_offset = next - 1;
        // Aborted transactions that start at or before this batch are in effect.
        while self.aborted.front().is_some_and(|(first, _)| *first <= last_offset) {
            if let Some((_, pid)) = self.aborted.pop_front() {
                self.active.insert(pid);
            }
        }
        out.next = out.next.max(next);
        if batch.is_control {
            if let Some(Ok(ctl)) = batch.control_record() {
                if ctl.kind == ControlRecordType::Abort {
                    self.active.remove(&batch.producer_id);
                }
            }
            return Ok(batch.records);
        }
        if batch.is_transactional && self.active.contains(&batch.producer_id) {
            return Ok(batch.records);
        }
        let base_timestamp = batch.base_timestamp;
        let log_append_time = batch.timestamp_type == kafkit_protocol::record::TimestampType::LogAppendTime;
        let max_timestamp = batch.max_timestamp;
        let compressed = batch.compression != kafkit_protocol::compression::Compression::None;
        let (before, count) = (out.bytes, out.messages.len());
        out.messages.reserve(batch.records.len());
        // Moved out of the decoded batch: no second reference count per key and value.
        for r in batch.records.drain(..) {
            let offset = base_offset
                .checked_add(i64::from(r.offset_delta))
                .filter(|o| *o >= 0)
                .ok_or_else(|| format!("a record's offset (base {base_offset}, delta {}) overflows", r.offset_delta))?;
            if offset > last_offset {
                return Err(format!("record offset {offset} is past its batch's last offset {last_offset}"));
            }
            if self.last.is_some_and(|l| offset <= l) {
                return Err(format!("record offset {offset} follows offset {}", self.last.unwrap_or_default()));
            }
            self.last = Some(offset);
            if offset < self.from {
                continue;
            }
            // As `RecordBatch::timestamp_of`.
            let timestamp =
                if log_append_time { max_timestamp } else { base_timestamp.wrapping_add(r.timestamp_delta) };
            let m = Message {
                topic: self.topic.clone(),
                partition: self.partition,
                offset,
                high_watermark: self.high_watermark,
                key: r.key,
                value: r.value,
                headers: r.headers,
                time: from_millis(timestamp),
            };
            out.bytes += m.size();
            out.messages.push(m);
        }
        if compressed {
            out.decompressed += out.bytes - before;
        } else {
            out.framed |= out.messages.len() > count;
        }
        Ok(batch.records)
    }
}

/// Aborted transactions of a read_committed fetch as (first offset, producer id), sorted.
fn aborted_of(p: &fetch_response::PartitionData) -> VecDeque<(i64, i64)> {
    let mut v: Vec<(i64, i64)> =
        p.aborted_transactions.iter().flatten().map(|a| (a.first_offset, a.producer_id)).collect();
    v.sort_unstable();
    v.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafkit_protocol::record::{ControlRecord, Record};

    fn batch(base: i64, pid: i64, values: &[&str]) -> RecordBatch {
        let mut b = RecordBatch::new(0);
        b.base_offset = base;
        b.producer_id = pid;
        b.is_transactional = true;
        b.records = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record::new(None, Some(Bytes::copy_from_slice(v.as_bytes()))).with_offset_delta(i as i32))
            .collect();
        b.last_offset_delta = values.len() as i32 - 1;
        b
    }

    fn marker(base: i64, pid: i64, kind: ControlRecordType) -> RecordBatch {
        let mut b = batch(base, pid, &[]);
        b.is_control = true;
        b.records = vec![ControlRecord { version: 0, kind, coordinator_epoch: 0 }.to_record()];
        b.last_offset_delta = 0;
        b
    }

    fn values(s: &Selected) -> Vec<String> {
        s.messages.iter().map(|m| String::from_utf8(m.value.clone().unwrap().to_vec()).unwrap()).collect()
    }

    /// Producer 7 aborts (offsets 0-2), producer 8 commits in between (3-4), producer 7 then
    /// commits a new transaction (5-6); producer 9 aborts one that began before this fetch's
    /// first batch.
    fn log() -> Vec<RecordBatch> {
        vec![
            batch(0, 7, &["a1", "a2"]),
            batch(2, 8, &["c1"]),
            marker(3, 7, ControlRecordType::Abort),
            marker(4, 8, ControlRecordType::Commit),
            batch(5, 7, &["c2"]),
            batch(6, 9, &["a3"]),
            marker(7, 7, ControlRecordType::Commit),
            marker(8, 9, ControlRecordType::Abort),
        ]
    }

    #[test]
    fn read_committed_leaves_out_aborted_transactions_and_markers() {
        let aborted: VecDeque<(i64, i64)> = [(0, 7), (6, 9)].into_iter().collect();
        let s = select(log(), aborted, 0, "t", 0, 9).unwrap();
        assert_eq!(values(&s), ["c1", "c2"]);
        assert_eq!(s.next, 9);
        assert_eq!(s.bytes, 4);
    }

    #[test]
    fn read_uncommitted_keeps_every_data_record_but_no_marker() {
        let s = select(log(), VecDeque::new(), 0, "t", 0, 9).unwrap();
        assert_eq!(values(&s), ["a1", "a2", "c1", "c2", "a3"]);
        // Records before the requested offset (inside the first batch) are skipped.
        let s = select(log(), VecDeque::new(), 1, "t", 0, 9).unwrap();
        assert_eq!(values(&s)[0], "a2");
    }

    #[test]
    fn the_bytes_of_compressed_batches_are_told_apart_from_those_in_the_response() {
        let mut lz4 = batch(2, 8, &["abc", "de"]);
        lz4.compression = kafkit_protocol::compression::Compression::Lz4;
        let s = select(vec![lz4.clone()], VecDeque::new(), 0, "t", 0, 9).unwrap();
        assert_eq!((s.bytes, s.decompressed, s.framed), (5, 5, false));
        let s = select(vec![batch(0, 7, &["xy"]), lz4], VecDeque::new(), 0, "t", 0, 9).unwrap();
        assert_eq!((s.bytes, s.decompressed, s.framed), (7, 5, true));
        // Markers point into the response too, but no message is taken from them.
        let s = select(vec![marker(0, 7, ControlRecordType::Commit)], VecDeque::new(), 0, "t", 0, 9).unwrap();
        assert_eq!((s.bytes, s.decompressed, s.framed), (0, 0, false));
    }
}
