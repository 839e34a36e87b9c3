//! Account hygiene over HTTP: look-alike usernames are refused (sign-up and the admin API),
//! sign-up does not tell taken names and e-mail addresses from free ones, patterned
//! passwords are refused at any length, and the first-administrator link dies once any
//! administrator exists.

use crate::helpers::{Answer, PASSWORD, TestApp, alert_text, ctx, field_value, set_cookie_header, spawn_app, spawn_app_with_env};
use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use tessera_core::accounts::CreateUser;
use tessera_core::secret::Password;
use tessera_core::user::{ROLE_ADMIN, UserUpdate, Username};
use tessera_testkit::Backend;

on_both_backends!(
    look_alike_usernames_are_refused_at_sign_up_and_in_the_admin_api,
    sign_up_answers_the_same_for_taken_and_free_names,
    names_created_under_older_rules_still_sign_in,
    the_setup_link_stops_working_once_an_administrator_exists,
);

const ADMIN_KEY: &str = "hygiene-admin-key-0123456789-abcdefghijklmnop";

async fn signup_app(backend: Backend) -> TestApp {
    spawn_app_with_env(backend, &[("TESSERA_SIGNUP__ENABLED", "true"), ("TESSERA_ADMIN__API_KEY", ADMIN_KEY)]).await
}

/// `GET /signup` then `POST /signup` with a fresh cookie-keeping client.
async fn sign_up(app: &TestApp, username: &str, email: &str, password: &str) -> Answer {
    let client = crate::helpers::client();
    let page = Answer::of(client.get(app.url("/signup")).send().await.unwrap()).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let form = [
        ("csrf_token", csrf.as_str()),
        ("return_to", "/account"),
        ("username", username),
        ("email", email),
        ("name", ""),
        ("password", password),
    ];
    Answer::of(client.post(app.url("/signup")).form(&form).send().await.unwrap()).await
}

const LOOK_ALIKES: &[(&str, &str)] = &[
    ("\u{0430}lice", "Cyrillic a"),
    ("alic\u{0435}", "Cyrillic e"),
    ("\u{0430}\u{0440}\u{0440}\u{04cf}\u{0435}", "all-Cyrillic apple"),
    ("ali\u{200b}ce", "zero-width space"),
    ("ali\u{200c}ce", "zero-width non-joiner"),
    ("ali\u{00ad}ce", "soft hyphen"),
    ("\u{202e}ecila", "right-to-left override"),
    ("alice\u{2069}", "bidi isolate"),
    ("\u{FEFF}alice", "byte order mark"),
];

async fn look_alike_usernames_are_refused_at_sign_up_and_in_the_admin_api(backend: Backend) {
    let app = signup_app(backend).await;
    for (i, (name, what)) in LOOK_ALIKES.iter().enumerate() {
        let a = sign_up(&app, name, &format!("la{i}@example.com"), PASSWORD).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}: sign-up refuses it");
        assert!(alert_text(&a.body).is_some_and(|t| t.contains("username")), "{what}: the form says why: {}", a.body);
        assert!(app.accounts.find_user_by_login(name).await.is_err(), "{what}: no account");

        let r = app
            .client
            .post(app.url("/admin/v1/users"))
            .bearer_auth(ADMIN_KEY)
            .json(&serde_json::json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}: the admin API refuses it");
        assert!(app.accounts.find_user_by_login(name).await.is_err(), "{what}: no account");
    }
    // Plain and non-Latin single-script names are fine.
    for (i, name) in ["alice", "jos\u{00e9}", "\u{0438}\u{0432}\u{0430}\u{043d}"].iter().enumerate() {
        let r = app
            .client
            .post(app.url("/admin/v1/users"))
            .bearer_auth(ADMIN_KEY)
            .json(&serde_json::json!({"username": name, "email": format!("ok{i}@example.com")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{name} is accepted");
    }
    // The CLI and import go through the same parse: a look-alike cannot be imported either.
    let imported = app
        .accounts
        .import_user(
            CreateUser { username: "\u{0430}lice".into(), email: None, display_name: None, password: None, roles: vec![] },
            "$2b$04$abcdefghijklmnopqrstuuFQ1n5S1R0Gzj8n0I0nVg6bqf8gR4B5W",
            &ctx(),
        )
        .await;
    assert!(imported.is_err(), "a look-alike name is not imported");
    let plain = app
        .accounts
        .import_user(
            CreateUser { username: "alice2".into(), email: None, display_name: None, password: None, roles: vec![] },
            "$2b$04$abcdefghijklmnopqrstuuFQ1n5S1R0Gzj8n0I0nVg6bqf8gR4B5W",
            &ctx(),
        )
        .await;
    assert!(plain.is_ok(), "the same import with a plain name works: {plain:?}");
}

fn cookies(a: &Answer) -> Vec<String> {
    a.headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

async fn sign_up_answers_the_same_for_taken_and_free_names(backend: Backend) {
    let app = signup_app(backend).await;
    let fresh = sign_up(&app, "alice", "alice@example.com", PASSWORD).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    assert!(fresh.body.contains("Account created"), "{}", fresh.body);
    assert!(cookies(&fresh).is_empty(), "signing up signs nobody in: {:?}", cookies(&fresh));
    assert!(app.accounts.find_user_by_login("alice").await.is_ok());

    let taken = [
        ("Alice", "other@example.com", "taken username (another case)"),
        ("\u{FF41}lice", "other2@example.com", "taken username (full-width)"),
        ("newcomer", "ALICE@example.com", "taken e-mail address"),
        ("alice", "alice@example.com", "both taken"),
    ];
    for (username, email, what) in taken {
        let a = sign_up(&app, username, email, PASSWORD).await;
        assert_eq!(a.status, fresh.status, "{what}: same status");
        assert_eq!(a.body, fresh.body, "{what}: same body");
        assert_eq!(cookies(&a), cookies(&fresh), "{what}: same cookies");
    }
    assert!(app.accounts.find_user_by_login("newcomer").await.is_err(), "no account with a taken e-mail");
    let other = sign_up(&app, "bob", "bob@example.com", PASSWORD).await;
    assert_eq!((other.status, &other.body), (fresh.status, &fresh.body), "another fresh sign-up");

    // The new account signs in with its password (sign-up itself did not).
    let login = app.post_login("alice", PASSWORD).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert!(login.session_cookie().is_some());
    let events = app.accounts.audit_events(&Default::default()).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "signup_duplicate"), "taken names are audited");
}

async fn names_created_under_older_rules_still_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    // A name the old rules allowed (a zero-width space), as existing data would hold it.
    let legacy = "ali\u{200b}ce";
    let user = app.create_user("legacyuser", PASSWORD).await;
    app.accounts
        .update_user(user.id, UserUpdate { username: Some(Username::from_store(legacy.into())), ..Default::default() }, &ctx())
        .await
        .unwrap();
    let a = app.post_login(legacy, PASSWORD).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(a.session_cookie().is_some(), "the legacy name still signs in");
    // Its case-folded spelling finds it too (the look-up key did not change).
    assert_eq!(app.accounts.find_user_by_login("ALI\u{200b}CE").await.unwrap().id, user.id);
    // The plain spelling is another name, not this account.
    assert!(app.accounts.find_user_by_login("alice").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterned_passwords_are_refused_at_sign_up() {
    let app = signup_app(Backend::Sqlite).await;
    for (i, pw) in ["123456789012345", "abcdefghijklmnop", "qwertyuiopasdfgh", "1qaz2wsx3edc4rfv", "3edc4rfv5tgb6yhn7ujm", "aaaaaaaaaaaaaaa", "abcabcabcabcabc"]
        .iter()
        .enumerate()
    {
        let a = sign_up(&app, &format!("pat{i}"), &format!("pat{i}@example.com"), pw).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{pw} is refused");
        let why = alert_text(&a.body).unwrap_or_default();
        // Some are on the blocklist too (which is checked first); these two are not.
        if ["123456789012345", "3edc4rfv5tgb6yhn7ujm"].contains(pw) {
            assert!(why.contains("pattern"), "{pw}: {why}");
        } else {
            assert!(why.contains("pattern") || why.contains("common"), "{pw}: {why}");
        }
        assert!(app.accounts.find_user_by_login(&format!("pat{i}")).await.is_err());
    }
    let ok = sign_up(&app, "patok", "patok@example.com", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(app.accounts.find_user_by_login("patok").await.is_ok());
}

async fn the_setup_link_stops_working_once_an_administrator_exists(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.accounts.ensure_setup_token().await.unwrap().expect("no administrator yet");
    let link = format!("/setup?token={}", token.expose());
    let page = app.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "the link works while no administrator exists");
    let csrf = field_value(&page.body, "csrf_token").unwrap();

    // An administrator is created another way (as `tessera user create --role admin` does).
    app.accounts
        .create_user(
            CreateUser {
                username: "cliadmin".into(),
                email: None,
                display_name: None,
                password: Some(Password::new(PASSWORD)),
                roles: vec![ROLE_ADMIN.into()],
            },
            &ctx(),
        )
        .await
        .unwrap();

    let again = app.get(&link).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN, "the form is no longer shown");
    let form = [
        ("csrf_token", csrf.as_str()),
        ("token", token.expose()),
        ("username", "intruder"),
        ("email", ""),
        ("name", ""),
        ("password", PASSWORD),
    ];
    let post = Answer::of(app.client.post(app.url("/setup")).form(&form).send().await.unwrap()).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN, "{}", post.body);
    assert!(set_cookie_header(&post.headers, "tessera_session").is_none(), "nobody is signed in");
    assert!(app.accounts.find_user_by_login("intruder").await.is_err(), "no second administrator");
    assert!(!app.accounts.setup_token_valid(&token).await.unwrap());
}
