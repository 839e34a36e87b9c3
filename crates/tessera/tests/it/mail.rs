//! E-mail over HTTP: the password reset journey (the link from the mail works once, only in
//! the browser that asked, and ends every session; another client's GET uses nothing up; an
//! unknown address gets the same page and no mail), and the mail outbox surviving `kill -9`
//! between accepting a reset request and sending its mail (real binary, real SMTP listener).

use crate::durability::{Scratch, Server, cli, free_port};
use crate::helpers::{PASSWORD, bare_client, client, field_value, spawn_app};
use crate::smtp_sink;
use reqwest::StatusCode;
use std::path::Path;
use std::time::Duration;
use tessera_testkit::{Backend, TestDb, execute_sql, query_i64, scratch_dir};

on_both_backends!(
    a_reset_link_works_once_in_the_asking_browser_only,
    an_unknown_address_gets_the_same_page_and_no_mail,
    fifty_requests_at_once_get_no_more_mail_than_the_address_limit,
    a_kill_before_the_mail_is_sent_loses_no_mail,
);

const NEW_PASSWORD: &str = "a fresh and rather long passphrase 42";

pub(crate) async fn create_with_email(app: &crate::helpers::TestApp, username: &str, email: &str) {
    let user = tessera_core::accounts::CreateUser {
        username: username.into(),
        email: Some(email.into()),
        display_name: None,
        password: Some(tessera_core::secret::Password::new(PASSWORD)),
        roles: vec![],
    };
    app.accounts.create_user(user, &crate::helpers::ctx()).await.unwrap();
}

/// Asks for a reset of `address` with `c` (a client with a cookie store); the page's body.
pub(crate) async fn ask_reset(c: &reqwest::Client, base: &str, address: &str) -> (StatusCode, String) {
    let page = c.get(format!("{base}/login/forgot")).send().await.unwrap().text().await.unwrap();
    let csrf = field_value(&page, "csrf_token").expect("the forgot page has a form");
    let res = c.post(format!("{base}/login/forgot")).form(&[("csrf_token", csrf.as_str()), ("email", address)]).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

/// The messages written to `<data_dir>/outbox/`, waiting up to `wait` for `n` of them.
pub(crate) async fn outbox_files(data_dir: &Path, n: usize, wait: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let files: Vec<String> = match std::fs::read_dir(data_dir.join("outbox")) {
            Ok(dir) => dir.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect(),
            Err(_) => Vec::new(),
        };
        if files.len() >= n || tokio::time::Instant::now() >= deadline {
            return files;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_reset_link_works_once_in_the_asking_browser_only(backend: Backend) {
    let app = spawn_app(backend).await;
    create_with_email(&app, "carol", "carol@example.com").await;
    let old_session = crate::durability::sign_in(&app.base, "carol").await;

    let browser = client();
    let (status, body) = ask_reset(&browser, &app.base, "Carol@Example.com").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("id=\"reset-sent\""), "{body}");
    let mail = outbox_files(app.data_dir(), 1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1, "one mail written to the outbox directory");
    assert!(mail[0].contains("To: carol@example.com"));
    let link = smtp_sink::link(&mail[0], &format!("{}/login/reset?token=", app.issuer)).expect("the mail links to the issuer");
    let local = link.replace(&app.issuer, &app.base);

    // Another client (a mail scanner, another browser) sees a page and uses nothing up.
    for _ in 0..3 {
        let scanner = bare_client().get(&local).send().await.unwrap();
        assert_eq!(scanner.status(), StatusCode::OK);
        let text = scanner.text().await.unwrap();
        assert!(text.contains("browser where you asked"), "{text}");
        assert!(field_value(&text, "password").is_none(), "no password form elsewhere");
    }
    // Another browser cannot post it either.
    let other = client();
    let page = other.get(format!("{}/login/forgot", app.base)).send().await.unwrap().text().await.unwrap();
    let csrf = field_value(&page, "csrf_token").unwrap();
    let token = link.rsplit_once("token=").unwrap().1.to_owned();
    let refused = other
        .post(format!("{}/login/reset", app.base))
        .form(&[("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(app.accounts.login("carol", &tessera_core::secret::Password::new(PASSWORD), None, &crate::helpers::ctx()).await.is_ok(), "password unchanged");

    // The asking browser gets the form and sets the password, once.
    let form = browser.get(&local).send().await.unwrap().text().await.unwrap();
    let csrf = field_value(&form, "csrf_token").expect("the reset form");
    assert_eq!(field_value(&form, "token").as_deref(), Some(token.as_str()));
    let mismatch = browser
        .post(format!("{}/login/reset", app.base))
        .form(&[("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", NEW_PASSWORD), ("confirm", "something else entirely")])
        .send()
        .await
        .unwrap();
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST, "a typo uses nothing up");
    let done = browser
        .post(format!("{}/login/reset", app.base))
        .form(&[("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("Password changed"));
    let again = browser
        .post(format!("{}/login/reset", app.base))
        .form(&[("csrf_token", csrf.as_str()), ("token", token.as_str()), ("password", "yet another long passphrase 77"), ("confirm", "yet another long passphrase 77")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "single use");
    assert_eq!(browser.get(&local).send().await.unwrap().status(), StatusCode::BAD_REQUEST, "the link is gone");

    // The old session ended; the new password signs in, the old one does not.
    let account = bare_client().get(format!("{}/account", app.base)).header("cookie", format!("tessera_session={old_session}")).send().await.unwrap();
    assert_eq!(account.status(), StatusCode::SEE_OTHER, "the old session ended");
    let ctx = crate::helpers::ctx();
    assert!(app.accounts.login("carol", &tessera_core::secret::Password::new(NEW_PASSWORD), None, &ctx).await.is_ok());
    assert!(app.accounts.login("carol", &tessera_core::secret::Password::new(PASSWORD), None, &ctx).await.is_err());
}

async fn an_unknown_address_gets_the_same_page_and_no_mail(backend: Backend) {
    let app = spawn_app(backend).await;
    create_with_email(&app, "dave", "dave@example.com").await;
    let strip = |body: &str| body.replace(&field_value(body, "csrf_token").unwrap_or_default(), "");
    let (s1, known) = ask_reset(&client(), &app.base, "dave@example.com").await;
    let (s2, unknown) = ask_reset(&client(), &app.base, "nobody@example.com").await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(strip(&known), strip(&unknown), "the same page");
    let mail = outbox_files(app.data_dir(), 2, Duration::from_secs(4)).await;
    assert_eq!(mail.len(), 1, "only the known address got mail");
    assert!(mail[0].contains("To: dave@example.com"));
    // Beyond the per-address limit: the same page, no more mail.
    for _ in 0..4 {
        let (s, page) = ask_reset(&client(), &app.base, "dave@example.com").await;
        assert_eq!((s, strip(&page)), (StatusCode::OK, strip(&known)));
    }
    let mail = outbox_files(app.data_dir(), 5, Duration::from_secs(4)).await;
    assert_eq!(mail.len(), 3, "three mails an hour per address");
}

/// Refuses every claim of a queued mail (claims are `UPDATE`s of `mail_outbox`).
fn fault(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "CREATE TRIGGER mail_fault BEFORE UPDATE ON mail_outbox BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
        Backend::Postgres => {
            "CREATE FUNCTION mail_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$; \
             CREATE TRIGGER mail_fault BEFORE UPDATE ON mail_outbox FOR EACH ROW EXECUTE FUNCTION mail_fault();"
        }
    }
}

fn repair(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "DROP TRIGGER mail_fault;",
        Backend::Postgres => "DROP TRIGGER mail_fault ON mail_outbox; DROP FUNCTION mail_fault();",
    }
}

async fn a_kill_before_the_mail_is_sent_loses_no_mail(backend: Backend) {
    let (url, _db) = TestDb::fresh_url(backend).await.unwrap();
    let dir = Scratch(scratch_dir("mail").unwrap());
    let data_dir = dir.0.as_path();
    let (smtp_port, inbox) = smtp_sink::start(0).await;
    let smtp_url = format!("smtp://127.0.0.1:{smtp_port}");
    let listen = format!("127.0.0.1:{}", free_port());
    let env = [("TESSERA_LISTEN", listen.as_str()), ("TESSERA_EMAIL__SMTP_URL", smtp_url.as_str()), ("TESSERA_EMAIL__FROM", "Tessera <id@example.com>")];
    cli(data_dir, &url, &["user", "create", "--username", "erin", "--email", "erin@example.com", "--password-stdin"], &format!("{PASSWORD}\n"));

    let first = Server::start_with_env(data_dir, &url, "serve-1.log", &env);
    execute_sql(&url, fault(backend)).await.unwrap();
    let (status, body) = ask_reset(&client(), &first.base, "erin@example.com").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(query_i64(&url, "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL").await.unwrap(), 1, "queued with the request");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(inbox.messages().is_empty(), "nothing sent while every claim fails");
    first.kill_9();
    execute_sql(&url, repair(backend)).await.unwrap();

    let second = Server::start_with_env(data_dir, &url, "serve-2.log", &env);
    for _ in 0..100 {
        if !inbox.messages().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = inbox.messages();
    assert_eq!(got.len(), 1, "the mail arrived after the restart");
    assert!(got[0].contains("To: erin@example.com") && got[0].contains("From: Tessera <id@example.com>"), "{}", got[0]);
    let issuer = format!("http://localhost:{}", listen.rsplit(':').next().unwrap());
    assert!(smtp_sink::link(&got[0], &format!("{issuer}/login/reset?token=")).is_some(), "the link points at the issuer: {}", got[0]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(inbox.messages().len(), 1, "sent once");
    assert_eq!(query_i64(&url, "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL").await.unwrap(), 0);
    assert_eq!(query_i64(&url, "SELECT COUNT(*) FROM mail_outbox WHERE sealed IS NOT NULL").await.unwrap(), 0, "a sent mail keeps no content");
    second.kill_9();
}

/// The per-address limit (3 an hour) holds when 50 browsers ask at once, as it does one at a
/// time: three mails, no more.
async fn fifty_requests_at_once_get_no_more_mail_than_the_address_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    create_with_email(&app, "dora", "dora@example.com").await;
    let asks: Vec<_> = (0..50)
        .map(|_| {
            let base = app.base.clone();
            tokio::spawn(async move { ask_reset(&client(), &base, "dora@example.com").await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for ask in asks {
        statuses.push(ask.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    // Wait for a fourth mail long enough for the mail job (every second) to have written it.
    let mail = outbox_files(app.data_dir(), 4, Duration::from_secs(6)).await;
    assert_eq!(mail.len(), 3, "the address limit holds under concurrency");
}
