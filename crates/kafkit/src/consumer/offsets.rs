//! OffsetCommit and OffsetFetch at the version both sides speak: topics by name up to v9, by
//! topic id from v10 (KIP-848, KIP-516) when every topic's id is known (else at v9, as the
//! Java client's `forTopicNames` builders), the responses' topics named again.

use super::assignor::{group_by, TopicPartition};
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::net::Conn;
use crate::topic_ids::{
    known_id, metadata_with_ids, name_of, version_for_topics, OFFSET_COMMIT_BY_ID, OFFSET_FETCH_BY_ID,
};
use kafkit_protocol::messages::{
    offset_commit_request, offset_fetch_request, OffsetCommitRequest, OffsetCommitResponse,
};
use kafkit_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};
use kafkit_protocol::{ApiVersion, Uuid};
use std::collections::BTreeMap;

/// An OffsetCommit request for `offsets` (partition, offset) of `group`, and its version;
/// the caller adds the member fields the version carries.
pub(crate) struct CommitCall {
    pub req: OffsetCommitRequest,
    pub version: ApiVersion,
    ids: Vec<(Uuid, String)>,
}

impl CommitCall {
    pub async fn new<'a>(
        conn: &Conn,
        cluster: &Cluster,
        group: &str,
        offsets: impl IntoIterator<Item = (&'a TopicPartition, i64)>,
    ) -> Result<CommitCall> {
        let by_topic = group_by(offsets.into_iter().map(|(tp, off)| {
            let p = offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(off);
            (tp.topic.as_str(), p)
        }));
        let names: Vec<&str> = by_topic.keys().copied().collect();
        let meta = &*metadata_with_ids::<OffsetCommitRequest>(conn, cluster, OFFSET_COMMIT_BY_ID, &names).await;
        let ids_known = by_topic.keys().all(|t| known_id(meta, t).is_some());
        let version = version_for_topics::<OffsetCommitRequest>(conn, OFFSET_COMMIT_BY_ID, ids_known)?;
        let mut ids = Vec::new();
        let topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                let topic = offset_commit_request::OffsetCommitRequestTopic::default().with_partitions(ps);
                if version.0 >= OFFSET_COMMIT_BY_ID {
                    let id = known_id(meta, t).unwrap_or(Uuid::ZERO);
                    ids.push((id, t.to_string()));
                    topic.with_topic_id(id)
                } else {
                    topic.with_name(t.to_string())
                }
            })
            .collect();
        Ok(CommitCall {
            req: OffsetCommitRequest::default().with_group_id(group.to_string()).with_topics(topics),
            version,
            ids,
        })
    }

    /// Sends the request and returns each partition's error code.
    pub async fn send(self, conn: &Conn) -> Result<Vec<(TopicPartition, i16)>> {
        let resp: OffsetCommitResponse = conn.request_version(&self.req, self.version).await?;
        let mut out = Vec::new();
        for t in resp.topics {
            let name = if t.name.is_empty() { name_of(&self.ids, None, t.topic_id) } else { Some(t.name.as_str()) };
            let name = name.map(str::to_string).unwrap_or_else(|| format!("(topic id {})", t.topic_id));
            for p in t.partitions {
                out.push((TopicPartition::new(name.clone(), p.partition_index), p.error_code));
            }
        }
        Ok(out)
    }
}

/// OffsetFetch of a group's committed offsets: of `parts`, or of every partition when
/// `None` (v2+; then by name, v9 at most, as topics the metadata does not know may come
/// back). Returns offset and metadata per partition (-1 where nothing is committed).
pub(crate) async fn offset_fetch(
    conn: &Conn,
    cluster: &Cluster,
    group: &str,
    parts: Option<&[TopicPartition]>,
    require_stable: bool,
) -> Result<BTreeMap<TopicPartition, (i64, Option<String>)>> {
    let by_topic = parts.map(|ps| group_by(ps.iter().map(|tp| (tp.topic.as_str(), tp.partition))));
    let names: Vec<&str> = by_topic.iter().flat_map(|m| m.keys().copied()).collect();
    let meta = &*metadata_with_ids::<OffsetFetchRequest>(conn, cluster, OFFSET_FETCH_BY_ID, &names).await;
    let ids_known = by_topic.as_ref().is_some_and(|m| m.keys().all(|t| known_id(meta, t).is_some()));
    let v = version_for_topics::<OffsetFetchRequest>(conn, OFFSET_FETCH_BY_ID, ids_known)?;
    let mut ids = Vec::new();
    let mut req = OffsetFetchRequest::default();
    if v.0 >= 8 {
        let topics = by_topic.map(|m| {
            m.into_iter()
                .map(|(t, ps)| {
                    let topic = offset_fetch_request::OffsetFetchRequestTopics::default().with_partition_indexes(ps);
                    if v.0 >= OFFSET_FETCH_BY_ID {
                        let id = known_id(meta, t).unwrap_or(Uuid::ZERO);
                        ids.push((id, t.to_string()));
                        topic.with_topic_id(id)
                    } else {
                        topic.with_name(t.to_string())
                    }
                })
                .collect()
        });
        req = req.with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(group.to_string())
            .with_topics(topics)]);
    } else {
        let topics = by_topic.map(|m| {
            m.into_iter()
                .map(|(t, ps)| {
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(t.to_string())
                        .with_partition_indexes(ps)
                })
                .collect()
        });
        req = req.with_group_id(group.to_string()).with_topics(topics);
    }
    if v.0 >= 7 && require_stable {
        req = req.with_require_stable(true);
    }
    let resp: OffsetFetchResponse = conn.request_version(&req, v).await?;
    let context = || format!("fetching committed offsets of group {group} at {}", conn.addr());
    let mut out = BTreeMap::new();
    if v.0 >= 8 {
        for g in &resp.groups {
            Error::check(g.error_code, None, context)?;
            for t in &g.topics {
                let name =
                    if t.name.is_empty() { name_of(&ids, Some(meta), t.topic_id) } else { Some(t.name.as_str()) };
                let Some(name) = name else {
                    return Err(Error::Malformed {
                        broker: conn.addr().to_string(),
                        what: format!(
                            "the committed offsets of group {group} name topic id {}, which was not asked for",
                            t.topic_id
                        ),
                    });
                };
                for p in &t.partitions {
                    let context = || {
                        format!(
                            "fetching the committed offset of {name}/{} for group {group} at {}",
                            p.partition_index,
                            conn.addr()
                        )
                    };
                    Error::check(p.error_code, None, context)?;
                    out.insert(
                        TopicPartition::new(name.to_string(), p.partition_index),
                        (p.committed_offset, p.metadata.clone()),
                    );
                }
            }
        }
    } else {
        Error::check(resp.error_code, None, context)?;
        for t in &resp.topics {
            for p in &t.partitions {
                let context = || {
                    format!(
                        "fetching the committed offset of {}/{} for group {group} at {}",
                        t.name,
                        p.partition_index,
                        conn.addr()
                    )
                };
                Error::check(p.error_code, None, context)?;
                out.insert(
                    TopicPartition::new(t.name.clone(), p.partition_index),
                    (p.committed_offset, p.metadata.clone()),
                );
            }
        }
    }
    Ok(out)
}
