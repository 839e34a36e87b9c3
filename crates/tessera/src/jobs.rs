//! Background jobs of a running server: reload signing keys when another process (the CLI,
//! another node) rotated them, purge expired OAuth records, and deliver back-channel
//! logout tokens with retries.

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
    let deliver = tokio::spawn(deliver_logout_tokens(provider));
    Jobs(vec![reload, purge, deliver])
}

/// Most attempts per logout token (about a day with exponential backoff).
const MAX_ATTEMPTS: i64 = 12;

async fn deliver_logout_tokens(provider: Provider) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout disabled: no HTTP client");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = provider.clock().now();
        let due = match provider.store().due_logout_deliveries(now, 50).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "back-channel logout queue unreadable");
                continue;
            }
        };
        for d in due {
            let sent = client.post(&d.uri).form(&[("logout_token", d.logout_token.as_str())]).send().await;
            let ok = matches!(&sent, Ok(r) if r.status().is_success());
            let result = if ok || d.attempts + 1 >= MAX_ATTEMPTS {
                if !ok {
                    tracing::warn!(client_id = %d.client_id, "back-channel logout abandoned after {MAX_ATTEMPTS} attempts");
                }
                provider.store().finish_logout_delivery(d.id).await
            } else {
                let backoff = time::Duration::seconds(2_i64.saturating_pow(u32::try_from(d.attempts + 1).unwrap_or(16)).min(3600));
                tracing::info!(client_id = %d.client_id, attempt = d.attempts + 1, "back-channel logout failed; will retry");
                provider.store().retry_logout_delivery(d.id, now + backoff).await
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "back-channel logout queue could not be updated");
            }
        }
    }
}
