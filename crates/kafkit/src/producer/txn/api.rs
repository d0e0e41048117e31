//! The Writer's transactional methods (the Java producer's `initTransactions`,
//! `beginTransaction`, `sendOffsetsToTransaction`, `commitTransaction`, `abortTransaction`).

use super::requests::{self, PRODUCE_V2};
use super::{abortable_again, name, State, TxnShared};
use crate::error::{Error, Result};
use crate::producer::delivery::lock;
use crate::producer::sender::ProducerId;
use crate::producer::writer::Writer;
use crate::TopicPartition;
use kafkit_protocol::messages::ProduceRequest;
use std::sync::Arc;

/// A consumer's group membership, for [`Writer::send_offsets_to_transaction`] (KIP-447; the
/// Java `ConsumerGroupMetadata`): the group coordinator refuses the offsets of a member
/// that is no longer in the group's current generation, so a zombie consumer cannot commit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupMetadata {
    /// The group id.
    pub group_id: String,
    /// The group's generation the member joined ([`Reader::generation`](crate::Reader::generation));
    /// -1 to skip the check (no generation known).
    pub generation_id: i32,
    /// The member id ([`Reader::member_id`](crate::Reader::member_id)); empty to skip the check.
    pub member_id: String,
    /// The static member's group instance id (KIP-345), if any.
    pub group_instance_id: Option<String>,
}

impl GroupMetadata {
    /// The metadata of member `member_id` of `group_id` in `generation_id`.
    pub fn new(group_id: impl Into<String>, generation_id: i32, member_id: impl Into<String>) -> Self {
        GroupMetadata { group_id: group_id.into(), generation_id, member_id: member_id.into(), group_instance_id: None }
    }
    /// Sets [`GroupMetadata::group_instance_id`].
    pub fn with_group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }
}

impl Writer {
    fn txn(&self) -> Result<&Arc<TxnShared>> {
        self.handle.0.txn.as_ref().ok_or_else(|| {
            Error::TransactionState("the writer has no transactional id (WriterConfig::with_transactional_id)".into())
        })
    }

    /// Whether this writer uses transactions v2 (KIP-890), decided by `init_transactions`.
    pub fn transactions_v2(&self) -> bool {
        self.handle.0.txn.as_ref().is_some_and(|t| lock(&t.inner).v2)
    }

    /// The producer id and epoch of a transactional writer, once initialized.
    pub fn producer_id_and_epoch(&self) -> Option<(i64, i16)> {
        let t = self.handle.0.txn.as_ref()?;
        let p = lock(&t.inner).producer?;
        Some((p.id, p.epoch))
    }

    /// Registers the transactional id with its transaction coordinator (FindCoordinator with
    /// key type transaction, then InitProducerId with the transactional id and
    /// [`WriterConfig::transaction_timeout`](crate::WriterConfig::transaction_timeout);
    /// Java `initTransactions`). This fences every older producer with the same
    /// transactional id ("zombie fencing"): its open transaction is aborted, and its next
    /// call fails with [`Error::ProducerFenced`]. Also decides between transactions v2
    /// (KIP-890: the coordinator's broker finalized `transaction.version` >= 2 and speaks
    /// Produce v12+ and EndTxn v5+, as Kafka 4.x does) and v1. Call once, before the first
    /// [`Writer::begin_transaction`].
    ///
    /// Retriable errors (COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS while the
    /// older producer's transaction is aborted, NOT_COORDINATOR...) are retried for the
    /// cluster's `retry_timeout`.
    ///
    /// # Cancellation
    /// Dropping the future leaves the writer uninitialized (call again); an InitProducerId
    /// already answered has fenced older producers all the same.
    ///
    /// # Errors
    /// [`Error::TransactionState`] without a transactional id or when already initialized;
    /// [`Error::Fatal`] for TRANSACTIONAL_ID_AUTHORIZATION_FAILED, INVALID_TRANSACTION_TIMEOUT
    /// (above the broker's `transaction.max.timeout.ms`) and the like; the last retriable
    /// error when the retries ran out.
    pub async fn init_transactions(&self) -> Result<()> {
        let t = self.txn()?.clone();
        let _call = t.calls.lock().await;
        match &lock(&t.inner).state {
            State::Uninitialized => {}
            State::Fatal(e) => return Err(e.dup()),
            s => return Err(Error::TransactionState(format!("init_transactions runs once; state {}", name(s)))),
        }
        let sh = &self.handle.0;
        let cluster = &sh.cluster;
        let pid = match requests::init_producer_id(cluster, &t, sh.config.transaction_timeout, None).await {
            Ok(p) => p,
            Err(e) => return Err(self.txn_failed(&t, e)),
        };
        // The coordinator may die or move right after InitProducerId: found again, retried.
        let found = requests::retrying(cluster, &t, || async {
            let conn = requests::coordinator(cluster, &t).await?;
            let level = requests::transaction_version(&conn).await?;
            Ok((conn, level))
        })
        .await;
        let (conn, level) = match found {
            Ok(f) => f,
            Err(e) => return Err(self.txn_failed(&t, e)),
        };
        let speaks = |key, v: i16| conn.broker_versions(key).is_some_and(|r| r.max >= v);
        let v2 = level >= 2
            && speaks(<ProduceRequest as kafkit_protocol::Request>::API_KEY, PRODUCE_V2)
            && speaks(kafkit_protocol::ApiKey::EndTxn, requests::END_TXN_V2);
        tracing::debug!(transactional_id = %t.id, producer_id = pid.id, epoch = pid.epoch, v2, "transactions initialized");
        let mut inner = lock(&t.inner);
        inner.v2 = v2;
        inner.producer = Some(pid);
        inner.producer_gen += 1;
        inner.state = State::Ready;
        Ok(())
    }

    /// Opens a transaction (Java `beginTransaction`): the writes until the next
    /// [`Writer::commit_transaction`] or [`Writer::abort_transaction`] are in it. Local: sends
    /// nothing (partitions join the transaction as their first batch goes).
    ///
    /// # Errors
    /// [`Error::TransactionState`] unless initialized with no transaction open; the stored
    /// [`Error::ProducerFenced`] or [`Error::Fatal`] after a fatal error.
    pub async fn begin_transaction(&self) -> Result<()> {
        let t = self.txn()?.clone();
        let _call = t.calls.lock().await;
        let mut inner = lock(&t.inner);
        match &inner.state {
            State::Ready => {}
            State::Fatal(e) => return Err(e.dup()),
            s => {
                return Err(Error::TransactionState(format!(
                    "begin_transaction needs no open transaction; state {}",
                    name(s)
                )))
            }
        }
        inner.state = State::InTransaction;
        inner.partitions.clear();
        inner.started = false;
        inner.needs_bump = false;
        Ok(())
    }

    /// Commits a consumer's offsets in the open transaction (KIP-447; Java
    /// `sendOffsetsToTransaction`): they take effect only if the transaction commits.
    /// `offsets` are the next offsets to consume (the last record processed plus one) per
    /// partition. With v1, AddOffsetsToTxn to the transaction coordinator first; then
    /// TxnOffsetCommit to the group's coordinator with `group`'s generation, member id and
    /// group instance id.
    ///
    /// # Cancellation
    /// Dropping the future leaves the transaction open, with the offsets in it or not: call
    /// again (a second TxnOffsetCommit overwrites the first) or abort.
    ///
    /// # Errors
    /// [`Error::TransactionState`] with no open transaction; [`Error::TransactionAbortable`]
    /// when the group refused (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID after
    /// a rebalance, GROUP_AUTHORIZATION_FAILED): abort; [`Error::ProducerFenced`],
    /// [`Error::Fatal`].
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, i64)],
        group: &GroupMetadata,
    ) -> Result<()> {
        let t = self.txn()?.clone();
        let _call = t.calls.lock().await;
        let (pid, v2) = {
            let inner = lock(&t.inner);
            match &inner.state {
                State::InTransaction => {}
                State::Abortable(e) => return Err(abortable_again(e)),
                State::Fatal(e) => return Err(e.dup()),
                s => {
                    return Err(Error::TransactionState(format!(
                        "send_offsets_to_transaction needs an open transaction; state {}",
                        name(s)
                    )))
                }
            }
            (inner.producer.ok_or(Error::Closed)?, inner.v2)
        };
        if offsets.is_empty() {
            return Ok(());
        }
        let cluster = &self.handle.0.cluster;
        if !v2 {
            if let Err(e) = requests::add_offsets(cluster, &t, pid, &group.group_id).await {
                return Err(self.txn_failed(&t, e));
            }
        }
        lock(&t.inner).started = true;
        if let Err(e) = requests::txn_offset_commit(cluster, &t, pid, offsets, group, v2).await {
            return Err(self.txn_failed(&t, e));
        }
        Ok(())
    }

    /// Commits the open transaction (Java `commitTransaction`): flushes every write, then
    /// EndTxn(commit) to the transaction coordinator. Returns only once the coordinator has
    /// accepted the commit: the records and offsets become visible to read_committed
    /// consumers as the markers land. With transactions v2 the epoch is bumped (the new one
    /// comes back in EndTxn v5).
    ///
    /// Fails, never reporting success, if any record of the transaction failed or the
    /// broker aborted the transaction (it passed
    /// [`WriterConfig::transaction_timeout`](crate::WriterConfig::transaction_timeout), or a
    /// newer producer fenced this one).
    ///
    /// # Cancellation
    /// Dropping the future leaves the writer committing (writes are refused): call
    /// `commit_transaction` again to finish, or learn the outcome (EndTxn is resent; the
    /// coordinator answers a repeat of the same commit with success), or abort.
    ///
    /// # Errors
    /// [`Error::TransactionAbortable`] when a record failed (abort, then try again);
    /// [`Error::ProducerFenced`]; [`Error::Fatal`]; [`Error::TransactionState`] with no open
    /// transaction; the last retriable error when retries ran out (the writer stays
    /// committing: call again).
    pub async fn commit_transaction(&self) -> Result<()> {
        let t = self.txn()?.clone();
        let _call = t.calls.lock().await;
        {
            let mut inner = lock(&t.inner);
            match &inner.state {
                State::InTransaction | State::Committing => {}
                State::Abortable(e) => return Err(abortable_again(e)),
                State::Fatal(e) => return Err(e.dup()),
                s => {
                    return Err(Error::TransactionState(format!(
                        "commit_transaction needs an open transaction; state {}",
                        name(s)
                    )))
                }
            }
            // Writes are refused from here on.
            inner.state = State::Committing;
        }
        self.flush().await?;
        let (pid, v2, started) = {
            let mut inner = lock(&t.inner);
            match &inner.state {
                State::InTransaction | State::Committing => {}
                // A record failed while flushing.
                State::Abortable(e) => return Err(e.dup()),
                State::Fatal(e) => return Err(e.dup()),
                s => return Err(Error::TransactionState(format!("state {}", name(s)))),
            }
            inner.state = State::Committing;
            (inner.producer.ok_or(Error::Closed)?, inner.v2, inner.started)
        };
        self.end_txn(&t, pid, true, v2, started).await
    }

    /// Aborts the open transaction (Java `abortTransaction`): waits for the writes already
    /// made (those not sent yet fail at once with [`Error::TransactionAbortable`]), then
    /// EndTxn(abort). Its records stay invisible to read_committed consumers and its offsets
    /// are dropped. After an abortable error this is the way on; v1 then takes a new epoch
    /// (InitProducerId with the current producer id, KIP-360) when a batch failed.
    ///
    /// # Cancellation
    /// Dropping the future leaves the writer aborting: call `abort_transaction` again.
    ///
    /// # Errors
    /// [`Error::ProducerFenced`], [`Error::Fatal`]; [`Error::TransactionState`] with no open
    /// transaction; the last retriable error when retries ran out (call again).
    pub async fn abort_transaction(&self) -> Result<()> {
        let t = self.txn()?.clone();
        let _call = t.calls.lock().await;
        {
            let mut inner = lock(&t.inner);
            match &inner.state {
                State::InTransaction | State::Committing | State::Abortable(_) | State::Aborting => {}
                State::Fatal(e) => return Err(e.dup()),
                s => {
                    return Err(Error::TransactionState(format!(
                        "abort_transaction needs an open transaction; state {}",
                        name(s)
                    )))
                }
            }
            // New batches fail at once from here (the task sees an aborting state).
            if let State::InTransaction | State::Committing = inner.state {
                inner.state = State::Abortable(Error::TransactionAbortable("the transaction is being aborted".into()));
            }
        }
        self.flush().await?;
        let (pid, v2, started, bump) = {
            let mut inner = lock(&t.inner);
            if let State::Fatal(e) = &inner.state {
                return Err(e.dup());
            }
            inner.state = State::Aborting;
            (inner.producer.ok_or(Error::Closed)?, inner.v2, inner.started, inner.needs_bump)
        };
        self.end_txn(&t, pid, false, v2, started).await?;
        let sh = &self.handle.0;
        if bump && !v2 {
            match requests::init_producer_id(&sh.cluster, &t, sh.config.transaction_timeout, Some(pid)).await {
                Ok(p) => {
                    let mut inner = lock(&t.inner);
                    inner.producer = Some(p);
                    inner.producer_gen += 1;
                }
                Err(e) => return Err(self.txn_failed(&t, e)),
            }
        }
        Ok(())
    }

    /// Ends the transaction: EndTxn(commit or abort) when it reached the coordinator
    /// (`started`), else straight back to ready.
    async fn end_txn(&self, t: &TxnShared, pid: ProducerId, commit: bool, v2: bool, started: bool) -> Result<()> {
        if !started {
            lock(&t.inner).state = State::Ready;
            return Ok(());
        }
        match requests::end_txn(&self.handle.0.cluster, t, pid, commit, v2).await {
            Ok(next) => {
                self.txn_ended(t, next);
                Ok(())
            }
            Err(e) => Err(self.txn_failed(t, e)),
        }
    }

    /// The transaction ended: back to ready, with the new epoch EndTxn v5 gave.
    fn txn_ended(&self, t: &TxnShared, next: Option<ProducerId>) {
        let mut inner = lock(&t.inner);
        inner.state = State::Ready;
        inner.partitions.clear();
        inner.started = false;
        inner.needs_bump = false;
        if let Some(p) = next {
            inner.producer = Some(p);
            inner.producer_gen += 1;
        }
        drop(inner);
        // The task takes the new epoch before its next batch.
        self.handle.0.wake.notify_one();
    }

    /// A transactional request failed with `e`: a fatal error makes the writer unusable (new
    /// writes fail too); an abortable one leaves the transaction to abort. Returns the error
    /// for the caller.
    fn txn_failed(&self, t: &TxnShared, e: Error) -> Error {
        let mut inner = lock(&t.inner);
        match super::classify_error(&e) {
            super::Class::Fatal => {
                let f = super::as_fatal(&e);
                inner.state = State::Fatal(f.dup());
                drop(inner);
                lock(&self.handle.0.acc).fatal = Some(f.to_string());
                f
            }
            super::Class::Abortable => {
                let a = match e {
                    Error::TransactionAbortable(_) => e,
                    e => Error::TransactionAbortable(e.to_string()),
                };
                if !matches!(inner.state, State::Uninitialized | State::Ready) {
                    inner.state = State::Abortable(a.dup());
                }
                a
            }
            // Retries ran out: the state stays (committing or aborting: call again).
            super::Class::Retriable => e,
        }
    }
}
