//! Producer conveniences (kafkax's `Send`, `SendWithHeaders`, `SendJSON`) over a
//! [`kafkit::Writer`].

use crate::error::Result;
use crate::outputs::Tracked;
use bytes::Bytes;
use kafkit::{Delivered, DeliveryFuture, Header, Message, Writer};
use std::sync::Arc;

/// Sends records and waits for their acknowledgement (feature `serde`). A cheap `Clone`.
///
/// The service's producer ([`crate::Service::producer`], and one added with
/// [`crate::Service::add_producer`]) is flushed before every commit, so a record a handler
/// queued ([`Producer::queue`]) is acknowledged before the offset of the record that caused
/// it is committed. A failed `send*` is the handler's to handle (its error is returned); a
/// queued record that fails was told to no one, so the service commits nothing more and
/// stops with [`crate::Error::OutputLost`] (the records finished since the last commit are
/// handled again, their outputs written again).
///
/// Make one `Producer` per writer and clone it: the failures told to its `send*` calls are
/// counted per `Producer` and its clones, and another `Producer` over the same writer does
/// not see them.
#[derive(Clone, Debug)]
pub struct Producer {
    writer: Writer,
    tracked: Arc<Tracked>,
}

impl Producer {
    /// Over `writer`.
    pub fn new(writer: Writer) -> Producer {
        Producer { writer, tracked: Arc::default() }
    }

    /// Over `writer`, counting the failures told to its `send*` calls in `tracked`.
    pub(crate) fn tracked(writer: Writer, tracked: Arc<Tracked>) -> Producer {
        Producer { writer, tracked }
    }

    pub(crate) fn tracker(&self) -> &Arc<Tracked> {
        &self.tracked
    }

    /// A producer with the `[writer]`, `[cluster]`, `[tls]` and `[sasl]` settings.
    ///
    /// # Errors
    /// A setting that does not convert; [`kafkit::Writer::new`]'s errors.
    pub async fn connect(settings: &crate::config::Settings) -> Result<Producer> {
        let cfg = settings.writer_config().map_err(crate::Error::Settings)?;
        Ok(Producer::new(Writer::new(&settings.brokers(), cfg).await?))
    }

    /// The writer underneath. A record written on it directly and failing counts as a record
    /// queued with [`Producer::queue`] that failed.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Writes `key` and `value` to `topic` and waits for the acknowledgement (kafkax's
    /// `Send`).
    ///
    /// # Errors
    /// The write's error ([`kafkit::Writer::write`], then the delivery's).
    pub async fn send(&self, topic: &str, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<Delivered> {
        self.send_message(Message::new(Some(key.into()), Some(value.into())).with_topic(topic)).await
    }

    /// As [`Producer::send`], with headers (kafkax's `SendWithHeaders`).
    ///
    /// # Errors
    /// As [`Producer::send`].
    pub async fn send_with_headers(
        &self,
        topic: &str,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        headers: impl IntoIterator<Item = (String, Bytes)>,
    ) -> Result<Delivered> {
        let mut m = Message::new(Some(key.into()), Some(value.into())).with_topic(topic);
        m.headers = headers.into_iter().map(|(key, v)| Header { key, value: Some(v) }).collect();
        self.send_message(m).await
    }

    /// Writes `m` (its `topic` set) and waits for the acknowledgement.
    ///
    /// # Errors
    /// As [`Producer::send`].
    ///
    /// # Cancellation
    /// Dropping the future after the record was queued stops waiting; the record is still
    /// sent, and if it then fails it counts as a queued record that failed.
    pub async fn send_message(&self, m: Message) -> Result<Delivered> {
        let awaiting = self.tracked.begin();
        let delivery = self.writer.write(m).await?;
        match delivery.await {
            Ok(d) => Ok(d),
            Err(e) => {
                self.tracked.told(&awaiting);
                Err(e.into())
            }
        }
    }

    /// Queues `m` without waiting for the acknowledgement; the returned future resolves
    /// with it. If the delivery fails, the service's commits stop
    /// ([`crate::Error::OutputLost`]) whether or not the future is awaited: use
    /// [`Producer::send_message`] when the handler handles the failure.
    ///
    /// # Errors
    /// [`kafkit::Writer::write`]'s.
    pub async fn queue(&self, m: Message) -> Result<DeliveryFuture> {
        Ok(self.writer.write(m).await?)
    }

    /// Serializes `value` as JSON and sends it (kafkax's `SendJSON`); the record gets the
    /// header `content-type: application/json`.
    ///
    /// # Errors
    /// [`crate::Error::Json`] when `value` does not serialize; as [`Producer::send`].
    #[cfg(feature = "serde")]
    pub async fn send_json<T: serde::Serialize + ?Sized>(
        &self,
        topic: &str,
        key: impl Into<Bytes>,
        value: &T,
    ) -> Result<Delivered> {
        let m = crate::json::message(Some(key.into()), value)?.with_topic(topic);
        self.send_message(m).await
    }

    /// Waits until everything queued so far is acknowledged or failed.
    ///
    /// # Errors
    /// [`kafkit::Error::Closed`] when the writer stopped.
    pub async fn flush(&self) -> Result<()> {
        Ok(self.writer.flush().await?)
    }
}
