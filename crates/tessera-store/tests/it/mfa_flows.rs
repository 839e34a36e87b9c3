//! Strong-authentication flows over the real stores, under a manual clock: a second factor
//! once enrolled, pending sign-ins that lapse, the re-authentication window, step-up in
//! place, removing the last factor, and WebAuthn ceremonies refusing what they must.

use serde_json::json;
use tessera_core::CoreError;
use tessera_core::accounts::{Accounts, Authenticated, CreateUser, LoginOutcome, SecondFactorAnswer, StartedSession};
use tessera_core::clock::{Clock, ManualClock};
use tessera_core::mfa::level::AuthLevel;
use tessera_core::secret::{Password, SecretToken};
use tessera_core::session::RequestContext;
use tessera_testkit::{TestDb, manual_clock, totp_code};
use time::Duration;

tessera_testkit::backend_tests!(
    a_second_factor_is_required_once_enrolled,
    pending_sign_ins_lapse,
    sensitive_actions_need_a_recent_sign_in,
    step_up_upgrades_the_session_in_place,
    removing_the_last_factor_removes_the_requirement_and_the_codes,
    webauthn_ceremonies_are_single_use_and_purpose_bound,
    an_administrator_resets_second_factors,
);

const PASSWORD: &str = "correct horse battery staple";

fn ctx() -> RequestContext {
    RequestContext::new(Some("192.0.2.7".parse().unwrap()), Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"))
}

async fn setup(db: &TestDb) -> (Accounts, ManualClock, Authenticated, SecretToken) {
    let clock = manual_clock();
    let accounts = tessera_testkit::accounts(db.dyn_store(), clock.clone());
    accounts
        .create_user(
            CreateUser { username: "alice".into(), email: None, display_name: None, password: Some(Password::new(PASSWORD)), roles: vec![] },
            &ctx(),
        )
        .await
        .unwrap();
    let started = accounts.login("alice", &Password::new(PASSWORD), None, &ctx()).await.unwrap();
    let who = accounts.authenticate(&started.token, &ctx()).await.unwrap();
    (accounts, clock, who, started.token)
}

fn unix(clock: &ManualClock) -> u64 {
    u64::try_from(clock.now().unix_timestamp()).unwrap()
}

/// Enrols TOTP for `who`; returns the base32 secret (the current step is used up).
async fn enrol(accounts: &Accounts, clock: &ManualClock, who: &Authenticated) -> String {
    let setup = accounts.begin_totp_enrolment(who).await.unwrap();
    let secret = setup.manual_key.replace(' ', "");
    assert!(setup.uri.contains(&format!("secret={secret}")), "{}", setup.uri);
    let codes = accounts.confirm_totp_enrolment(who, &totp_code(&secret, unix(clock)), &ctx()).await.unwrap();
    assert_eq!(codes.map(|c| c.len()), Some(10), "the first enrolment makes ten recovery codes");
    secret
}

async fn password(accounts: &Accounts, current: Option<&Authenticated>) -> LoginOutcome {
    accounts.sign_in_with_password("alice", &Password::new(PASSWORD), None, &ctx(), current).await.unwrap()
}

async fn a_second_factor_is_required_once_enrolled(db: TestDb) {
    let (accounts, clock, who, _) = setup(&db).await;
    let secret = enrol(&accounts, &clock, &who).await;
    let LoginOutcome::SecondFactor(needed) = password(&accounts, None).await else { panic!("a second factor is asked for") };
    assert_eq!(needed.required, AuthLevel::MultiFactor);
    assert!(needed.factors.totp && needed.factors.recovery_codes == 10);
    let view = accounts.pending_sign_in(&needed.token).await.unwrap();
    assert_eq!(view.user.username.as_str(), "alice");
    // The enrolment's own step is used up; the next one signs in.
    let reused = accounts.verify_second_factor(&needed.token, SecondFactorAnswer::Totp(totp_code(&secret, unix(&clock))), &ctx()).await;
    assert!(matches!(reused, Err(CoreError::SecondFactorRejected { attempts_left: 4 })), "{reused:?}");
    clock.advance(Duration::seconds(30));
    let started = accounts.verify_second_factor(&needed.token, SecondFactorAnswer::Totp(totp_code(&secret, unix(&clock))), &ctx()).await.unwrap();
    assert_eq!(started.session.amr, vec!["pwd", "otp", "mfa"]);
    assert_ne!(started.session.handle, who.session.handle, "without the old session, a new one starts");
    // The pending sign-in was used up.
    let again = accounts.verify_second_factor(&needed.token, SecondFactorAnswer::Totp("123456".into()), &ctx()).await;
    assert!(matches!(again, Err(CoreError::Unauthenticated)), "{again:?}");
    // `login` (single-factor only) refuses an account with a second factor.
    assert!(matches!(accounts.login("alice", &Password::new(PASSWORD), None, &ctx()).await, Err(CoreError::Invalid(_))));
}

async fn pending_sign_ins_lapse(db: TestDb) {
    let (accounts, clock, who, _) = setup(&db).await;
    let secret = enrol(&accounts, &clock, &who).await;
    let LoginOutcome::SecondFactor(needed) = password(&accounts, None).await else { panic!("second factor") };
    clock.advance(Duration::minutes(6));
    let late = accounts.verify_second_factor(&needed.token, SecondFactorAnswer::Totp(totp_code(&secret, unix(&clock))), &ctx()).await;
    assert!(matches!(late, Err(CoreError::Unauthenticated)), "{late:?}");
    assert!(accounts.purge_expired_sessions().await.unwrap() >= 1, "the lapsed pending sign-in is purged");
}

async fn sensitive_actions_need_a_recent_sign_in(db: TestDb) {
    let (accounts, clock, who, _) = setup(&db).await;
    let other = accounts.login("alice", &Password::new(PASSWORD), None, &ctx()).await.unwrap();
    clock.advance(Duration::minutes(11));
    assert!(!accounts.recently_authenticated(&who));
    for refused in [
        accounts.end_session(&who, other.session.handle, &ctx()).await.map(|_| ()),
        accounts.change_password(&who, &Password::new(PASSWORD), &Password::new("a new long passphrase"), &ctx()).await.map(|_| ()),
        accounts.begin_totp_enrolment(&who).await.map(|_| ()),
        accounts.start_passkey_registration(&who).await.map(|_| ()),
    ] {
        assert!(matches!(refused, Err(CoreError::ReauthenticationRequired)), "{refused:?}");
    }
    // Signing in again as the same user upgrades the session in place.
    let LoginOutcome::SignedIn(again) = password(&accounts, Some(&who)).await else { panic!("no second factor enrolled") };
    assert_eq!(again.session.handle, who.session.handle);
    assert_eq!(again.session.auth_time, clock.now());
    let fresh = accounts.authenticate(&again.token, &ctx()).await.unwrap();
    accounts.end_session(&fresh, other.session.handle, &ctx()).await.unwrap();
}

async fn step_up_upgrades_the_session_in_place(db: TestDb) {
    let (accounts, clock, who, token) = setup(&db).await;
    let secret = enrol(&accounts, &clock, &who).await;
    assert_eq!(AuthLevel::of(&who.session.amr), AuthLevel::SingleFactor);
    let needed = accounts.begin_step_up(&who, AuthLevel::MultiFactor, &ctx()).await.unwrap();
    clock.advance(Duration::seconds(30));
    let up: StartedSession = accounts.verify_second_factor(&needed.token, SecondFactorAnswer::Totp(totp_code(&secret, unix(&clock))), &ctx()).await.unwrap();
    assert_eq!(up.session.handle, who.session.handle, "same session, same sid");
    assert_eq!(up.session.amr, vec!["pwd", "otp", "mfa"]);
    assert_eq!(AuthLevel::of(&up.session.amr), AuthLevel::MultiFactor);
    assert!(matches!(accounts.authenticate(&token, &ctx()).await, Err(CoreError::Unauthenticated)), "the old id is void");
    let now = accounts.authenticate(&up.token, &ctx()).await.unwrap();
    assert_eq!(now.session.amr, up.session.amr);
    // A phishing-resistant step-up does not take a TOTP code.
    let phr = accounts.begin_step_up(&now, AuthLevel::PhishingResistant, &ctx()).await.unwrap();
    clock.advance(Duration::seconds(30));
    let refused = accounts.verify_second_factor(&phr.token, SecondFactorAnswer::Totp(totp_code(&secret, unix(&clock))), &ctx()).await;
    assert!(matches!(refused, Err(CoreError::Invalid(_))), "{refused:?}");
}

async fn removing_the_last_factor_removes_the_requirement_and_the_codes(db: TestDb) {
    let (accounts, clock, who, _) = setup(&db).await;
    enrol(&accounts, &clock, &who).await;
    assert!(accounts.factor_summary(who.user.id).await.unwrap().has_second_factor());
    let again = accounts.begin_totp_enrolment(&who).await;
    assert!(matches!(again, Err(CoreError::Conflict(_))), "one authenticator app at a time: {again:?}");
    accounts.remove_totp(&who, &ctx()).await.unwrap();
    let summary = accounts.factor_summary(who.user.id).await.unwrap();
    assert!(!summary.has_second_factor());
    assert_eq!(summary.recovery_codes, 0, "recovery codes go with the last factor");
    assert!(matches!(password(&accounts, None).await, LoginOutcome::SignedIn(_)));
    assert!(matches!(accounts.remove_totp(&who, &ctx()).await, Err(CoreError::NotFound)));
    assert!(matches!(accounts.regenerate_recovery_codes(&who, &ctx()).await, Err(CoreError::Invalid(_))));
}

async fn webauthn_ceremonies_are_single_use_and_purpose_bound(db: TestDb) {
    let (accounts, _clock, who, _) = setup(&db).await;
    let reg = accounts.start_passkey_registration(&who).await.unwrap();
    assert_eq!(reg.options["publicKey"]["authenticatorSelection"]["residentKey"], "required");
    // A registration handle is not a sign-in handle.
    let wrong = accounts.finish_passkey_sign_in(&reg.handle, &json!({}), None, None, &ctx()).await;
    assert!(matches!(wrong, Err(CoreError::Invalid(_))), "{wrong:?}");
    // …and it was used up by that attempt.
    let garbage = json!({"id": "x", "rawId": "eA", "type": "public-key", "response": {"attestationObject": "AA", "clientDataJSON": "AA"}});
    let gone = accounts.finish_passkey_registration(&who, &reg.handle, &garbage, "key", &ctx()).await;
    assert!(matches!(gone, Err(CoreError::Invalid(_))), "{gone:?}");
    // A fresh one with a garbage answer is refused without storing anything.
    let reg = accounts.start_passkey_registration(&who).await.unwrap();
    let bad = accounts.finish_passkey_registration(&who, &reg.handle, &garbage, "key", &ctx()).await;
    assert!(matches!(bad, Err(CoreError::Invalid(_))), "{bad:?}");
    assert!(accounts.list_passkeys(who.user.id).await.unwrap().is_empty());
    // Passwordless: an unknown credential is a failed sign-in, audited.
    let start = accounts.start_passkey_sign_in(None).await.unwrap();
    assert!(start.options["publicKey"]["challenge"].is_string());
    let answer = json!({"id": "eA", "rawId": "eA", "type": "public-key",
        "response": {"authenticatorData": "AA", "clientDataJSON": "AA", "signature": "AA", "userHandle": "AAAAAAAAAAAAAAAAAAAAAA"}});
    let unknown = accounts.finish_passkey_sign_in(&start.handle, &answer, None, None, &ctx()).await;
    assert!(matches!(unknown, Err(CoreError::InvalidCredentials)), "{unknown:?}");
}

async fn an_administrator_resets_second_factors(db: TestDb) {
    let (accounts, clock, who, _) = setup(&db).await;
    enrol(&accounts, &clock, &who).await;
    let LoginOutcome::SecondFactor(needed) = password(&accounts, None).await else { panic!("second factor") };
    assert_eq!(accounts.reset_second_factors(who.user.id, &ctx()).await.unwrap(), 1);
    let summary = accounts.factor_summary(who.user.id).await.unwrap();
    assert_eq!(summary, Default::default(), "no TOTP, passkeys or recovery codes left");
    assert!(matches!(accounts.pending_sign_in(&needed.token).await, Err(CoreError::Unauthenticated)), "pending sign-ins end too");
    assert!(matches!(password(&accounts, None).await, LoginOutcome::SignedIn(_)));
    let events = accounts.audit_events(&Default::default()).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "mfa_reset" && e.user_id == Some(who.user.id)));
}
