//! Consuming: the [`Reader`], in partition mode or as a consumer-group member, and the
//! group assignors.

mod assignor;
pub(crate) mod engine;
mod group;
mod offsets;
mod reader;

pub(crate) use assignor::group_by;
pub use assignor::{
    Assignments, Assignor, CooperativeStickyAssignor, GroupMember, RangeAssignor, RebalanceProtocol,
    RoundRobinAssignor, TopicPartition,
};
pub(crate) use group::assigned_partitions;
pub use group::{RebalanceEvent, RebalanceKind};
pub(crate) use offsets::{offset_fetch, CommitCall};
pub use reader::{
    CommitMode, OffsetReset, PartitionState, Reader, ReaderConfig, ReaderStats, StartOffset, DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_COMMIT_INTERVAL, DEFAULT_FETCH_CONCURRENCY, DEFAULT_FETCH_MAX_BYTES, DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_PARTITION_WATCH_INTERVAL, DEFAULT_PREFETCH_BYTES, DEFAULT_READER_MAX_BYTES, DEFAULT_READER_MAX_WAIT,
    DEFAULT_REBALANCE_TIMEOUT, DEFAULT_SESSION_TIMEOUT,
};
