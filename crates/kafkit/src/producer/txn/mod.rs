//! Transactions (KIP-98, KIP-447, KIP-890): the transactional producer's state machine, the
//! writer task's part in it, the requests to the transaction and group coordinators
//! ([`requests`]) and the Writer's public methods ([`api`]).
//!
//! States, as the Java client's `TransactionManager`:
//!
//! ```text
//! Uninitialized --init_transactions--> Ready --begin_transaction--> InTransaction
//! InTransaction --commit_transaction--> Committing --EndTxn(commit) ok--> Ready
//! InTransaction | Abortable --abort_transaction--> Aborting --EndTxn(abort) ok--> Ready
//! InTransaction --a record or request failed (abortable)--> Abortable
//! any --PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, TRANSACTIONAL_ID_AUTHORIZATION_FAILED...--> Fatal
//! ```
//!
//! The writer task reads the producer id and epoch from here (a new epoch — after
//! InitProducerId, or at every EndTxn with transactions v2 — restarts every partition's
//! sequence at 0), adds partitions to the transaction with AddPartitionsToTxn before their
//! first Produce (v1; with v2 the Produce v12+ request adds them), sets the transactional
//! attribute on each batch and the transactional id on each Produce request, and reports
//! every failed batch here: the transaction then can only be aborted.

pub(crate) mod api;
pub(crate) mod requests;

use super::delivery::lock;
use super::sender::{Engine, PartKey, ProducerId};
use crate::error::Error;
use crate::net::Conn;
use kafkit_protocol::ErrorCode;
use std::collections::HashSet;
use std::sync::Mutex;

pub use api::GroupMetadata;

/// Where a transactional producer is (the Java `TransactionManager.State`).
#[derive(Debug)]
pub(crate) enum State {
    /// `init_transactions` has not succeeded yet.
    Uninitialized,
    /// No transaction is open.
    Ready,
    /// A transaction is open: writes and `send_offsets_to_transaction` go into it.
    InTransaction,
    /// EndTxn(commit) was or is being sent; only `commit_transaction` may go on.
    Committing,
    /// EndTxn(abort) was or is being sent; only `abort_transaction` may go on.
    Aborting,
    /// The open transaction must be aborted (its cause).
    Abortable(Error),
    /// The Writer cannot go on (its cause).
    Fatal(Error),
}

/// The transactional state shared by the Writer's calls and its task.
pub(crate) struct TxnShared {
    pub(crate) id: String,
    pub(crate) inner: Mutex<TxnInner>,
    /// Serializes the transactional calls (each waits for the one before).
    pub(crate) calls: tokio::sync::Mutex<()>,
    /// The transaction coordinator's connection, once found.
    pub(crate) coordinator: Mutex<Option<Conn>>,
}

pub(crate) struct TxnInner {
    pub(crate) state: State,
    pub(crate) producer: Option<ProducerId>,
    /// Bumped whenever `producer` changes; the writer task restarts sequences on a change.
    pub(crate) producer_gen: u64,
    /// Transactions v2 (KIP-890): the brokers finalized `transaction.version` >= 2.
    pub(crate) v2: bool,
    /// Partitions in the open transaction (added with AddPartitionsToTxn, or produced to
    /// with v2).
    pub(crate) partitions: HashSet<PartKey>,
    /// The coordinator knows of the open transaction (a partition or offsets were added).
    pub(crate) started: bool,
    /// A batch of the open transaction failed: its sequence has a gap, so v1 needs a new
    /// epoch (InitProducerId with the current producer id, KIP-360) after the abort.
    pub(crate) needs_bump: bool,
}

impl TxnShared {
    pub(crate) fn new(id: String) -> TxnShared {
        TxnShared {
            id,
            inner: Mutex::new(TxnInner {
                state: State::Uninitialized,
                producer: None,
                producer_gen: 0,
                v2: false,
                partitions: HashSet::new(),
                started: false,
                needs_bump: false,
            }),
            calls: tokio::sync::Mutex::new(()),
            coordinator: Mutex::new(None),
        }
    }

    /// Whether a write may go into the open transaction now.
    pub(crate) fn check_write(&self) -> crate::Result<()> {
        match &lock(&self.inner).state {
            State::InTransaction => Ok(()),
            State::Abortable(e) => Err(abortable_again(e)),
            State::Fatal(e) => Err(e.dup()),
            s => Err(Error::TransactionState(format!(
                "a write needs an open transaction (begin_transaction); state {}",
                name(s)
            ))),
        }
    }

    /// A batch or request of the open transaction failed with `e`: the transaction can
    /// only be aborted now, or the Writer is done.
    pub(crate) fn fail(&self, e: &Error) {
        let mut inner = lock(&self.inner);
        inner.needs_bump = true;
        let class = classify_error(e);
        match (&inner.state, class) {
            (State::Fatal(_), _) => {}
            (_, Class::Fatal) => inner.state = State::Fatal(as_fatal(e)),
            // Aborting already: the abort goes on.
            (State::Aborting, _) => {}
            (State::InTransaction | State::Committing, _) => {
                inner.state =
                    State::Abortable(Error::TransactionAbortable(format!("a record of the transaction failed: {e}")))
            }
            _ => {}
        }
    }
}

/// How the Java client sorts an error of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Retried inside the call.
    Retriable,
    /// The transaction must be aborted.
    Abortable,
    /// The Writer cannot go on.
    Fatal,
}

/// Sorts a broker error code as the Java client's transaction manager does.
pub(crate) fn classify(code: ErrorCode) -> Class {
    match code {
        ErrorCode::ProducerFenced
        | ErrorCode::InvalidProducerEpoch
        | ErrorCode::TransactionalIdAuthorizationFailed
        | ErrorCode::ClusterAuthorizationFailed
        | ErrorCode::InvalidTransactionTimeout
        | ErrorCode::TransactionalIdNotFound
        | ErrorCode::UnsupportedVersion
        | ErrorCode::UnsupportedForMessageFormat
        | ErrorCode::InvalidTxnState => Class::Fatal,
        c if c.is_retriable() => Class::Retriable,
        _ => Class::Abortable,
    }
}

pub(crate) fn classify_error(e: &Error) -> Class {
    match e {
        Error::ProducerFenced(_) | Error::Fatal(_) => Class::Fatal,
        Error::Broker { code, .. } => classify(*code),
        e if e.is_retriable() => Class::Retriable,
        _ => Class::Abortable,
    }
}

/// `e` as the fatal error the Writer keeps.
pub(crate) fn as_fatal(e: &Error) -> Error {
    match e {
        Error::ProducerFenced(_) | Error::Fatal(_) => e.dup(),
        Error::Broker { code: ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch, .. } => {
            Error::ProducerFenced(format!("{e} (a newer producer with the same transactional id took over)"))
        }
        e => Error::Fatal(e.to_string()),
    }
}

/// The stored abortable error, for a call that must abort first.
fn abortable_again(e: &Error) -> Error {
    match e {
        Error::TransactionAbortable(s) => Error::TransactionAbortable(format!("{s}; abort_transaction first")),
        e => Error::TransactionAbortable(format!("{e}; abort_transaction first")),
    }
}

pub(crate) fn name(s: &State) -> &'static str {
    match s {
        State::Uninitialized => "uninitialized (init_transactions first)",
        State::Ready => "ready (no open transaction)",
        State::InTransaction => "in a transaction",
        State::Committing => "committing",
        State::Aborting => "aborting",
        State::Abortable(_) => "abortable error",
        State::Fatal(_) => "fatal error",
    }
}

/// The writer task's side of transactions.
impl Engine {
    /// Takes a new producer id or epoch once nothing is in flight: every partition's
    /// sequence starts again at 0. `take_ready` calls it with the accumulator locked.
    pub(crate) fn txn_sync(&mut self) {
        let Some(t) = self.shared.txn.as_ref() else { return };
        let (gen, producer) = {
            let inner = lock(&t.inner);
            (inner.producer_gen, inner.producer)
        };
        if gen == self.txn_gen || self.parts.values().any(|p| !p.batches.is_empty()) {
            return;
        }
        self.producer = producer;
        for p in self.parts.values_mut() {
            p.next_sequence = 0;
            p.confirmed = false;
        }
        self.txn_gen = gen;
    }

    /// Before a Produce: the partitions new to the open transaction, to add first (v1), or
    /// the error every batch of this round fails with (the transaction must be aborted, or
    /// the Writer is fenced). With v2, partitions are only noted (Produce v12+ adds them).
    pub(crate) fn txn_new_partitions(&self, keys: &[PartKey]) -> Result<Vec<PartKey>, Error> {
        let Some(t) = self.shared.txn.as_ref() else { return Ok(Vec::new()) };
        let mut inner = lock(&t.inner);
        match &inner.state {
            State::Abortable(e) => return Err(abortable_again(e)),
            State::Fatal(e) => return Err(e.dup()),
            State::InTransaction | State::Committing => {}
            s => {
                return Err(Error::TransactionState(format!(
                    "a write raced with the end of its transaction; state {}",
                    name(s)
                )))
            }
        }
        let mut new = Vec::new();
        for k in keys {
            if !inner.partitions.contains(k) && !new.contains(k) {
                new.push(k.clone());
            }
        }
        if inner.v2 {
            for k in &new {
                inner.partitions.insert(k.clone());
            }
            if !new.is_empty() {
                inner.started = true;
            }
            return Ok(Vec::new());
        }
        Ok(new)
    }

    /// Adds `new` partitions to the open transaction (AddPartitionsToTxn, v1).
    pub(crate) async fn txn_add_partitions(&self, new: Vec<PartKey>) -> Result<(), Error> {
        let Some(t) = self.shared.txn.clone() else { return Ok(()) };
        if new.is_empty() {
            return Ok(());
        }
        let producer = lock(&t.inner).producer;
        let Some(pid) = producer else {
            return Err(Error::TransactionState("no producer id (init_transactions first)".into()));
        };
        match requests::add_partitions(&self.shared.cluster, &t, pid, &new).await {
            Ok(()) => {
                let mut inner = lock(&t.inner);
                inner.started = true;
                inner.partitions.extend(new);
                Ok(())
            }
            Err(e) => {
                t.fail(&e);
                Err(e)
            }
        }
    }
}

/// The wait before a batch's resend. A transactional producer's first Produce after an
/// EndTxn may briefly meet CONCURRENT_TRANSACTIONS or NOT_ENOUGH_REPLICAS while the markers
/// are written: those are retried after 5 ms, doubling to 40 ms, not the cluster's backoff,
/// or every small transaction would wait 100 ms.
pub(crate) fn produce_backoff(
    transactional: bool,
    code: Option<ErrorCode>,
    backoff: crate::cluster::Backoff,
    attempts: u32,
) -> std::time::Duration {
    let attempt = attempts.saturating_sub(1);
    match code {
        Some(ErrorCode::ConcurrentTransactions | ErrorCode::NotEnoughReplicas) if transactional => {
            std::time::Duration::from_millis(5 << attempt.min(3))
        }
        _ => backoff.delay(attempt),
    }
}

impl Engine {
    /// The Produce version for a transactional producer: v12+ with transactions v2 (the
    /// request adds its partitions to the transaction), at most v11 with v1.
    pub(crate) fn txn_produce_version(&self, v: kafkit_protocol::ApiVersion) -> kafkit_protocol::ApiVersion {
        match self.shared.txn.as_ref() {
            Some(t) if !lock(&t.inner).v2 => kafkit_protocol::ApiVersion(v.0.min(requests::PRODUCE_V2 - 1)),
            _ => v,
        }
    }
}
