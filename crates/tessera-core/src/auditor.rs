//! The one audit path: [`Auditor`] stores each event (queryable by user and time) and emits it
//! as a JSON log line on the `audit` tracing target.

use crate::audit::{AuditEvent, AuditKind};
use crate::clock::SharedClock;
use crate::ids::{AuditEventId, UserId};
use crate::session::RequestContext;
use crate::store::Store;
use std::sync::Arc;

/// Writes audit events to the store and to the log.
#[derive(Clone)]
pub struct Auditor {
    store: Arc<dyn Store>,
    clock: SharedClock,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auditor")
    }
}

impl Auditor {
    /// An auditor writing to `store`.
    pub fn new(store: Arc<dyn Store>, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// Records an event. A failure to store it is logged, not returned: the action it
    /// describes has already happened.
    pub async fn record(
        &self,
        kind: AuditKind,
        user_id: Option<UserId>,
        ctx: &RequestContext,
        detail: serde_json::Value,
    ) {
        let event = AuditEvent {
            id: AuditEventId::new(),
            at: self.clock.now(),
            kind: kind.as_str().to_owned(),
            user_id,
            ip: ctx.ip.map(|ip| ip.to_string()),
            user_agent: ctx.user_agent.clone(),
            detail,
        };
        match serde_json::to_string(&event) {
            Ok(line) => tracing::info!(target: "audit", event = %line, "{}", kind.as_str()),
            Err(e) => tracing::warn!(error = %e, "audit event could not be serialised"),
        }
        if let Err(e) = self.store.append_audit_event(&event).await {
            tracing::error!(error = %e, kind = kind.as_str(), "audit event could not be stored");
        }
    }
}
