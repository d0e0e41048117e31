//! Produce requests at the version both sides speak: topics by name up to v12, by topic id
//! from v13 (KIP-516; the response names them by id too), and each partition's result.

use crate::error::{Error, Result};
use crate::net::Acks;
use bytes::Bytes;
use kafkit_protocol::messages::{produce_request, ProduceRequest, ProduceResponse};
use kafkit_protocol::{ApiVersion, ErrorCode, Uuid};

pub(crate) use crate::topic_ids::PRODUCE_BY_ID;

/// One Produce request, and what reading its answer needs.
pub(crate) struct ProduceCall {
    pub req: ProduceRequest,
    /// About the size of its frame (to size the buffer once).
    pub size: usize,
    pub version: ApiVersion,
    /// The request's topics by id (v13+), to name the response's topics.
    pub ids: Vec<(Uuid, String)>,
}

impl ProduceCall {
    /// Names the topics of a response to this request (v13+ responses carry only ids).
    pub fn name_topics(ids: &[(Uuid, String)], resp: &mut ProduceResponse) {
        for t in &mut resp.responses {
            if t.name.is_empty() {
                if let Some(name) = crate::topic_ids::name_of(ids, None, t.topic_id) {
                    t.name = name.to_string();
                }
            }
        }
    }
}

/// A Produce request at `version` carrying a batch per (topic, partition, encoded batch);
/// from v13 each topic goes by `id_of(topic)` (which the caller checked is known when it
/// chose the version).
pub(crate) fn produce_request<'a>(
    acks: Acks,
    timeout_ms: i32,
    version: ApiVersion,
    id_of: impl Fn(&str) -> Uuid,
    batches: impl Iterator<Item = (&'a str, i32, &'a Bytes)>,
) -> ProduceCall {
    let by_id = version.0 >= PRODUCE_BY_ID;
    let mut topics: Vec<(&str, produce_request::TopicProduceData)> = Vec::new();
    let mut ids = Vec::new();
    // The batches plus headers, topic names (or ids) and per-partition fields.
    let mut size = 256;
    for (topic, partition, encoded) in batches {
        size += encoded.len() + topic.len() + 32;
        let data =
            produce_request::PartitionProduceData::default().with_index(partition).with_records(Some(encoded.clone()));
        match topics.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, t)) => t.partition_data.push(data),
            None => {
                let t = produce_request::TopicProduceData::default().with_partition_data(vec![data]);
                let t = if by_id {
                    let id = id_of(topic);
                    ids.push((id, topic.to_string()));
                    t.with_topic_id(id)
                } else {
                    t.with_name(topic.to_string())
                };
                topics.push((topic, t));
            }
        }
    }
    let req = ProduceRequest::default()
        .with_acks(acks.code())
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topics.into_iter().map(|(_, t)| t).collect());
    ProduceCall { req, size, version, ids }
}

/// One partition's result in a Produce response (its topics named): its base offset, or its
/// error.
pub(crate) fn partition_result(resp: &ProduceResponse, topic: &str, partition: i32) -> Result<i64> {
    let pr = resp
        .responses
        .iter()
        .filter(|t| t.name == topic)
        .flat_map(|t| t.partition_responses.iter())
        .find(|r| r.index == partition)
        .ok_or_else(|| Error::Broker {
            code: ErrorCode::UnknownServerError,
            context: format!("produce response lacks {topic}/{partition}"),
            message: None,
        })?;
    match ErrorCode::from_code(pr.error_code) {
        ErrorCode::None => Ok(pr.base_offset),
        // Already written by an earlier try of this very batch.
        ErrorCode::DuplicateSequenceNumber => Ok(pr.base_offset),
        code => Err(Error::Broker {
            code,
            context: format!("producing to {topic}/{partition}"),
            message: pr.error_message.clone(),
        }),
    }
}

/// A batch's result in a Produce response: as [`partition_result`], with the base offset
/// checked against the batch's `count` records (from broker `addr`, named only on error).
///
/// # Errors
/// As [`partition_result`]; [`Error::Malformed`] for a base offset below -1, or one whose
/// batch's last offset would overflow an `i64`.
pub(crate) fn batch_result(
    resp: &ProduceResponse,
    topic: &str,
    partition: i32,
    count: usize,
    addr: impl FnOnce() -> String,
) -> Result<i64> {
    let base = partition_result(resp, topic, partition)?;
    let span = i64::try_from(count.saturating_sub(1)).unwrap_or(i64::MAX);
    if base == -1 || (base >= 0 && base.checked_add(span).is_some()) {
        return Ok(base);
    }
    Err(Error::Malformed {
        broker: addr(),
        what: format!("{topic}/{partition}: produce base offset {base} for a batch of {count} records"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_protocol::messages::produce_response;
    use kafkit_protocol::Message;

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    #[test]
    fn names_up_to_v12_and_ids_from_v13() {
        let b = Bytes::from_static(b"batch");
        let batches = [("a", 0, &b), ("b", 1, &b), ("a", 2, &b)];
        let ids = |t: &str| if t == "a" { id(1) } else { id(2) };
        let old = produce_request(Acks::All, 1000, ApiVersion(12), ids, batches.iter().copied());
        assert_eq!(old.req.topic_data.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(old.req.topic_data.iter().all(|t| t.topic_id.is_zero()) && old.ids.is_empty());
        assert_eq!(old.req.topic_data[0].partition_data.len(), 2);
        old.req.encode_to_bytes(ApiVersion(12)).unwrap();

        let new = produce_request(Acks::All, 1000, ApiVersion(13), ids, batches.iter().copied());
        assert_eq!(new.req.topic_data.iter().map(|t| t.topic_id).collect::<Vec<_>>(), [id(1), id(2)]);
        assert!(new.req.topic_data.iter().all(|t| t.name.is_empty()));
        // A v13 request refuses names (and a v12 one ids): nothing is dropped silently.
        new.req.encode_to_bytes(ApiVersion(13)).unwrap();
        assert!(new.req.encode_to_bytes(ApiVersion(12)).is_err());
        assert!(old.req.encode_to_bytes(ApiVersion(13)).is_err());

        let mut resp =
            ProduceResponse::default().with_responses(vec![produce_response::TopicProduceResponse::default()
                .with_topic_id(id(2))
                .with_partition_responses(vec![produce_response::PartitionProduceResponse::default()
                    .with_index(1)
                    .with_base_offset(42)])]);
        let mut bytes = resp.encode_to_bytes(ApiVersion(13)).unwrap();
        resp = ProduceResponse::decode(&mut bytes, ApiVersion(13)).unwrap();
        ProduceCall::name_topics(&new.ids, &mut resp);
        assert_eq!(partition_result(&resp, "b", 1).unwrap(), 42);
        assert!(partition_result(&resp, "a", 0).is_err());
    }
}
