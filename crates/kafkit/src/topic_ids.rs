//! APIs that name topics by id from some version on (KIP-516): Fetch v13, Produce v13,
//! OffsetCommit v10, OffsetFetch v10. A request goes at the highest version
//! both sides speak when every topic in it has a known id, else at the last version that takes
//! names, as the Java client's `forTopicNames` builders do; the responses' topics are named
//! again from the ids the request was built with.

use crate::net::Conn;
use crate::{Error, Result};
use kafkit_protocol::{ApiVersion, ErrorCode, Request, Uuid};

/// The first versions that take topic ids instead of names.
pub(crate) const FETCH_BY_ID: i16 = 13;
pub(crate) const PRODUCE_BY_ID: i16 = 13;
pub(crate) const OFFSET_COMMIT_BY_ID: i16 = 10;
pub(crate) const OFFSET_FETCH_BY_ID: i16 = 10;

/// The version of `R` to send on `conn`: the negotiated one, or, when it names topics by id
/// (`first_by_id` on) and some topic's id is unknown (`ids_known` false), the last version
/// that names them. A broker that takes only ids then gets nothing: UNKNOWN_TOPIC_ID, which
/// is retriable and makes the caller refresh its metadata.
pub(crate) fn version_for_topics<R: Request>(conn: &Conn, first_by_id: i16, ids_known: bool) -> Result<ApiVersion> {
    let v = conn.version_for::<R>()?;
    let lowest = conn.broker_versions(R::API_KEY).map_or(i16::MAX, |b| b.min).max(R::STABLE_VERSIONS.min);
    if let Some(v) = pick(v, lowest, first_by_id, ids_known) {
        return Ok(v);
    }
    Err(Error::Broker {
        code: ErrorCode::UnknownTopicId,
        context: format!(
            "{} to {}: a topic has no known topic id, and the broker takes {} only by topic id (v{first_by_id}+)",
            R::API_KEY.name(),
            conn.addr(),
            R::API_KEY.name()
        ),
        message: None,
    })
}

/// The cluster's metadata, refreshed first for `topics` whose ids it lacks when `R` goes to
/// `conn` at a version that names topics by id (`first_by_id` on): a consumer may commit
/// for topics its snapshot has not listed yet. A failed refresh leaves the snapshot as it
/// was (the request then names the topics, at the last version taking names).
pub(crate) async fn metadata_with_ids<R: Request>(
    conn: &Conn,
    cluster: &crate::cluster::Cluster,
    first_by_id: i16,
    topics: &[&str],
) -> std::sync::Arc<crate::cluster::Metadata> {
    let meta = cluster.metadata();
    if conn.version_for::<R>().is_ok_and(|v| v.0 >= first_by_id) {
        let missing: Vec<&str> = topics.iter().copied().filter(|t| known_id(&meta, t).is_none()).collect();
        if !missing.is_empty() {
            return cluster.refresh_metadata(Some(&missing)).await.unwrap_or(meta);
        }
    }
    meta
}

/// The version to send: `negotiated` when it takes names or every id is known, else the last
/// version taking names if both sides still speak it (`lowest` is the lowest they share).
fn pick(negotiated: ApiVersion, lowest: i16, first_by_id: i16, ids_known: bool) -> Option<ApiVersion> {
    if negotiated.0 < first_by_id || ids_known {
        Some(negotiated)
    } else {
        (lowest < first_by_id).then_some(ApiVersion(first_by_id - 1))
    }
}

/// The known, non-zero topic id of `name` in the cluster's current metadata.
pub(crate) fn known_id(meta: &crate::cluster::Metadata, name: &str) -> Option<Uuid> {
    meta.topics.get(name).map(|t| t.id).filter(|id| !id.is_zero())
}

/// The name of the topic with `id` among `ids` (the request's topics), or else in `meta`.
pub(crate) fn name_of<'a>(
    ids: &'a [(Uuid, String)],
    meta: Option<&'a crate::cluster::Metadata>,
    id: Uuid,
) -> Option<&'a str> {
    ids.iter()
        .find(|(i, _)| *i == id)
        .map(|(_, n)| n.as_str())
        .or_else(|| meta?.topics.values().find(|t| t.id == id && !id.is_zero()).map(|t| t.name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_by_id_only_when_every_id_is_known() {
        // Kafka 4.4: Produce 0-13 advertised (3-13 served), kafkit 3-13.
        assert_eq!(pick(ApiVersion(13), 3, PRODUCE_BY_ID, true), Some(ApiVersion(13)));
        assert_eq!(pick(ApiVersion(13), 3, PRODUCE_BY_ID, false), Some(ApiVersion(12)));
        // Tansu (Produce 0-11): names either way.
        assert_eq!(pick(ApiVersion(11), 3, PRODUCE_BY_ID, false), Some(ApiVersion(11)));
        // A broker that takes topics only by id, and an id that is unknown: nothing to send.
        assert_eq!(pick(ApiVersion(14), 13, PRODUCE_BY_ID, false), None);
        assert_eq!(pick(ApiVersion(10), 2, OFFSET_COMMIT_BY_ID, false), Some(ApiVersion(9)));
        assert_eq!(pick(ApiVersion(18), 4, FETCH_BY_ID, false), Some(ApiVersion(12)));
    }
}
