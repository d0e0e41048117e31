//! Producing: the [`Writer`] and its [`Balancer`]s.

pub(crate) mod accumulator;
pub mod balancer;
mod config;
mod delivery;
pub(crate) mod produce;
mod sender;
mod stall;
mod txn;
mod writer;

#[doc(hidden)]
pub use accumulator::bench_produce_path;
pub use balancer::{Balancer, Crc32Balancer, Hash, LeastBytes, Murmur2Balancer, ReferenceHash, RoundRobin};
pub use config::{
    WriterConfig, DEFAULT_BATCH_BYTES, DEFAULT_BATCH_SIZE, DEFAULT_DELIVERY_TIMEOUT, DEFAULT_LINGER,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_PRODUCE_CONCURRENCY, DEFAULT_QUEUE_BYTES,
    DEFAULT_QUEUE_CAPACITY, DEFAULT_TRANSACTION_TIMEOUT, DEFAULT_UNKNOWN_TOPIC_RETRIES,
};
pub use delivery::{Completion, Delivered, DeliveryFuture, WriteErrors};
pub use txn::GroupMetadata;
pub use writer::{Writer, WriterStats};
