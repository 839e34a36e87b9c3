//! Background jobs of a running server: reload signing keys when another process (the CLI,
//! another node) rotated them, purge expired OAuth records, and deliver back-channel
//! logout tokens with retries (see [`crate::backchannel`]).

use std::time::Duration;
use tessera_core::oauth::provider::Provider;
use tokio::task::JoinHandle;

/// Owns the background tasks; aborting it stops them all.
#[derive(Debug)]
pub struct Jobs(Vec<JoinHandle<()>>);

impl Jobs {
    /// Stops every job.
    pub fn abort(&self) {
        for j in &self.0 {
            j.abort();
        }
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Starts the jobs.
pub fn spawn(provider: Provider) -> Jobs {
    let keys = provider.clone();
    let reload = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            match keys.keys().refresh().await {
                Ok(true) => tracing::info!("signing keys reloaded"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "signing keys could not be reloaded"),
            }
        }
    });
    let purger = provider.clone();
    let purge = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        loop {
            tick.tick().await;
            if let Err(e) = purger.purge().await {
                tracing::warn!(error = %e, "expired OAuth records could not be purged");
            }
        }
    });
    let deliver = tokio::spawn(crate::backchannel::deliver_logout_tokens(provider));
    Jobs(vec![reload, purge, deliver])
}
