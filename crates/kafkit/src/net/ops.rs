//! kafka-go's cluster operations on a [`Conn`]: brokers, controller, partitions, topics.

use super::Conn;
use crate::error::{Error, Result};
use crate::message::{Broker, Partition, TopicConfig};
use kafkit_protocol::messages::{
    create_topics_request, delete_topics_request, metadata_request, metadata_response, CreateTopicsRequest,
    DeleteTopicsRequest, MetadataRequest, MetadataResponse,
};

impl Conn {
    /// Metadata for `topics` (all topics when `None`), never creating a topic as a side
    /// effect where the version lets kafkit say so (Metadata v4+,
    /// `allow_auto_topic_creation = false`).
    ///
    /// # Errors
    /// As [`Conn::request`]; the response's top-level error (v13+) as [`Error::Broker`].
    /// Per-topic error codes are left in the response.
    pub async fn metadata(&self, topics: Option<&[&str]>) -> Result<MetadataResponse> {
        let v = self.version_for::<MetadataRequest>()?;
        let list = match topics {
            Some(t) => Some(
                t.iter()
                    .map(|name| metadata_request::MetadataRequestTopic::default().with_name(Some((*name).to_string())))
                    .collect(),
            ),
            // v0 has no null: an empty list means all topics.
            None if v.0 == 0 => Some(Vec::new()),
            None => None,
        };
        let mut req = MetadataRequest::default().with_topics(list);
        if v.0 >= 4 {
            req = req.with_allow_auto_topic_creation(false);
        }
        let resp = self.request_version(&req, v).await?;
        self.check_metadata(resp)
    }

    /// The response's top-level error (Metadata v13+, such as REBOOTSTRAP_REQUIRED, KIP-1102).
    fn check_metadata(&self, resp: MetadataResponse) -> Result<MetadataResponse> {
        Error::check(resp.error_code, None, || format!("metadata from {}", self.addr()))?;
        Ok(resp)
    }

    /// Metadata for `topics`, asking the broker to create those that do not exist
    /// (Metadata v4+ `allow_auto_topic_creation`; the broker's `auto.create.topics.enable`
    /// must allow it; below v4 every Metadata request may create topics).
    ///
    /// # Errors
    /// As [`Conn::request`].
    pub async fn metadata_auto_create(&self, topics: &[&str]) -> Result<MetadataResponse> {
        let v = self.version_for::<MetadataRequest>()?;
        let list = topics
            .iter()
            .map(|name| metadata_request::MetadataRequestTopic::default().with_name(Some((*name).to_string())))
            .collect();
        let resp = self.request_version(&MetadataRequest::default().with_topics(Some(list)), v).await?;
        self.check_metadata(resp)
    }

    /// The brokers of the cluster (kafka-go `Conn.Brokers`).
    ///
    /// # Errors
    /// As [`Conn::request`].
    pub async fn brokers(&self) -> Result<Vec<Broker>> {
        let m = self.metadata(Some(&[])).await?;
        Ok(m.brokers.iter().map(broker_of).collect())
    }

    /// The controller broker (kafka-go `Conn.Controller`).
    ///
    /// # Errors
    /// As [`Conn::request`]; [`Error::Broker`] with `BROKER_NOT_AVAILABLE` when the metadata
    /// names no controller.
    pub async fn controller(&self) -> Result<Broker> {
        let m = self.metadata(Some(&[])).await?;
        m.brokers.iter().find(|b| b.node_id == m.controller_id).map(broker_of).ok_or_else(|| Error::Broker {
            code: kafkit_protocol::ErrorCode::BrokerNotAvailable,
            context: format!("controller {} of {}", m.controller_id, self.addr()),
            message: None,
        })
    }

    /// The partitions of `topics` (all topics when empty), kafka-go `Conn.ReadPartitions`.
    ///
    /// # Errors
    /// As [`Conn::request`]; a topic's error code (such as `UNKNOWN_TOPIC_OR_PARTITION`) as
    /// [`Error::Broker`].
    pub async fn read_partitions(&self, topics: &[&str]) -> Result<Vec<Partition>> {
        let m = self.metadata(if topics.is_empty() { None } else { Some(topics) }).await?;
        let brokers: Vec<Broker> = m.brokers.iter().map(broker_of).collect();
        let mut out = Vec::new();
        for t in &m.topics {
            let name = t.name.clone().unwrap_or_default();
            Error::check(t.error_code, None, || format!("metadata for topic {name} from {}", self.addr()))?;
            for p in &t.partitions {
                out.push(Partition {
                    topic: name.clone(),
                    id: p.partition_index,
                    leader: brokers.iter().find(|b| b.id == p.leader_id).cloned(),
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.clone(),
                    isr: p.isr_nodes.clone(),
                    offline_replicas: p.offline_replicas.clone(),
                });
            }
        }
        out.sort_by(|a, b| (&a.topic, a.id).cmp(&(&b.topic, b.id)));
        Ok(out)
    }

    /// Creates topics (kafka-go `Conn.CreateTopics`). The request goes to this connection's
    /// broker, which must be the controller on clusters that require it.
    ///
    /// # Errors
    /// As [`Conn::request`]; the first topic's error (such as `TOPIC_ALREADY_EXISTS`) as
    /// [`Error::Broker`] with the broker's message.
    pub async fn create_topics(&self, topics: &[TopicConfig]) -> Result<()> {
        let req = create_topics_request(topics, self.timeout_ms());
        let resp = self.request(&req).await?;
        for t in &resp.topics {
            Error::check(t.error_code, t.error_message.as_deref(), || {
                format!("creating topic {} on {}", t.name, self.addr())
            })?;
        }
        Ok(())
    }

    /// Deletes topics by name (kafka-go `Conn.DeleteTopics`).
    ///
    /// # Errors
    /// As [`Conn::request`]; the first topic's error as [`Error::Broker`].
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<()> {
        let resp = self.request(&delete_topics_request(self, topics)?).await?;
        for r in &resp.responses {
            let name = r.name.clone().unwrap_or_default();
            Error::check(r.error_code, r.error_message.as_deref(), || {
                format!("deleting topic {name} on {}", self.addr())
            })?;
        }
        Ok(())
    }

    /// The request timeout in whole milliseconds, for requests that carry their own timeout.
    pub(crate) fn timeout_ms(&self) -> i32 {
        self.request_timeout().as_millis().min(i32::MAX as u128) as i32
    }
}

/// The CreateTopics request for `topics` (without validate-only).
pub(crate) fn create_topics_request(topics: &[TopicConfig], timeout_ms: i32) -> CreateTopicsRequest {
    CreateTopicsRequest::default().with_timeout_ms(timeout_ms).with_topics(
        topics
            .iter()
            .map(|t| {
                let manual = !t.replica_assignment.is_empty();
                create_topics_request::CreatableTopic::default()
                    .with_name(t.topic.clone())
                    .with_num_partitions(if manual { -1 } else { t.num_partitions })
                    .with_replication_factor(if manual { -1 } else { t.replication_factor })
                    .with_assignments(
                        t.replica_assignment
                            .iter()
                            .map(|(p, brokers)| {
                                create_topics_request::CreatableReplicaAssignment::default()
                                    .with_partition_index(*p)
                                    .with_broker_ids(brokers.clone())
                            })
                            .collect(),
                    )
                    .with_configs(
                        t.configs
                            .iter()
                            .map(|(k, v)| {
                                create_topics_request::CreatableTopicConfig::default()
                                    .with_name(k.clone())
                                    .with_value(Some(v.clone()))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// The DeleteTopics request for `topics`, by name at the version `conn` uses.
pub(crate) fn delete_topics_request(conn: &Conn, topics: &[&str]) -> Result<DeleteTopicsRequest> {
    let v = conn.version_for::<DeleteTopicsRequest>()?;
    let req = DeleteTopicsRequest::default().with_timeout_ms(conn.timeout_ms());
    Ok(if v.0 >= 6 {
        req.with_topics(
            topics
                .iter()
                .map(|t| delete_topics_request::DeleteTopicState::default().with_name(Some((*t).to_string())))
                .collect(),
        )
    } else {
        req.with_topic_names(topics.iter().map(|t| (*t).to_string()).collect())
    })
}

/// A broker of a Metadata response.
pub(crate) fn broker_of(b: &metadata_response::MetadataResponseBroker) -> Broker {
    Broker { id: b.node_id, host: b.host.clone(), port: b.port, rack: b.rack.clone() }
}
