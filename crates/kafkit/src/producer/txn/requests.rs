//! The transactional requests: FindCoordinator (key type transaction), InitProducerId with
//! the transactional id, AddPartitionsToTxn (batched, v1), AddOffsetsToTxn and EndTxn to the
//! transaction coordinator, TxnOffsetCommit to the group coordinator; each retried while
//! its error is retriable (a NOT_COORDINATOR finds the coordinator again), its other errors
//! sorted as [`super::classify`] does.

use super::{classify, Class, TxnShared};
use crate::cluster::{Cluster, CoordinatorType, Workload};
use crate::error::{Error, Result};
use crate::net::Conn;
use crate::producer::delivery::lock;
use crate::producer::sender::{PartKey, ProducerId};
use kafkit_protocol::messages::{
    add_partitions_to_txn_request, txn_offset_commit_request, AddOffsetsToTxnRequest, AddPartitionsToTxnRequest,
    ApiVersionsRequest, EndTxnRequest, InitProducerIdRequest, TxnOffsetCommitRequest,
};
use kafkit_protocol::{ApiVersion, ErrorCode};
use std::future::Future;
use std::time::{Duration, Instant};

/// The highest AddPartitionsToTxn a client sends: v4+ batch several transactional ids and
/// are for brokers only (KIP-890).
const ADD_PARTITIONS_CLIENT_MAX: i16 = 3;
/// EndTxn v5 (KIP-890) answers with the producer's new epoch.
pub(crate) const END_TXN_V2: i16 = 5;
/// Produce v12 is the first a transactions v2 producer sends (it adds partitions itself).
pub(crate) const PRODUCE_V2: i16 = 12;
/// TxnOffsetCommit v5 is the first that adds the group to a v2 transaction itself.
const TXN_OFFSET_COMMIT_V2: i16 = 5;
/// TxnOffsetCommit v6 names topics by id; names are what kafkit sends.
const TXN_OFFSET_COMMIT_MAX: i16 = 5;

/// A broker error, as [`Error::Broker`] for the retriable ones (so the loop retries them)
/// and as the transaction's error class otherwise.
pub(crate) fn txn_error(code: i16, message: Option<&str>, context: impl FnOnce() -> String) -> Result<()> {
    let code = ErrorCode::from_code(code);
    if code == ErrorCode::None {
        return Ok(());
    }
    let e = Error::Broker { code, context: context(), message: message.map(str::to_owned) };
    Err(match classify(code) {
        Class::Retriable => e,
        Class::Fatal => super::as_fatal(&e),
        Class::Abortable => Error::TransactionAbortable(e.to_string()),
    })
}

/// Runs `op` until it succeeds, fails with an error that is not retriable, or the
/// cluster's `retry_timeout` has passed. CONCURRENT_TRANSACTIONS (the coordinator is still
/// finishing the previous transaction) is retried after 5 ms, doubling to 80 ms; other
/// retriable errors after the cluster's backoff. A coordinator error or a lost connection
/// forgets the transaction coordinator, so the next try finds it again.
pub(crate) async fn retrying<T, F, Fut>(cluster: &Cluster, t: &TxnShared, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let config = cluster.config();
    let deadline = Instant::now() + config.retry_timeout;
    let mut attempt = 0u32;
    loop {
        let e = match op().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !e.is_retriable() {
            return Err(e);
        }
        let code = e.error_code();
        if matches!(code, Some(ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable) | None) {
            *lock(&t.coordinator) = None;
        }
        let wait = if code == Some(ErrorCode::ConcurrentTransactions) {
            Duration::from_millis(5 << attempt.min(4))
        } else {
            config.backoff.delay(attempt)
        };
        if Instant::now() + wait >= deadline {
            return Err(e);
        }
        tracing::debug!(attempt, error = %e, ?wait, "retrying a transactional request");
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// The transaction coordinator's connection (FindCoordinator with key type 1 the first
/// time, and after it moved).
pub(crate) async fn coordinator(cluster: &Cluster, t: &TxnShared) -> Result<Conn> {
    if let Some(c) = lock(&t.coordinator).as_ref().filter(|c| !c.is_closed()) {
        return Ok(c.clone());
    }
    let c = cluster.coordinator(&t.id, CoordinatorType::Transaction, Workload::Produce).await?;
    *lock(&t.coordinator) = Some(c.clone());
    Ok(c)
}

/// The `transaction.version` feature level `conn`'s broker has finalized (ApiVersions v3+
/// `FinalizedFeatures`; 0 when absent, as on Kafka 3.x).
pub(crate) async fn transaction_version(conn: &Conn) -> Result<i16> {
    let v = conn.version_for::<ApiVersionsRequest>()?;
    let req = ApiVersionsRequest::default()
        .with_client_software_name("kafkit".to_string())
        .with_client_software_version(env!("CARGO_PKG_VERSION").to_string());
    let resp = conn.request_version(&req, v).await?;
    Ok(resp.finalized_features.iter().find(|f| f.name == "transaction.version").map_or(0, |f| f.max_version_level))
}

/// InitProducerId with the transactional id (KIP-98): a producer id and a new epoch, which
/// fences any older producer with this transactional id and aborts its open transaction.
/// With `current`, bumps that producer's epoch instead (KIP-360, InitProducerId v3+).
pub(crate) async fn init_producer_id(
    cluster: &Cluster,
    t: &TxnShared,
    timeout: Duration,
    current: Option<ProducerId>,
) -> Result<ProducerId> {
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    retrying(cluster, t, || async {
        let conn = coordinator(cluster, t).await?;
        let v = conn.version_for::<InitProducerIdRequest>()?;
        let (id, epoch) = match current {
            Some(p) if v.0 >= 3 => (p.id, p.epoch),
            _ => (-1, -1),
        };
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(t.id.clone()))
            .with_transaction_timeout_ms(timeout_ms)
            .with_producer_id(id)
            .with_producer_epoch(epoch);
        let resp = conn.request_version(&req, v).await?;
        txn_error(resp.error_code, None, || {
            format!("InitProducerId for transactional id {} on {}", t.id, conn.addr())
        })?;
        Ok(ProducerId { id: resp.producer_id, epoch: resp.producer_epoch })
    })
    .await
}

/// AddPartitionsToTxn (v0-3) for `parts`, in one request.
pub(crate) async fn add_partitions(cluster: &Cluster, t: &TxnShared, pid: ProducerId, parts: &[PartKey]) -> Result<()> {
    let mut topics: Vec<add_partitions_to_txn_request::AddPartitionsToTxnTopic> = Vec::new();
    for (topic, p) in parts {
        match topics.iter_mut().find(|x| x.name == **topic) {
            Some(x) => x.partitions.push(*p),
            None => topics.push(
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic.to_string())
                    .with_partitions(vec![*p]),
            ),
        }
    }
    retrying(cluster, t, || async {
        let conn = coordinator(cluster, t).await?;
        let v = conn.version_for::<AddPartitionsToTxnRequest>()?;
        let v = ApiVersion(v.0.min(ADD_PARTITIONS_CLIENT_MAX));
        let req = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(t.id.clone())
            .with_v3_and_below_producer_id(pid.id)
            .with_v3_and_below_producer_epoch(pid.epoch)
            .with_v3_and_below_topics(topics.clone());
        let resp = conn.request_version(&req, v).await?;
        txn_error(resp.error_code, None, || format!("AddPartitionsToTxn on {}", conn.addr()))?;
        // The first real error; OPERATION_NOT_ATTEMPTED marks partitions skipped for it.
        let mut worst: Option<(String, i32, i16)> = None;
        for tr in &resp.results_by_topic_v3_and_below {
            for pr in &tr.results_by_partition {
                let code = pr.partition_error_code;
                if code != 0 && (worst.is_none() || ErrorCode::from_code(code) != ErrorCode::OperationNotAttempted) {
                    worst = Some((tr.name.clone(), pr.partition_index, code));
                }
            }
        }
        match worst {
            Some((topic, p, code)) => {
                txn_error(code, None, || format!("AddPartitionsToTxn of {topic}/{p} on {}", conn.addr()))
            }
            None => Ok(()),
        }
    })
    .await
}

/// AddOffsetsToTxn (v1): ties the group's offsets topic partition to the transaction.
pub(crate) async fn add_offsets(cluster: &Cluster, t: &TxnShared, pid: ProducerId, group: &str) -> Result<()> {
    retrying(cluster, t, || async {
        let conn = coordinator(cluster, t).await?;
        let req = AddOffsetsToTxnRequest::default()
            .with_transactional_id(t.id.clone())
            .with_producer_id(pid.id)
            .with_producer_epoch(pid.epoch)
            .with_group_id(group.to_string());
        let resp = conn.request(&req).await?;
        txn_error(resp.error_code, None, || format!("AddOffsetsToTxn for group {group} on {}", conn.addr()))
    })
    .await
}

/// TxnOffsetCommit (KIP-447: with the group's generation, member id and group instance id)
/// to the group coordinator; v5+ with transactions v2.
pub(crate) async fn txn_offset_commit(
    cluster: &Cluster,
    t: &TxnShared,
    pid: ProducerId,
    offsets: &[(crate::TopicPartition, i64)],
    group: &super::GroupMetadata,
    v2: bool,
) -> Result<()> {
    let mut topics: Vec<txn_offset_commit_request::TxnOffsetCommitRequestTopic> = Vec::new();
    for (tp, offset) in offsets {
        let part = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
            .with_partition_index(tp.partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(-1)
            .with_committed_metadata(Some(String::new()));
        match topics.iter_mut().find(|x| x.name == tp.topic) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(tp.topic.clone())
                    .with_partitions(vec![part]),
            ),
        }
    }
    retrying(cluster, t, || async {
        let conn = cluster.coordinator(&group.group_id, CoordinatorType::Group, Workload::Produce).await?;
        let v = conn.version_for::<TxnOffsetCommitRequest>()?;
        let v = ApiVersion(v.0.min(TXN_OFFSET_COMMIT_MAX));
        if v2 && v.0 < TXN_OFFSET_COMMIT_V2 {
            return Err(Error::Fatal(format!(
                "transactions v2 need TxnOffsetCommit v{TXN_OFFSET_COMMIT_V2}+; {} speaks v{}",
                conn.addr(),
                v.0
            )));
        }
        let v = if v2 { v } else { ApiVersion(v.0.min(TXN_OFFSET_COMMIT_V2 - 1)) };
        let req = TxnOffsetCommitRequest::default()
            .with_transactional_id(t.id.clone())
            .with_group_id(group.group_id.clone())
            .with_producer_id(pid.id)
            .with_producer_epoch(pid.epoch)
            .with_generation_id_or_member_epoch(group.generation_id)
            .with_member_id(group.member_id.clone())
            .with_group_instance_id(group.group_instance_id.clone())
            .with_topics(topics.clone());
        let resp = conn.request_version(&req, v).await?;
        for tr in &resp.topics {
            for pr in &tr.partitions {
                txn_error(pr.error_code, None, || {
                    format!(
                        "TxnOffsetCommit of {}/{} for group {} on {}",
                        tr.name,
                        pr.partition_index,
                        group.group_id,
                        conn.addr()
                    )
                })?;
            }
        }
        Ok(())
    })
    .await
}

/// EndTxn: commits or aborts the open transaction. With v5+ (transactions v2) the answer
/// carries the producer's new epoch.
pub(crate) async fn end_txn(
    cluster: &Cluster,
    t: &TxnShared,
    pid: ProducerId,
    commit: bool,
    v2: bool,
) -> Result<Option<ProducerId>> {
    retrying(cluster, t, || async {
        let conn = coordinator(cluster, t).await?;
        let v = conn.version_for::<EndTxnRequest>()?;
        let v = if v2 { v } else { ApiVersion(v.0.min(END_TXN_V2 - 1)) };
        let req = EndTxnRequest::default()
            .with_transactional_id(t.id.clone())
            .with_producer_id(pid.id)
            .with_producer_epoch(pid.epoch)
            .with_committed(commit);
        let resp = conn.request_version(&req, v).await?;
        let what = if commit { "commit" } else { "abort" };
        txn_error(resp.error_code, None, || {
            format!("EndTxn ({what}) for transactional id {} on {}", t.id, conn.addr())
        })?;
        Ok((v.0 >= END_TXN_V2 && resp.producer_id >= 0)
            .then_some(ProducerId { id: resp.producer_id, epoch: resp.producer_epoch }))
    })
    .await
}
