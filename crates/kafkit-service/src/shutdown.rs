//! Graceful shutdown: what starts it (SIGINT, SIGTERM, a [`CancellationToken`], a handler's
//! [`Action::Stop`](crate::Action::Stop), a fatal error) and where it stands.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Where a service stands, in the order a shutdown goes (kafkax's `RunWithGracefulShutdown`
/// steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Fetching and handling.
    Running,
    /// Shutting down: fetching stopped, in-flight handlers finishing.
    Draining,
    /// Flushing the producers and committing what was handled.
    Committing,
    /// Leaving the group (a static member does not) and closing the service's handles on
    /// its producers ([`kafkit::Writer::close`]: a last flush).
    Leaving,
    /// `run` has returned.
    Stopped,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Running,
            1 => Phase::Draining,
            2 => Phase::Committing,
            3 => Phase::Leaving,
            _ => Phase::Stopped,
        }
    }
}

/// The shared shutdown state.
#[derive(Debug, Default)]
pub(crate) struct Shutdown {
    /// Cancelled when the shutdown starts.
    pub token: CancellationToken,
    /// Cancelled when it must end at once (a second signal).
    pub forced: CancellationToken,
    phase: AtomicU8,
    /// Why it started, when not asked for.
    pub cause: Mutex<Option<crate::Error>>,
}

impl Shutdown {
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }
    /// Moves forward to `p` (never back).
    pub fn advance(&self, p: Phase) {
        self.phase.fetch_max(p as u8, Ordering::AcqRel);
    }
    /// Starts the shutdown because of `e` (the first cause is kept).
    pub fn fail(&self, e: crate::Error) {
        if let Ok(mut c) = self.cause.lock() {
            if c.is_none() {
                tracing::warn!(error = %e, "the service stops");
                *c = Some(e);
            }
        }
        self.token.cancel();
    }
    pub fn take_cause(&self) -> Option<crate::Error> {
        self.cause.lock().ok().and_then(|mut c| c.take())
    }
}

/// Waits for SIGINT or SIGTERM: the first starts the shutdown, the second forces it.
pub(crate) async fn listen_signals(token: CancellationToken, forced: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            tracing::warn!("cannot listen for SIGTERM and SIGINT");
            return;
        };
        let mut seen = 0;
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            seen += 1;
            if seen == 1 {
                tracing::info!(signal = name, "shutting down (a second signal forces the exit)");
                token.cancel();
            } else {
                tracing::warn!(signal = name, "second signal: exiting now");
                forced.cancel();
                return;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let mut seen = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            seen += 1;
            if seen == 1 {
                token.cancel();
            } else {
                forced.cancel();
                return;
            }
        }
    }
}
