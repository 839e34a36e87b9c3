//! `VisibilityStore` for [`SqlStore`]: which grants each security event concerns, so the
//! revocation feed shows a subscriber only events about its own tokens and sessions.

use crate::backend::on_db;
use crate::query::Fetch;
use crate::store::SqlStore;
use async_trait::async_trait;
use tessera_core::oauth::client::ClientId;
use tessera_core::oauth::visibility::{EventParty, VisibilityStore};
use tessera_core::store::StoreError;

/// A `token-revoked` event concerns the grant of its access token; a `session-revoked`
/// event for one session the grants made in it; a user-wide event every grant of the user;
/// and, for events about grants deleted with their user or client, the parties recorded then.
const PARTIES: &str = "\
SELECT e.seq, g.client_id, g.audience FROM security_events e \
  JOIN access_tokens a ON a.jti = e.subject JOIN grants g ON g.id = a.grant_id \
  WHERE e.kind = 'token-revoked' AND e.seq > $1 AND e.seq <= $2 \
UNION \
SELECT e.seq, g.client_id, g.audience FROM security_events e JOIN grants g ON g.sid = e.session \
  WHERE e.kind = 'session-revoked' AND e.session IS NOT NULL AND e.seq > $1 AND e.seq <= $2 \
UNION \
SELECT e.seq, g.client_id, g.audience FROM security_events e JOIN grants g ON g.user_id = e.subject \
  WHERE e.kind IN ('session-revoked', 'credential-change') AND e.session IS NULL AND e.seq > $1 AND e.seq <= $2 \
UNION \
SELECT seq, client_id, audience FROM security_event_parties WHERE seq > $1 AND seq <= $2";

#[async_trait]
impl VisibilityStore for SqlStore {
    async fn security_event_parties(&self, after: i64, until: i64) -> Result<Vec<EventParty>, StoreError> {
        let rows: Vec<(i64, String, String)> = on_db!(self, read, |pool| {
            sqlx::query_as(PARTIES).bind(after).bind(until).all(pool).await
        })?;
        rows.into_iter()
            .map(|(seq, client_id, audience)| {
                Ok(EventParty {
                    seq,
                    client_id: ClientId::new(client_id),
                    audience: serde_json::from_str(&audience).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }
}
