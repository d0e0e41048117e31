//! Producing: the [`Writer`] and its [`Balancer`]s.

pub mod balancer;
pub(crate) mod produce;
mod writer;

pub use balancer::{Balancer, Crc32Balancer, Hash, LeastBytes, Murmur2Balancer, ReferenceHash, RoundRobin};
#[doc(hidden)]
pub use writer::bench_produce_path;
pub use writer::{
    Completion, Delivered, DeliveryFuture, WriteErrors, Writer, WriterConfig, WriterStats, DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_SIZE, DEFAULT_DELIVERY_TIMEOUT, DEFAULT_LINGER, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_PRODUCE_CONCURRENCY, DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_CAPACITY, DEFAULT_UNKNOWN_TOPIC_RETRIES,
};
