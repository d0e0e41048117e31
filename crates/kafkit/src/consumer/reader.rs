//! The `Reader` in partition mode (kafka-go's `Reader` without a `GroupID`).

use crate::cluster::{Cluster, ClusterConfig, Workload};
use crate::error::{Error, Result};
use crate::fetch::{Selected, Spot};
use crate::message::{to_millis, Message};
use crate::net::IsolationLevel;
use kafkit_protocol::record::DecodeOptions;
use kafkit_protocol::{ErrorCode, Uuid};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Default [`ReaderConfig::max_wait`]: 500 ms (Java `fetch.max.wait.ms`).
pub const DEFAULT_READER_MAX_WAIT: Duration = Duration::from_millis(500);
/// Default [`ReaderConfig::max_bytes`]: 1 MiB per fetch (kafka-go `MaxBytes`).
pub const DEFAULT_READER_MAX_BYTES: i32 = 1 << 20;
/// Default [`ReaderConfig::prefetch_bytes`]: 16 MiB of fetched, unread messages.
pub const DEFAULT_PREFETCH_BYTES: usize = 16 << 20;

/// Where a reader starts (kafka-go `StartOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartOffset {
    /// The first offset still in the log. The default (kafka-go `FirstOffset`).
    #[default]
    First,
    /// The end of the log: only messages written from now on (kafka-go `LastOffset`).
    Last,
    /// This offset.
    At(i64),
}

/// What to do when the broker says the offset to read is out of range (it was deleted by
/// retention, or is past the end): Java `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Continue from the first offset still in the log. The default: nothing still in the
    /// log is skipped.
    #[default]
    Earliest,
    /// Continue from the end of the log.
    Latest,
    /// Fail the read with the broker's `OFFSET_OUT_OF_RANGE`.
    Fail,
}

/// Settings of a [`Reader`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ReaderConfig {
    /// Connections, metadata, retry backoff.
    pub cluster: ClusterConfig,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Where to start. Default [`StartOffset::First`].
    pub start: StartOffset,
    /// Bytes a fetch waits for (Java `fetch.min.bytes`). Default 1.
    pub min_bytes: i32,
    /// Most bytes one fetch returns (a larger first batch still comes whole). Default
    /// [`DEFAULT_READER_MAX_BYTES`].
    pub max_bytes: i32,
    /// How long a fetch waits for `min_bytes`. Default [`DEFAULT_READER_MAX_WAIT`]; keep it
    /// below the dialer's request timeout.
    pub max_wait: Duration,
    /// Fetched but unread message bytes (keys and values) the reader may hold; fetching
    /// pauses beyond it. Memory stays within this plus one fetch. Default
    /// [`DEFAULT_PREFETCH_BYTES`].
    pub prefetch_bytes: usize,
    /// Which records to return. Default [`IsolationLevel::ReadUncommitted`].
    pub isolation: IsolationLevel,
    /// What OFFSET_OUT_OF_RANGE does. Default [`OffsetReset::Earliest`].
    pub reset: OffsetReset,
}

impl ReaderConfig {
    /// A reader of `topic`/`partition` with the defaults.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        ReaderConfig {
            cluster: ClusterConfig::default(),
            topic: topic.into(),
            partition,
            start: StartOffset::First,
            min_bytes: 1,
            max_bytes: DEFAULT_READER_MAX_BYTES,
            max_wait: DEFAULT_READER_MAX_WAIT,
            prefetch_bytes: DEFAULT_PREFETCH_BYTES,
            isolation: IsolationLevel::ReadUncommitted,
            reset: OffsetReset::Earliest,
        }
    }
    /// Sets [`ReaderConfig::start`].
    pub fn with_start(mut self, s: StartOffset) -> Self {
        self.start = s;
        self
    }
    /// Sets [`ReaderConfig::max_wait`].
    pub fn with_max_wait(mut self, d: Duration) -> Self {
        self.max_wait = d;
        self
    }
    /// Sets [`ReaderConfig::max_bytes`].
    pub fn with_max_bytes(mut self, n: i32) -> Self {
        self.max_bytes = n;
        self
    }
    /// Sets [`ReaderConfig::prefetch_bytes`].
    pub fn with_prefetch_bytes(mut self, n: usize) -> Self {
        self.prefetch_bytes = n;
        self
    }
    /// Sets [`ReaderConfig::isolation`].
    pub fn with_isolation(mut self, l: IsolationLevel) -> Self {
        self.isolation = l;
        self
    }
    /// Sets [`ReaderConfig::reset`].
    pub fn with_reset(mut self, r: OffsetReset) -> Self {
        self.reset = r;
        self
    }
    /// Sets [`ReaderConfig::cluster`].
    pub fn with_cluster(mut self, c: ClusterConfig) -> Self {
        self.cluster = c;
        self
    }
}

/// Counters of a [`Reader`] (kafka-go `ReaderStats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Messages returned to the application.
    pub messages: u64,
    /// Key and value bytes returned.
    pub bytes: u64,
    /// Fetch requests made.
    pub fetches: u64,
    /// Errors met (each retried or returned).
    pub errors: u64,
    /// Offset resets after OFFSET_OUT_OF_RANGE.
    pub resets: u64,
    /// Fetched message bytes not yet returned.
    pub buffered_bytes: u64,
    /// The next offset to return.
    pub offset: i64,
    /// Messages between the next offset and the high watermark of the last fetch.
    pub lag: i64,
}

#[derive(Default)]
struct Shared {
    messages: AtomicU64,
    bytes: AtomicU64,
    fetches: AtomicU64,
    errors: AtomicU64,
    resets: AtomicU64,
    buffered: AtomicU64,
    high_watermark: AtomicI64,
}

/// Fetched messages of one seek generation, with the budget they hold.
struct Fetched {
    generation: u64,
    messages: Vec<Message>,
    /// The offset after the fetch's last batch: where the reader stands once the messages
    /// are read (past any control records and aborted batches at the end).
    next: i64,
    _permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

enum Control {
    Seek { generation: u64, offset: Option<i64>, time: Option<i64> },
}

/// Reads one partition (kafka-go's `Reader` without a group).
///
/// A background task fetches ahead from the partition leader, following leader changes
/// and retrying retriable errors; it pauses when [`ReaderConfig::prefetch_bytes`] of
/// fetched messages are waiting. Control records are never returned; under
/// [`IsolationLevel::ReadCommitted`] neither are records of aborted transactions.
/// Also a `futures_core::Stream` of `Result<Message>`.
///
/// # Cancellation
/// Dropping a [`Reader::read_message`] future loses nothing: a message is taken from the
/// buffer only when the future completes.
pub struct Reader {
    rx: mpsc::Receiver<Result<Fetched>>,
    control: mpsc::UnboundedSender<Control>,
    shared: Arc<Shared>,
    current: VecDeque<Message>,
    current_permit: Option<OwnedSemaphorePermit>,
    current_bytes: usize,
    current_next: i64,
    generation: u64,
    offset: i64,
    task: tokio::task::JoinHandle<()>,
    cluster: Cluster,
    config: ReaderConfig,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("topic", &self.config.topic)
            .field("partition", &self.config.partition)
            .field("offset", &self.offset)
            .finish()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reader {
    /// Connects through `brokers` and starts fetching at [`ReaderConfig::start`].
    ///
    /// # Errors
    /// As [`Cluster::connect`]; the topic's metadata error; ListOffsets' error for
    /// [`StartOffset::First`] / [`StartOffset::Last`].
    pub async fn new(brokers: &[&str], config: ReaderConfig) -> Result<Reader> {
        let cluster = Cluster::connect(brokers, config.cluster.clone()).await?;
        cluster.topic(&config.topic).await?;
        let start = match config.start {
            StartOffset::At(o) => o,
            StartOffset::First => list_offset(&cluster, &config, -2).await?,
            StartOffset::Last => list_offset(&cluster, &config, -1).await?,
        };
        let (tx, rx) = mpsc::channel(16);
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        shared.high_watermark.store(-1, Ordering::Relaxed);
        let budget = Arc::new(Semaphore::new(config.prefetch_bytes.clamp(1, Semaphore::MAX_PERMITS)));
        let fetcher = Fetcher {
            cluster: cluster.clone(),
            config: config.clone(),
            shared: shared.clone(),
            budget,
            offset: start,
            generation: 0,
        };
        let task = tokio::spawn(fetcher.run(tx, ctl_rx));
        Ok(Reader {
            rx,
            control: ctl_tx,
            shared,
            current: VecDeque::new(),
            current_permit: None,
            current_bytes: 0,
            current_next: start,
            generation: 0,
            offset: start,
            task,
            cluster,
            config,
        })
    }

    /// The next message (kafka-go `ReadMessage`; in partition mode `FetchMessage` is the
    /// same: nothing is committed).
    ///
    /// # Errors
    /// A non-retriable fetch error (such as OFFSET_OUT_OF_RANGE with [`OffsetReset::Fail`]);
    /// [`Error::Closed`] after [`Reader::close`].
    pub async fn read_message(&mut self) -> Result<Message> {
        loop {
            if let Some(m) = self.take() {
                return Ok(m);
            }
            match self.rx.recv().await {
                None => return Err(Error::Closed),
                Some(Err(e)) => return Err(e),
                Some(Ok(f)) => self.accept(f),
            }
        }
    }

    /// Same as [`Reader::read_message`] (kafka-go `FetchMessage`).
    ///
    /// # Errors
    /// As [`Reader::read_message`].
    pub async fn fetch_message(&mut self) -> Result<Message> {
        self.read_message().await
    }

    fn accept(&mut self, f: Fetched) {
        if f.generation != self.generation {
            self.shared.buffered.fetch_sub(f.bytes as u64, Ordering::Relaxed);
            return;
        }
        self.current.extend(f.messages);
        self.current_bytes = f.bytes;
        self.current_permit = f._permit;
        self.current_next = f.next;
        if self.current.is_empty() {
            // Only markers or aborted batches: the position moves past them.
            self.offset = self.offset.max(f.next);
        }
    }

    fn take(&mut self) -> Option<Message> {
        let m = self.current.pop_front()?;
        let size = m.key.as_ref().map_or(0, |k| k.len()) + m.value.as_ref().map_or(0, |v| v.len());
        self.shared.messages.fetch_add(1, Ordering::Relaxed);
        self.shared.bytes.fetch_add(size as u64, Ordering::Relaxed);
        self.offset = m.offset + 1;
        if self.current.is_empty() {
            // The whole fetch is read: give its budget back, and stand after its last batch.
            self.shared.buffered.fetch_sub(self.current_bytes as u64, Ordering::Relaxed);
            self.current_permit = None;
            self.current_bytes = 0;
            self.offset = self.offset.max(self.current_next);
        }
        Some(m)
    }

    /// The next offset [`Reader::read_message`] returns (kafka-go `Offset`).
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Moves the reader to `offset` (kafka-go `SetOffset`); messages fetched before are
    /// dropped.
    ///
    /// # Errors
    /// [`Error::Closed`] if the fetch task stopped.
    pub fn set_offset(&mut self, offset: i64) -> Result<()> {
        self.seek(Some(offset), None)
    }

    /// Moves the reader to the first message at or after `t` (kafka-go `SetOffsetAt`,
    /// ListOffsets by timestamp); to the end of the log when there is none.
    ///
    /// # Errors
    /// [`Error::Closed`] if the fetch task stopped.
    pub fn set_offset_at(&mut self, t: SystemTime) -> Result<()> {
        self.seek(None, Some(to_millis(t)))
    }

    fn seek(&mut self, offset: Option<i64>, time: Option<i64>) -> Result<()> {
        self.generation += 1;
        self.shared.buffered.fetch_sub(self.current_bytes as u64, Ordering::Relaxed);
        self.current.clear();
        self.current_permit = None;
        self.current_bytes = 0;
        if let Some(o) = offset {
            self.offset = o;
        }
        self.control.send(Control::Seek { generation: self.generation, offset, time }).map_err(|_| Error::Closed)
    }

    /// Messages between the next offset to read and the high watermark of the latest fetch
    /// (kafka-go `Lag`); -1 before the first fetch.
    pub fn lag(&self) -> i64 {
        let hwm = self.shared.high_watermark.load(Ordering::Relaxed);
        if hwm < 0 {
            -1
        } else {
            (hwm - self.offset).max(0)
        }
    }

    /// Asks the partition leader for the end of the log now and returns the messages
    /// between it and the next offset to read (kafka-go `ReadLag`).
    ///
    /// # Errors
    /// As [`Conn::request`](crate::Conn::request); ListOffsets' error.
    pub async fn read_lag(&self) -> Result<i64> {
        let end = list_offset(&self.cluster, &self.config, -1).await?;
        Ok((end - self.offset).max(0))
    }

    /// The counters so far.
    pub fn stats(&self) -> ReaderStats {
        let s = &self.shared;
        ReaderStats {
            messages: s.messages.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            fetches: s.fetches.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            resets: s.resets.load(Ordering::Relaxed),
            buffered_bytes: s.buffered.load(Ordering::Relaxed),
            offset: self.offset,
            lag: self.lag(),
        }
    }

    /// Stops fetching (kafka-go `Close`).
    pub fn close(self) {
        drop(self);
    }
}

impl futures_core::Stream for Reader {
    type Item = Result<Message>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(m) = self.take() {
                return Poll::Ready(Some(Ok(m)));
            }
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(f))) => self.accept(f),
            }
        }
    }
}

/// ListOffsets for the reader's partition (-2 earliest, -1 latest, else a timestamp), on the
/// partition leader, retried.
async fn list_offset(cluster: &Cluster, config: &ReaderConfig, timestamp: i64) -> Result<i64> {
    cluster
        .retry(|| async {
            let (conn, leader) = cluster.leader(&config.topic, config.partition, Workload::Fetch).await?;
            let spot = Spot {
                topic: &config.topic,
                topic_id: Uuid::ZERO,
                partition: config.partition,
                leader_epoch: leader.leader_epoch,
                isolation: config.isolation,
            };
            crate::fetch::list_offset(&conn, &spot, timestamp).await
        })
        .await
}

struct Fetcher {
    cluster: Cluster,
    config: ReaderConfig,
    shared: Arc<Shared>,
    budget: Arc<Semaphore>,
    offset: i64,
    generation: u64,
}

impl Fetcher {
    async fn run(mut self, tx: mpsc::Sender<Result<Fetched>>, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut attempt = 0u32;
        let mut waiting: Option<Control> = None;
        loop {
            while let Some(Control::Seek { generation, offset, time }) =
                waiting.take().or_else(|| control.try_recv().ok())
            {
                self.generation = generation;
                if let Some(o) = offset {
                    self.offset = o;
                }
                if let Some(t) = time {
                    match list_offset(&self.cluster, &self.config, t).await {
                        // No message at or after `t`: the end of the log.
                        Ok(-1) => match list_offset(&self.cluster, &self.config, -1).await {
                            Ok(o) => self.offset = o,
                            Err(e) => {
                                let _ = tx.send(Err(e)).await;
                            }
                        },
                        Ok(o) => self.offset = o,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                        }
                    }
                }
            }
            match self.fetch_once().await {
                Ok(None) => attempt = 0,
                Ok(Some(f)) => {
                    attempt = 0;
                    if tx.send(Ok(f)).await.is_err() {
                        return;
                    }
                }
                Err(e)
                    if e.error_code() == Some(ErrorCode::OffsetOutOfRange)
                        && self.config.reset != OffsetReset::Fail =>
                {
                    self.shared.resets.fetch_add(1, Ordering::Relaxed);
                    let ts = if self.config.reset == OffsetReset::Earliest { -2 } else { -1 };
                    match list_offset(&self.cluster, &self.config, ts).await {
                        Ok(o) => self.offset = o,
                        Err(e) => {
                            if tx.send(Err(e)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Err(e) if e.is_retriable() => {
                    self.shared.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.cluster.config().backoff.delay(attempt)).await;
                    attempt += 1;
                    let _ = self.cluster.refresh_metadata(None).await;
                }
                Err(e) => {
                    self.shared.errors.fetch_add(1, Ordering::Relaxed);
                    if tx.send(Err(e)).await.is_err() {
                        return;
                    }
                    // Wait for the application to move the reader before trying again.
                    match control.recv().await {
                        Some(c) => waiting = Some(c),
                        None => return,
                    }
                }
            }
        }
    }

    /// One fetch: `Ok(None)` when it returned nothing to deliver.
    async fn fetch_once(&mut self) -> Result<Option<Fetched>> {
        let cfg = &self.config;
        let (conn, leader) = self.cluster.leader(&cfg.topic, cfg.partition, Workload::Fetch).await?;
        let spot = Spot {
            topic: &cfg.topic,
            topic_id: self.cluster.topic(&cfg.topic).await?.id,
            partition: cfg.partition,
            leader_epoch: leader.leader_epoch,
            isolation: cfg.isolation,
        };
        self.shared.fetches.fetch_add(1, Ordering::Relaxed);
        let p = crate::fetch::fetch(&conn, &spot, self.offset, cfg.min_bytes, cfg.max_bytes, cfg.max_wait).await?;
        self.shared.high_watermark.store(p.high_watermark, Ordering::Relaxed);
        let Selected { messages, bytes, next } =
            crate::fetch::messages(&conn, &spot, &p, self.offset, &DecodeOptions::default())?;
        let moved = next > self.offset;
        self.offset = next;
        if messages.is_empty() {
            // Markers or aborted batches only: tell the reader its position moved.
            return Ok(moved.then(|| Fetched { generation: self.generation, messages, next, _permit: None, bytes: 0 }));
        }
        // Hold budget for what is buffered; wait here (pausing fetches) while the
        // application has not read enough.
        let permits = bytes.clamp(1, self.config.prefetch_bytes.clamp(1, Semaphore::MAX_PERMITS)) as u32;
        let permit = self.budget.clone().acquire_many_owned(permits).await.ok();
        self.shared.buffered.fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(Some(Fetched { generation: self.generation, messages, next, _permit: permit, bytes }))
    }
}
