//! Background jobs of a running server: reload signing keys when another process (the CLI,
//! another node) rotated them, purge expired OAuth records, apply the outbox events nobody
//! applied (a request that failed or a node that crashed after writing them), and deliver
//! back-channel logout tokens with retries (see [`crate::backchannel`]).

use std::time::Duration;
use tessera_core::oauth::provider::Provider;
use tessera_core::outbox::consumer::{OutboxConsumer, SETTLE};
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

/// Applies the outbox events written at least `settle` ago that no consumer holds; logs
/// the outcome.
pub async fn apply_outbox(outbox: &OutboxConsumer, settle: time::Duration) {
    match outbox.apply_pending(settle).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(events = n, "outbox events applied"),
        Err(e) => tracing::warn!(error = %e, "outbox events could not be claimed"),
    }
}

/// Starts the jobs.
pub fn spawn(provider: Provider, outbox: OutboxConsumer) -> Jobs {
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
    // Every second, the events their requests left (events younger than `SETTLE` are still
    // the writing request's to apply).
    let apply = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            apply_outbox(&outbox, SETTLE).await;
        }
    });
    let deliver = tokio::spawn(crate::backchannel::deliver_logout_tokens(provider));
    Jobs(vec![reload, purge, apply, deliver])
}

/// Starts the mail jobs: every second, send the due messages of the mail outbox (claimed
/// with a lease, so nodes sharing a database do not send one twice; failures wait for their
/// backoff); every ten minutes, drop expired e-mail challenges and sent messages older than
/// a day (whose content is already gone).
pub fn spawn_mail(mail: crate::mailer::Mail, clock: tessera_core::clock::SharedClock) -> Jobs {
    let crate::mailer::Mail { sender, flows, outbox } = mail;
    let send = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            match sender.send_due().await {
                Ok(r) if r.sent + r.failed > 0 => tracing::debug!(sent = r.sent, failed = r.failed, "mail outbox round"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the mail outbox could not be read"),
            }
        }
    });
    let purge = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = flows.purge().await {
                tracing::warn!(error = %e, "expired e-mail challenges could not be purged");
            }
            let cutoff = clock.now() - time::Duration::days(1);
            if let Err(e) = outbox.purge_sent_mail(cutoff).await {
                tracing::warn!(error = %e, "sent mail could not be purged");
            }
        }
    });
    Jobs(vec![send, purge])
}
