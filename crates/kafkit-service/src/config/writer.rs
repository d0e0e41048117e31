//! Settings of the [`kafkit::Writer`] (section `[writer]`), field by field.

use super::types::{AcksSetting, BalancerSetting, CompressionSetting, Size};
use kafkit::{Compression, WriterConfig};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Every setting of [`WriterConfig`] but the cluster (section `[cluster]`, shared) and the
/// completion callback (code only). Defaults are kafkit's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterSettings {
    /// The topic of every message; unset to take each message's own (kafka-go
    /// `Writer.Topic`). The service's writer needs none. Default unset.
    pub topic: Option<String>,
    /// Partition choice by name (see [`BalancerSetting`]). Default `round-robin`.
    pub balancer: BalancerSetting,
    /// Most messages per batch (kafka-go `BatchSize`). Default 100.
    pub batch_size: usize,
    /// Most bytes per batch, as encoded before compression (Java `batch.size`). Default 1 MiB.
    pub batch_bytes: Size,
    /// How long a message may wait for its batch to fill (Java `linger.ms`). Default 5 ms.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Acknowledgements (Java `acks`): `all`, `leader`, `none`. Default `all`.
    pub acks: AcksSetting,
    /// Batch compression (Java `compression.type`). Default `none`.
    pub compression: CompressionSetting,
    /// The idempotent producer (Java `enable.idempotence`). Default true.
    pub idempotent: bool,
    /// Most batches in flight per partition (Java
    /// `max.in.flight.requests.per.connection`). Default 5.
    pub max_in_flight: usize,
    /// Produce connections per partition leader. Default 2.
    pub produce_concurrency: usize,
    /// How long a message may wait, retries included, before it fails (Java
    /// `delivery.timeout.ms`). Default 120 s.
    #[serde(with = "humantime_serde")]
    pub delivery_timeout: Duration,
    /// Create missing topics through Metadata (kafka-go `AllowAutoTopicCreation`). Default
    /// false.
    pub allow_auto_topic_creation: bool,
    /// Lookups of a topic the metadata does not know yet before a write fails (franz-go
    /// `UnknownTopicRetries`). Default 4.
    pub unknown_topic_retries: u32,
    /// Most messages not yet acknowledged (librdkafka `queue.buffering.max.messages`).
    /// Default 100,000.
    pub queue_capacity: usize,
    /// Most record bytes not yet acknowledged (Java `buffer.memory`). Default 32 MiB.
    pub queue_bytes: Size,
    /// Most bytes of batches per Produce request (Java `max.request.size`). Default 1 MiB.
    pub max_request_bytes: Size,
}

impl Default for WriterSettings {
    fn default() -> Self {
        // Exhaustive: a field added to WriterConfig fails to compile here until mapped.
        let WriterConfig {
            cluster: _,
            topic,
            balancer: _,
            batch_size,
            batch_bytes,
            linger,
            acks,
            compression,
            idempotent,
            max_in_flight,
            produce_concurrency,
            delivery_timeout,
            allow_auto_topic_creation,
            unknown_topic_retries,
            queue_capacity,
            queue_bytes,
            max_request_bytes,
            completion: _,
            // The service's writer is shared by every request: never transactional.
            transactional_id: _,
            transaction_timeout: _,
        } = WriterConfig::default();
        WriterSettings {
            topic,
            balancer: BalancerSetting::RoundRobin,
            batch_size,
            batch_bytes: Size::bytes(batch_bytes as u64),
            linger,
            acks: AcksSetting(acks),
            compression: match compression {
                Compression::Gzip => CompressionSetting::Gzip,
                Compression::Snappy => CompressionSetting::Snappy,
                Compression::Lz4 => CompressionSetting::Lz4,
                Compression::Zstd => CompressionSetting::Zstd,
                _ => CompressionSetting::None,
            },
            idempotent,
            max_in_flight,
            produce_concurrency,
            delivery_timeout,
            allow_auto_topic_creation,
            unknown_topic_retries,
            queue_capacity,
            queue_bytes: Size::bytes(queue_bytes as u64),
            max_request_bytes: Size::bytes(max_request_bytes as u64),
        }
    }
}

impl WriterSettings {
    /// kafkit's [`WriterConfig`] on `cluster`. Every field is set here (no `..default()`): a
    /// field added to `WriterConfig` fails to compile until it is mapped.
    ///
    /// # Errors
    /// A size that does not fit, naming its key.
    pub fn to_config(&self, cluster: kafkit::ClusterConfig) -> Result<WriterConfig, String> {
        Ok(WriterConfig {
            cluster,
            topic: self.topic.clone(),
            balancer: self.balancer.build(),
            batch_size: self.batch_size,
            batch_bytes: self.batch_bytes.to_usize("writer.batch_bytes")?,
            linger: self.linger,
            acks: self.acks.0,
            compression: self.compression.into(),
            idempotent: self.idempotent,
            max_in_flight: self.max_in_flight,
            produce_concurrency: self.produce_concurrency,
            delivery_timeout: self.delivery_timeout,
            allow_auto_topic_creation: self.allow_auto_topic_creation,
            unknown_topic_retries: self.unknown_topic_retries,
            queue_capacity: self.queue_capacity,
            queue_bytes: self.queue_bytes.to_usize("writer.queue_bytes")?,
            max_request_bytes: self.max_request_bytes.to_usize("writer.max_request_bytes")?,
            completion: None,
            // Shared by every request, the service's writer is never transactional.
            transactional_id: None,
            transaction_timeout: kafkit::producer::DEFAULT_TRANSACTION_TIMEOUT,
        })
    }
}
