//! Address verification and sign-in by e-mail over HTTP (mail read from the outbox
//! directory): a verification link confirms the address once, from the asking browser or for
//! the signed-in owner, and never for a stranger's client; a mailed code or link signs in
//! once and only once, only in the browser that asked; sign-in by e-mail is off unless
//! configured.

use crate::helpers::{bare_client, client, cookie_value, field_value, set_cookie_header, spawn_app, spawn_app_with_env};
use crate::mail::{create_with_email, outbox_files};
use crate::smtp_sink;
use reqwest::StatusCode;
use std::time::Duration;
use tessera_testkit::Backend;

on_both_backends!(
    a_verification_link_confirms_the_address_once,
    a_mailed_code_signs_in_once_and_only_in_the_asking_browser,
    a_mailed_link_signs_in_once,
    sign_in_by_email_is_off_unless_configured,
    sign_up_mails_a_link_that_works_after_signing_in_and_a_new_address_is_unconfirmed,
    a_mailed_code_asks_for_the_second_factor_of_a_user_who_has_one,
);

async fn a_verification_link_confirms_the_address_once(backend: Backend) {
    let app = spawn_app(backend).await;
    create_with_email(&app, "vera", "vera@example.com").await;
    let browser = client();
    // Sign in with this browser (its cookie store keeps the session).
    let login = browser.get(format!("{}/login", app.base)).send().await.unwrap().text().await.unwrap();
    let csrf = field_value(&login, "csrf_token").unwrap();
    let res = browser
        .post(format!("{}/login", app.base))
        .form(&[("csrf_token", csrf.as_str()), ("return_to", "/account"), ("username", "vera"), ("password", crate::helpers::PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let account = browser.get(format!("{}/account", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(account.contains("(not confirmed)"), "{account}");
    let csrf = field_value(&account, "csrf_token").unwrap();
    let sent = browser.post(format!("{}/account/email/verify", app.base)).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(sent.headers()["location"], "/account?done=verification_sent");

    let mail = outbox_files(app.data_dir(), 1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1);
    let link = smtp_sink::link(&mail[0], &format!("{}/email/verify?token=", app.issuer)).expect("a verification link to the issuer");
    let local = link.replace(&app.issuer, &app.base);
    let token = link.rsplit_once("token=").unwrap().1.to_owned();

    // A stranger's client (no session, another browser) is asked to sign in and uses nothing up.
    let stranger = bare_client().get(&local).send().await.unwrap().text().await.unwrap();
    assert!(stranger.contains("Sign in to confirm"), "{stranger}");
    let stranger_post = client();
    let page = stranger_post.get(format!("{}/login/forgot", app.base)).send().await.unwrap().text().await.unwrap();
    let anon_csrf = field_value(&page, "csrf_token").unwrap();
    let refused = stranger_post.post(format!("{}/email/verify", app.base)).form(&[("csrf_token", anon_csrf.as_str()), ("token", token.as_str())]).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SEE_OTHER, "sent to sign in");
    let user = app.accounts.find_user_by_login("vera").await.unwrap();
    assert!(!user.email_verified(), "not yet");

    // The asking browser confirms, once.
    let form = browser.get(&local).send().await.unwrap().text().await.unwrap();
    let csrf = field_value(&form, "csrf_token").expect("a confirm button");
    let done = browser.post(format!("{}/email/verify", app.base)).form(&[("csrf_token", csrf.as_str()), ("token", token.as_str())]).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("Address confirmed"));
    assert!(app.accounts.find_user_by_login("vera").await.unwrap().email_verified());
    let again = browser.post(format!("{}/email/verify", app.base)).form(&[("csrf_token", csrf.as_str()), ("token", token.as_str())]).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "single use");
    let account = browser.get(format!("{}/account", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(account.contains("(confirmed)"));
    // Confirmed addresses are not sent another link.
    let csrf = field_value(&account, "csrf_token").unwrap();
    let not_sent = browser.post(format!("{}/account/email/verify", app.base)).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(not_sent.headers()["location"], "/account?done=verification_not_sent");
}

/// Asks for a sign-in code for `address` with `c`; the code page.
async fn ask_code(c: &reqwest::Client, base: &str, address: &str) -> String {
    let page = c.get(format!("{base}/login/email")).send().await.unwrap().text().await.unwrap();
    let csrf = field_value(&page, "csrf_token").expect("the sign-in-by-e-mail form");
    let res = c.post(format!("{base}/login/email")).form(&[("csrf_token", csrf.as_str()), ("return_to", "/account"), ("email", address)]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// The six-digit code on its own line of a mail.
fn code_in(mail: &str) -> String {
    let text = smtp_sink::unquote(mail);
    text.lines().map(str::trim).find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit())).expect("a code line").to_owned()
}

async fn post_code(c: &reqwest::Client, base: &str, page: &str, code: &str) -> reqwest::Response {
    let csrf = field_value(page, "csrf_token").unwrap();
    c.post(format!("{base}/login/email/code")).form(&[("csrf_token", csrf.as_str()), ("return_to", "/account"), ("code", code)]).send().await.unwrap()
}

async fn a_mailed_code_signs_in_once_and_only_in_the_asking_browser(backend: Backend) {
    let app = spawn_app_with_env(backend, &[("TESSERA_EMAIL__MAGIC_LINK", "true")]).await;
    create_with_email(&app, "mona", "mona@example.com").await;
    let login = app.client.get(format!("{}/login", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("Email me a sign-in code"));

    let browser = client();
    let page = ask_code(&browser, &app.base, "mona@example.com").await;
    assert!(page.contains("If an account with that address exists"));
    let mail = outbox_files(app.data_dir(), 1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1);
    let code = code_in(&mail[0]);

    // Another browser typing the right code gets nowhere (and uses nothing up).
    let other = client();
    let other_page = other.get(format!("{}/login/email", app.base)).send().await.unwrap().text().await.unwrap();
    let refused = post_code(&other, &app.base, &other_page, &code).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie_header(refused.headers(), "tessera_session").is_none());

    // A wrong code first, then the right one: signed in.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(post_code(&browser, &app.base, &page, wrong).await.status(), StatusCode::BAD_REQUEST);
    let ok = post_code(&browser, &app.base, &page, &code).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()["location"], "/account");
    let session = cookie_value(&set_cookie_header(ok.headers(), "tessera_session").expect("a session"));
    let account = crate::helpers::account_with_cookie(&app.base, &session).await;
    assert_eq!(account.status, StatusCode::OK);
    let sessions = app.accounts.list_sessions(app.accounts.find_user_by_login("mona").await.unwrap().id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].amr, vec!["otp".to_owned()]);

    // Once only: the code, and the link of the same mail, are used up.
    let again = post_code(&browser, &app.base, &page, &code).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let link = smtp_sink::link(&mail[0], &format!("{}/login/email/link?token=", app.issuer)).unwrap().replace(&app.issuer, &app.base);
    assert_eq!(browser.get(&link).send().await.unwrap().status(), StatusCode::BAD_REQUEST);

    // An unknown address gets the same page and no mail.
    let unknown = ask_code(&client(), &app.base, "nobody@example.com").await;
    let strip = |b: &str| b.replace(&field_value(b, "csrf_token").unwrap_or_default(), "");
    assert_eq!(strip(&unknown), strip(&page));
    assert_eq!(outbox_files(app.data_dir(), 2, Duration::from_secs(3)).await.len(), 1);
}

async fn a_mailed_link_signs_in_once(backend: Backend) {
    let app = spawn_app_with_env(backend, &[("TESSERA_EMAIL__MAGIC_LINK", "true")]).await;
    create_with_email(&app, "lina", "lina@example.com").await;
    let browser = client();
    ask_code(&browser, &app.base, "lina").await;
    let mail = outbox_files(app.data_dir(), 1, Duration::from_secs(10)).await;
    let link = smtp_sink::link(&mail[0], &format!("{}/login/email/link?token=", app.issuer)).expect("a sign-in link").replace(&app.issuer, &app.base);
    let token = link.rsplit_once("token=").unwrap().1.to_owned();

    // A scanner's GET: a page, no session, nothing used up.
    let scan = bare_client().get(&link).send().await.unwrap();
    assert_eq!(scan.status(), StatusCode::OK);
    assert!(set_cookie_header(scan.headers(), "tessera_session").is_none());
    assert!(scan.text().await.unwrap().contains("browser where you asked"));

    let page = browser.get(&link).send().await.unwrap().text().await.unwrap();
    let csrf = field_value(&page, "csrf_token").expect("a sign-in button");
    let form = [("csrf_token", csrf.as_str()), ("token", token.as_str())];
    let ok = browser.post(format!("{}/login/email/link", app.base)).form(&form).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie_header(ok.headers(), "tessera_session").is_some());
    let again = browser.post(format!("{}/login/email/link", app.base)).form(&form).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "once only");
    assert!(set_cookie_header(again.headers(), "tessera_session").is_none());
}

async fn sign_in_by_email_is_off_unless_configured(backend: Backend) {
    let app = spawn_app(backend).await;
    let login = app.client.get(format!("{}/login", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(!login.contains("Email me a sign-in code"));
    assert!(login.contains("Forgot password?"));
    assert_eq!(app.client.get(format!("{}/login/email", app.base)).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(app.client.get(format!("{}/login/email/link?token=abc", app.base)).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

const ADMIN_KEY: &str = "mail-admin-key-0123456789-abcdefghijklmnopqrst";

async fn sign_up_mails_a_link_that_works_after_signing_in_and_a_new_address_is_unconfirmed(backend: Backend) {
    let app = spawn_app_with_env(backend, &[("TESSERA_SIGNUP__ENABLED", "true"), ("TESSERA_ADMIN__API_KEY", ADMIN_KEY)]).await;
    let browser = client();
    let page = browser.get(format!("{}/signup", app.base)).send().await.unwrap().text().await.unwrap();
    let csrf = field_value(&page, "csrf_token").unwrap();
    let form = [
        ("csrf_token", csrf.as_str()),
        ("return_to", "/account"),
        ("username", "sam"),
        ("email", "sam@example.com"),
        ("name", ""),
        ("password", crate::helpers::PASSWORD),
    ];
    let res = browser.post(format!("{}/signup", app.base)).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mail = outbox_files(app.data_dir(), 1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1, "a verification link at sign-up");
    let link = smtp_sink::link(&mail[0], &format!("{}/email/verify?token=", app.issuer)).unwrap().replace(&app.issuer, &app.base);
    // Sign-up sets no cookie, so the link asks the new user to sign in first …
    assert!(browser.get(&link).send().await.unwrap().text().await.unwrap().contains("Sign in to confirm"));
    let session = crate::durability::sign_in(&app.base, "sam").await;
    // … and then works for them (in any browser where they are signed in).
    let signed_in = bare_client().get(&link).header("cookie", format!("tessera_session={session}")).send().await.unwrap().text().await.unwrap();
    let csrf = field_value(&signed_in, "csrf_token").expect("a confirm button for the signed-in owner");
    let token = link.rsplit_once("token=").unwrap().1.to_owned();
    let done = bare_client()
        .post(format!("{}/email/verify", app.base))
        .header("cookie", format!("tessera_session={session}"))
        .form(&[("csrf_token", csrf.as_str()), ("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let user = app.accounts.find_user_by_login("sam").await.unwrap();
    assert!(user.email_verified());

    // The admin API shows it, and an address change makes the new address unconfirmed, mails
    // it a link and tells the old one.
    let url = format!("{}/admin/v1/users/{}", app.base, user.id);
    let view: serde_json::Value = bare_client().get(&url).bearer_auth(ADMIN_KEY).send().await.unwrap().json().await.unwrap();
    assert_eq!(view["email_verified"], true);
    let patched = bare_client().patch(&url).bearer_auth(ADMIN_KEY).json(&serde_json::json!({"email": "sam.new@example.com"})).send().await.unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let view: serde_json::Value = patched.json().await.unwrap();
    assert_eq!((view["email"].as_str(), view["email_verified"].as_bool()), (Some("sam.new@example.com"), Some(false)));
    let mail = outbox_files(app.data_dir(), 3, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 3);
    assert!(mail.iter().any(|m| m.contains("To: sam@example.com") && m.contains("Your e-mail address was changed")), "the old address is told");
    assert!(mail.iter().any(|m| m.contains("To: sam.new@example.com") && m.contains("/email/verify?token=")), "the new one gets a link");
}

async fn a_mailed_code_asks_for_the_second_factor_of_a_user_who_has_one(backend: Backend) {
    let app = spawn_app_with_env(backend, &[("TESSERA_EMAIL__MAGIC_LINK", "true")]).await;
    create_with_email(&app, "tess", "tess@example.com").await;
    assert_eq!(app.post_login("tess", crate::helpers::PASSWORD).await.status, StatusCode::SEE_OTHER);
    let (secret, _) = crate::mfa::enrol_totp(&app).await;
    let csrf = field_value(&app.get("/account").await.body, "csrf_token").unwrap();
    app.client.post(app.url("/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();

    let page = ask_code(&app.client, &app.base, "tess@example.com").await;
    let mail = outbox_files(app.data_dir(), 1, Duration::from_secs(10)).await;
    let res = post_code(&app.client, &app.base, &page, &code_in(&mail[0])).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/login/mfa"), "on to the second factor");
    assert!(set_cookie_header(res.headers(), "tessera_session").is_none(), "no session before it");
    let mfa = app.get("/login/mfa?return_to=/account").await;
    assert_eq!(mfa.status, StatusCode::OK, "{mfa:?}");
    let csrf = field_value(&mfa.body, "csrf_token").unwrap();
    // The enrolment used the current step; the next one's code is accepted (±1 step).
    let code = crate::mfa::totp_at(&secret, crate::mfa::now_unix() + 30);
    let done = app.client.post(app.url("/login/mfa")).form(&[("csrf_token", csrf.as_str()), ("return_to", "/account"), ("method", "totp"), ("code", code.as_str())]).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie_header(done.headers(), "tessera_session").is_some(), "signed in after the second factor");
    let user = app.accounts.find_user_by_login("tess").await.unwrap();
    let sessions = app.accounts.list_sessions(user.id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].amr, vec!["otp".to_owned()], "a mailbox and an app are both possession: one factor's amr");
}
