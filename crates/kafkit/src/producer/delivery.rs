//! What a write gives back: the [`DeliveryFuture`] of each message, shared per batch by one
//! [`Outcome`]; the [`Completion`] callback; [`Delivered`] and [`WriteErrors`].

use crate::error::{Error, Result};
use crate::message::Message;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Called once per batch when it is acknowledged or has failed for good (kafka-go's
/// `Writer.Completion`), on the writer's task: keep it short and never block in it.
///
/// It gets the batch's outcome — on success where its first message was written (message
/// `i` is at `offset + i`, or every offset is -1 with [`Acks::None`](crate::net::Acks::None)) — and the batch's
/// messages in the order they were written.
pub type Completion = Arc<dyn Fn(std::result::Result<&Delivered, &Error>, &[Message]) + Send + Sync>;

/// Where a message was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset (-1 with [`Acks::None`](crate::net::Acks::None), or when the broker reported the batch as a
    /// duplicate of one already written without saying where).
    pub offset: i64,
}

/// The outcome of one message of [`Writer::write_messages`](super::Writer::write_messages) that did not all succeed: one
/// result per message, in input order (kafka-go's `WriteErrors`).
#[derive(Debug)]
pub struct WriteErrors {
    /// One result per message.
    pub results: Vec<Result<Delivered>>,
}

impl WriteErrors {
    /// How many messages failed.
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.is_err()).count()
    }
}

impl std::fmt::Display for WriteErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self.results.iter().find_map(|r| r.as_ref().err());
        write!(f, "{} of {} messages failed", self.failed(), self.results.len())?;
        if let Some(e) = first {
            write!(f, "; first: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WriteErrors {}

/// Locks `m`, taking the data of a poisoned lock as it is (every critical section here
/// leaves it consistent between statements that can panic).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The outcome of one batch, shared by the [`DeliveryFuture`]s of its messages: one
/// allocation per batch rather than a channel per message.
pub(crate) struct Outcome {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) state: Mutex<OutcomeState>,
}

#[derive(Default)]
pub(crate) struct OutcomeState {
    /// The base offset, or the error.
    pub(crate) result: Option<Result<i64>>,
    pub(crate) wakers: Vec<Waker>,
}

impl Outcome {
    pub(crate) fn resolve(&self, r: Result<i64>) {
        let wakers = {
            let mut s = lock(&self.state);
            if s.result.is_some() {
                return;
            }
            s.result = Some(r);
            std::mem::take(&mut s.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }
}

/// Resolves its outcome with [`Error::Closed`] if it is dropped unresolved (the writer's task
/// stopped with the batch unsent).
pub(crate) struct Resolver(pub(crate) Arc<Outcome>);

impl Drop for Resolver {
    fn drop(&mut self) {
        self.0.resolve(Err(Error::Closed));
    }
}

/// The acknowledgement of one message written with [`Writer::write`](super::Writer::write).
///
/// Resolves once the broker acknowledged the message's batch (or it failed for good).
/// Dropping it does not cancel the write.
pub struct DeliveryFuture {
    pub(crate) outcome: Arc<Outcome>,
    pub(crate) index: u32,
    /// Where this future's waker sits in the outcome's list once registered (`u32::MAX`
    /// before): the future is 16 bytes.
    pub(crate) slot: u32,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("topic", &self.outcome.topic)
            .field("partition", &self.outcome.partition)
            .field("index", &self.index)
            .finish()
    }
}

impl Future for DeliveryFuture {
    type Output = Result<Delivered>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut s = lock(&this.outcome.state);
        match &s.result {
            Some(Ok(base)) => Poll::Ready(Ok(Delivered {
                topic: this.outcome.topic.to_string(),
                partition: this.outcome.partition,
                offset: if *base >= 0 { base + i64::from(this.index) } else { -1 },
            })),
            Some(Err(e)) => Poll::Ready(Err(e.dup())),
            None => {
                let i = this.slot as usize;
                if i < s.wakers.len() {
                    if !s.wakers[i].will_wake(cx.waker()) {
                        s.wakers[i] = cx.waker().clone();
                    }
                } else {
                    this.slot = s.wakers.len() as u32;
                    s.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}
