//! The revocation feed: security events as signed Security Event Tokens over Server-Sent
//! Events (`GET /events/v1/stream`), authenticated per confidential client, resumable with
//! `Last-Event-ID` so a subscriber misses nothing across a reconnect.

use crate::AppState;
use crate::error::OAuthResponse;
use crate::oauth::token::presented;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use http::HeaderMap;
use std::convert::Infallible;
use std::time::Duration;
use tessera_core::oauth::OAuthError;

/// How often a subscriber's position is checked against the log (every node writes to the
/// same database, so polling also carries other nodes' events).
const POLL: Duration = Duration::from_millis(200);

/// `GET /events/v1/stream`.
pub async fn stream(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, OAuthResponse> {
    let provider = state.provider().clone();
    let client = provider.authenticate_client(&presented(&headers, &Vec::new())?).await?;
    if client.is_public() {
        return Err(OAuthError::InvalidClient("public clients cannot subscribe".into()).into());
    }
    let last: Option<i64> = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    tracing::info!(client_id = %client.id, last_event_id = ?last, "revocation feed subscriber connected");
    let events = stream::unfold((provider, client, last), |(provider, client, mut last)| async move {
        loop {
            // Only events about the subscriber's own grants are sent (see
            // `tessera_core::oauth::visibility`); the cursor passes the others by.
            match provider.security_events(&client, last, 100).await {
                Ok(batch) => {
                    let read_more = batch.cursor != last;
                    last = batch.cursor;
                    if !batch.events.is_empty() {
                        let out: Vec<Result<Event, Infallible>> =
                            batch.events.into_iter().map(|(seq, set)| Ok(Event::default().id(seq.to_string()).event("set").data(set))).collect();
                        return Some((stream::iter(out), (provider, client, last)));
                    }
                    if read_more {
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "revocation feed could not read the event log"),
            }
            tokio::time::sleep(POLL).await;
        }
    });
    let flat = futures_util::StreamExt::flatten(events);
    Ok(sse(flat).into_response())
}

fn sse<S: Stream<Item = Result<Event, Infallible>> + Send + 'static>(s: S) -> impl IntoResponse {
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("ping"))
}
