//! A connection to one partition's leader (kafka-go's `DialLeader` and the partition methods
//! of its `Conn`).

use super::{Conn, Dialer};
use crate::error::{Error, Result};
use crate::message::{from_millis, to_millis, Message};
use bytes::BytesMut;
use kafkit_protocol::compression::Compression;
use kafkit_protocol::messages::ProduceRequest;
use kafkit_protocol::record::DecodeOptions;
use kafkit_protocol::{ErrorCode, Uuid};
use std::time::{Duration, SystemTime};

/// Default [`PartitionConn::set_max_wait`]: 500 ms (Java `fetch.max.wait.ms`).
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_millis(500);

/// Acknowledgements a produce request waits for (Java `acks`, kafka-go `RequiredAcks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// No response at all (`acks=0`): fastest, and a lost write goes unnoticed.
    None,
    /// The partition leader has written it (`acks=1`).
    Leader,
    /// Every in-sync replica has it (`acks=all`, -1). The default.
    #[default]
    All,
}

impl Acks {
    /// The value on the wire.
    pub fn code(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Which records a fetch returns (Java `isolation.level`, KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record up to the high watermark, committed or not. The default.
    #[default]
    ReadUncommitted,
    /// Records up to the last stable offset; aborted transactions are left out by the reader
    /// (Fetch v4+).
    ReadCommitted,
}

/// What a produce returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteResult {
    /// Offset of the first message written (-1 with [`Acks::None`]).
    pub base_offset: i64,
    /// The broker's append time when the topic uses `LogAppendTime`.
    pub log_append_time: Option<SystemTime>,
}

/// Messages read by one fetch, with the partition's offsets at that moment.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The messages, in offset order (control records left out).
    pub messages: Vec<Message>,
    /// The high watermark.
    pub high_watermark: i64,
    /// The last stable offset (-1 if the broker did not say).
    pub last_stable_offset: i64,
    /// The log start offset (-1 if the broker did not say).
    pub log_start_offset: i64,
}

/// A connection to the leader of one partition.
///
/// Dial it with [`Dialer::dial_leader`]. Reads start at offset 0 ([`PartitionConn::seek`]
/// moves them); each [`PartitionConn::read_batch`] continues after the last message read.
#[derive(Debug)]
pub struct PartitionConn {
    conn: Conn,
    topic: String,
    topic_id: Uuid,
    partition: i32,
    leader_epoch: i32,
    offset: i64,
    acks: Acks,
    compression: Compression,
    isolation: IsolationLevel,
    max_wait: Duration,
    decode: DecodeOptions,
}

impl Dialer {
    /// Connects to the partition leader of `topic`/`partition`, finding it through the broker
    /// at `bootstrap` (kafka-go `DialLeader`).
    ///
    /// # Errors
    /// As [`Dialer::dial`]; the topic's or partition's error code as [`Error::Broker`];
    /// `LEADER_NOT_AVAILABLE` when the partition has no leader now.
    pub async fn dial_leader(&self, bootstrap: &str, topic: &str, partition: i32) -> Result<PartitionConn> {
        let boot = self.dial(bootstrap).await?;
        let meta = boot.metadata(Some(&[topic])).await?;
        let t = meta
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(topic))
            .ok_or_else(|| unknown(topic, partition, bootstrap))?;
        Error::check(t.error_code, None, || format!("metadata for {topic} from {bootstrap}"))?;
        let p = t
            .partitions
            .iter()
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| unknown(topic, partition, bootstrap))?;
        Error::check(p.error_code, None, || format!("metadata for {topic}/{partition} from {bootstrap}"))?;
        let leader = meta.brokers.iter().find(|b| b.node_id == p.leader_id).ok_or_else(|| Error::Broker {
            code: ErrorCode::LeaderNotAvailable,
            context: format!("{topic}/{partition} has no leader (leader id {})", p.leader_id),
            message: None,
        })?;
        let addr = format!("{}:{}", leader.host, leader.port);
        let conn = if addr == bootstrap { boot } else { self.dial(&addr).await? };
        Ok(PartitionConn {
            conn,
            topic: topic.to_string(),
            topic_id: t.topic_id,
            partition,
            leader_epoch: p.leader_epoch,
            offset: 0,
            acks: Acks::All,
            compression: Compression::None,
            isolation: IsolationLevel::ReadUncommitted,
            max_wait: DEFAULT_MAX_WAIT,
            decode: DecodeOptions::default(),
        })
    }
}

fn unknown(topic: &str, partition: i32, from: &str) -> Error {
    Error::Broker {
        code: ErrorCode::UnknownTopicOrPartition,
        context: format!("metadata for {topic}/{partition} from {from}"),
        message: None,
    }
}

/// Special timestamps of ListOffsets.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

impl PartitionConn {
    /// The underlying connection (any request can be sent on it).
    pub fn conn(&self) -> &Conn {
        &self.conn
    }
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }
    /// The offset the next read starts at.
    pub fn offset(&self) -> i64 {
        self.offset
    }
    /// Moves the next read to `offset`.
    pub fn seek(&mut self, offset: i64) {
        self.offset = offset;
    }
    /// Sets the acks produce requests wait for. Default [`Acks::All`].
    pub fn set_required_acks(&mut self, acks: Acks) {
        self.acks = acks;
    }
    /// Sets the codec of written batches. Default [`Compression::None`].
    pub fn set_compression(&mut self, c: Compression) {
        self.compression = c;
    }
    /// Sets the isolation level of reads. Default [`IsolationLevel::ReadUncommitted`].
    pub fn set_isolation_level(&mut self, l: IsolationLevel) {
        self.isolation = l;
    }
    /// Sets how long a read waits for `min_bytes` to arrive. Default [`DEFAULT_MAX_WAIT`]; it
    /// must stay below the dialer's request timeout.
    pub fn set_max_wait(&mut self, d: Duration) {
        self.max_wait = d;
    }

    fn context(&self, what: &str) -> String {
        format!("{what} {}/{} on {}", self.topic, self.partition, self.conn.addr())
    }

    /// Writes `messages` as one record batch (kafka-go `Conn.WriteMessages`); a message
    /// without a time gets the current time.
    ///
    /// # Errors
    /// As [`Conn::request`]; the partition's error code (and any per-record errors the broker
    /// names, Produce v8+) as [`Error::Broker`].
    pub async fn write_messages(&self, messages: &[Message]) -> Result<WriteResult> {
        let now = to_millis(SystemTime::now());
        let times: Vec<i64> = messages.iter().map(|m| m.time.map_or(now, to_millis)).collect();
        let batch = crate::message::record_batch(messages.iter().zip(times.iter().copied()), self.compression);
        let mut buf = BytesMut::new();
        batch.encode(&mut buf).map_err(|source| Error::Encode { addr: self.conn.addr().to_string(), source })?;
        // Produce v13 names the topic by id (KIP-516), when the metadata gave one.
        let v = crate::topic_ids::version_for_topics::<ProduceRequest>(
            &self.conn,
            crate::topic_ids::PRODUCE_BY_ID,
            !self.topic_id.is_zero(),
        )?;
        let records = buf.freeze();
        let call = crate::producer::produce::produce_request(
            self.acks,
            self.conn.timeout_ms(),
            v,
            |_| self.topic_id,
            std::iter::once((self.topic.as_str(), self.partition, &records)),
        );
        let req = call.req;
        if self.acks == Acks::None {
            self.conn.send_without_response_version(&req, v).await?;
            return Ok(WriteResult { base_offset: -1, log_append_time: None });
        }
        let resp = self.conn.request_version(&req, v).await?;
        let p = resp
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == self.partition)
            .ok_or_else(|| Error::Broker {
                code: ErrorCode::UnknownServerError,
                context: self.context("produce response lacks"),
                message: None,
            })?;
        let detail = p.error_message.clone().or_else(|| {
            (!p.record_errors.is_empty()).then(|| {
                p.record_errors
                    .iter()
                    .map(|e| {
                        format!("record {}: {}", e.batch_index, e.batch_index_error_message.as_deref().unwrap_or(""))
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        });
        Error::check(p.error_code, detail.as_deref(), || self.context("producing to"))?;
        Ok(WriteResult { base_offset: p.base_offset, log_append_time: from_millis(p.log_append_time_ms) })
    }

    /// Fetches from the current offset and advances past what it returns (kafka-go
    /// `Conn.ReadBatch`): waits up to the max wait for `min_bytes`, and returns at most about
    /// `max_bytes` (a first batch larger than that is still returned whole, as Kafka does).
    ///
    /// # Errors
    /// As [`Conn::request`]; the partition's error code (such as `OFFSET_OUT_OF_RANGE`) as
    /// [`Error::Broker`]; a corrupt record batch as [`Error::Decode`].
    pub async fn read_batch(&mut self, min_bytes: i32, max_bytes: i32) -> Result<Batch> {
        let spot = self.spot();
        let p = crate::fetch::fetch(&self.conn, &spot, self.offset, min_bytes, max_bytes, self.max_wait).await?;
        let selected = crate::fetch::messages(&self.conn, &spot, &p, self.offset, &self.decode)?;
        self.offset = self.offset.max(selected.next);
        Ok(Batch {
            messages: selected.messages,
            high_watermark: p.high_watermark,
            last_stable_offset: p.last_stable_offset,
            log_start_offset: p.log_start_offset,
        })
    }

    fn spot(&self) -> crate::fetch::Spot<'_> {
        crate::fetch::Spot {
            topic: &self.topic,
            topic_id: self.topic_id,
            partition: self.partition,
            leader_epoch: self.leader_epoch,
            isolation: self.isolation,
        }
    }

    /// The first offset of the partition (its log start offset).
    ///
    /// # Errors
    /// As [`Conn::request`]; the partition's error code as [`Error::Broker`].
    pub async fn read_first_offset(&self) -> Result<i64> {
        self.list_offset(EARLIEST).await
    }
    /// The offset after the last message (the high watermark; the last stable offset under
    /// [`IsolationLevel::ReadCommitted`]).
    ///
    /// # Errors
    /// As [`Conn::request`]; the partition's error code as [`Error::Broker`].
    pub async fn read_last_offset(&self) -> Result<i64> {
        self.list_offset(LATEST).await
    }
    /// The first offset whose timestamp is at or after `t`; -1 when there is none
    /// (ListOffsets v1+).
    ///
    /// # Errors
    /// As [`Conn::request`]; the partition's error code as [`Error::Broker`].
    pub async fn read_offset(&self, t: SystemTime) -> Result<i64> {
        self.list_offset(to_millis(t)).await
    }
    /// The first and last offsets.
    ///
    /// # Errors
    /// As [`PartitionConn::read_first_offset`].
    pub async fn read_offsets(&self) -> Result<(i64, i64)> {
        Ok((self.read_first_offset().await?, self.read_last_offset().await?))
    }

    async fn list_offset(&self, timestamp: i64) -> Result<i64> {
        crate::fetch::list_offset(&self.conn, &self.spot(), timestamp).await
    }
}
