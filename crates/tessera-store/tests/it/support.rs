//! Small fixtures shared by the store tests.

use tessera_core::ids::{SessionHandle, UserId};
use tessera_core::secret::SecretToken;
use tessera_core::session::{NewSession, Session};
use tessera_core::store::Store;
use tessera_core::user::{DisplayName, Email, NewUser, User, Username};
use time::{Duration, OffsetDateTime};

/// "Now", truncated to whole seconds (the stores keep unix seconds).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

/// A new user with a username, an optional e-mail and a fake password hash.
pub fn new_user(username: &str, email: Option<&str>) -> NewUser {
    NewUser {
        username: Username::parse(username).unwrap(),
        email: email.map(|e| Email::parse(e).unwrap()),
        display_name: DisplayName::parse("Test User").unwrap(),
        password_hash: Some(format!("$argon2id$fake${username}")),
        roles: vec![],
    }
}

/// Creates a user through the store.
pub async fn create(store: &dyn Store, username: &str, email: Option<&str>) -> User {
    store.create_user(&new_user(username, email), now()).await.unwrap()
}

/// A session for `user_id` started at `at`, lasting 14 days; returns its secret too.
pub fn session_at(user_id: UserId, at: OffsetDateTime) -> (SecretToken, NewSession) {
    let token = SecretToken::generate().unwrap();
    let session = Session {
        handle: SessionHandle::new(),
        user_id,
        created_at: at,
        last_seen_at: at,
        expires_at: at + Duration::days(14),
        auth_time: at,
        ip: Some("192.0.2.1".into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into()),
        amr: vec!["pwd".into()],
    };
    (token.clone(), NewSession { id_hash: token.hash(), session })
}

/// Creates a session for `user_id` now; returns its secret and record.
pub async fn start_session(store: &dyn Store, user_id: UserId) -> (SecretToken, NewSession) {
    let (t, s) = session_at(user_id, now());
    store.create_session(&s).await.unwrap();
    (t, s)
}
