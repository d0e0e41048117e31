//! Consuming: the partition [`Reader`]; consumer groups build on it next.

mod reader;

pub use reader::{
    OffsetReset, Reader, ReaderConfig, ReaderStats, StartOffset, DEFAULT_PREFETCH_BYTES, DEFAULT_READER_MAX_BYTES,
    DEFAULT_READER_MAX_WAIT,
};
