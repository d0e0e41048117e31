//! Producing: partition choice today; the `Writer` builds on it next.

pub mod balancer;

pub use balancer::{Balancer, Crc32Balancer, Hash, LeastBytes, Murmur2Balancer, ReferenceHash, RoundRobin};
