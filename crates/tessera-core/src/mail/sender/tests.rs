use super::*;
use crate::clock::ManualClock;
use crate::mail::{ClaimedMail, MailId, MailMessage, MailOutbox, MailTransport, TransportError};
use crate::store::StoreError;
use async_trait::async_trait;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
struct Row {
    sealed: Vec<u8>,
    attempts: u32,
    due: OffsetDateTime,
    lease: Option<OffsetDateTime>,
    sent: bool,
    error: Option<String>,
}

#[derive(Default)]
struct MemoryOutbox(Mutex<Vec<Row>>);

#[async_trait]
impl MailOutbox for MemoryOutbox {
    async fn enqueue_mail(&self, sealed: &[u8], now: OffsetDateTime) -> Result<MailId, StoreError> {
        let mut rows = self.0.lock().unwrap();
        rows.push(Row { sealed: sealed.to_vec(), attempts: 0, due: now, lease: None, sent: false, error: None });
        Ok(MailId::new(rows.len() as i64 - 1))
    }
    async fn claim_due_mail(&self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: u32) -> Result<Vec<ClaimedMail>, StoreError> {
        let mut rows = self.0.lock().unwrap();
        let mut out = Vec::new();
        for (i, r) in rows.iter_mut().enumerate() {
            if out.len() as u32 == limit {
                break;
            }
            if !r.sent && r.due <= now && r.lease.is_none_or(|l| l <= now) {
                r.lease = Some(lease_until);
                out.push(ClaimedMail { id: MailId::new(i as i64), sealed: r.sealed.clone(), attempts: r.attempts, lease_until });
            }
        }
        Ok(out)
    }
    async fn mark_mail_sent(&self, id: MailId, lease_until: OffsetDateTime, _now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut rows = self.0.lock().unwrap();
        let r = &mut rows[id.get() as usize];
        if r.lease != Some(lease_until) {
            return Ok(false);
        }
        r.sent = true;
        r.sealed.clear();
        Ok(true)
    }
    async fn reschedule_mail(&self, id: MailId, lease_until: OffsetDateTime, next: OffsetDateTime, error: &str) -> Result<bool, StoreError> {
        let mut rows = self.0.lock().unwrap();
        let r = &mut rows[id.get() as usize];
        if r.lease != Some(lease_until) {
            return Ok(false);
        }
        r.lease = None;
        r.due = next;
        r.attempts += 1;
        r.error = Some(error.to_owned());
        Ok(true)
    }
    async fn count_unsent_mail(&self) -> Result<u64, StoreError> {
        Ok(self.0.lock().unwrap().iter().filter(|r| !r.sent).count() as u64)
    }
    async fn purge_sent_mail(&self, _cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[derive(Default)]
struct Transport {
    down: AtomicBool,
    delivered: Mutex<Vec<MailMessage>>,
    tries: AtomicUsize,
}

#[async_trait]
impl MailTransport for Transport {
    async fn send(&self, message: &MailMessage) -> Result<(), TransportError> {
        self.tries.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(TransportError("connection refused".into()));
        }
        self.delivered.lock().unwrap().push(message.clone());
        Ok(())
    }
}

fn message() -> MailMessage {
    MailMessage { to: "a@example.com".into(), subject: "Hello".into(), text: "link".into(), html: "<p>link</p>".into() }
}

fn setup() -> (MailSender, Arc<MemoryOutbox>, Arc<Transport>, ManualClock, Arc<KeySealer>) {
    let clock = ManualClock::new(OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap());
    let outbox = Arc::new(MemoryOutbox::default());
    let transport = Arc::new(Transport::default());
    let sealer = Arc::new(KeySealer::new(&[7u8; 32]).unwrap());
    let sender = MailSender::new(outbox.clone(), transport.clone(), sealer.clone(), Arc::new(clock.clone()));
    (sender, outbox, transport, clock, sealer)
}

async fn enqueue(outbox: &MemoryOutbox, sealer: &KeySealer, clock: &ManualClock) {
    let sealed = sealer.seal(SEAL_PURPOSE, &serde_json::to_vec(&message()).unwrap()).unwrap();
    outbox.enqueue_mail(&sealed, crate::clock::Clock::now(clock)).await.unwrap();
}

#[test]
fn backoff_doubles_from_thirty_seconds_up_to_an_hour() {
    assert_eq!(backoff(1), Duration::seconds(30));
    assert_eq!(backoff(2), Duration::seconds(60));
    assert_eq!(backoff(3), Duration::seconds(120));
    assert_eq!(backoff(8), Duration::seconds(3600));
    assert_eq!(backoff(u32::MAX), MAX_RETRY);
    assert_eq!(backoff(0), Duration::seconds(30), "no attempt yet still waits the first delay");
}

#[tokio::test]
async fn a_due_message_is_sent_once_and_its_content_dropped() {
    let (sender, outbox, transport, clock, sealer) = setup();
    enqueue(&outbox, &sealer, &clock).await;
    assert_eq!(sender.send_due().await.unwrap(), SendReport { sent: 1, failed: 0 });
    assert_eq!(transport.delivered.lock().unwrap().as_slice(), &[message()]);
    assert_eq!(sender.send_due().await.unwrap(), SendReport::default(), "nothing left to send");
    assert_eq!(outbox.count_unsent_mail().await.unwrap(), 0);
    assert!(outbox.0.lock().unwrap()[0].sealed.is_empty(), "a sent message keeps no content");
}

#[tokio::test]
async fn a_failed_message_waits_for_its_backoff_and_is_never_dropped() {
    let (sender, outbox, transport, clock, sealer) = setup();
    enqueue(&outbox, &sealer, &clock).await;
    transport.down.store(true, Ordering::SeqCst);
    assert_eq!(sender.send_due().await.unwrap(), SendReport { sent: 0, failed: 1 });
    assert_eq!(sender.send_due().await.unwrap(), SendReport::default(), "not due again before its backoff");
    clock.advance(Duration::seconds(29));
    assert_eq!(sender.send_due().await.unwrap(), SendReport::default());
    clock.advance(Duration::seconds(1));
    assert_eq!(sender.send_due().await.unwrap(), SendReport { sent: 0, failed: 1 }, "retried after 30 s");
    assert_eq!(outbox.0.lock().unwrap()[0].error.as_deref(), Some("connection refused"));
    clock.advance(Duration::seconds(59));
    assert_eq!(sender.send_due().await.unwrap(), SendReport::default(), "the second delay is 60 s");
    clock.advance(Duration::seconds(1));
    transport.down.store(false, Ordering::SeqCst);
    assert_eq!(sender.send_due().await.unwrap(), SendReport { sent: 1, failed: 0 });
    assert_eq!(transport.tries.load(Ordering::SeqCst), 3);
    assert_eq!(transport.delivered.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_message_sealed_under_another_key_is_rescheduled_not_lost() {
    let (sender, outbox, transport, clock, _) = setup();
    let other = KeySealer::new(&[9u8; 32]).unwrap();
    enqueue(&outbox, &other, &clock).await;
    assert_eq!(sender.send_due().await.unwrap(), SendReport { sent: 0, failed: 1 });
    assert_eq!(transport.tries.load(Ordering::SeqCst), 0, "nothing unreadable reaches the transport");
    assert_eq!(outbox.count_unsent_mail().await.unwrap(), 1, "kept for an operator to fix the key");
}
