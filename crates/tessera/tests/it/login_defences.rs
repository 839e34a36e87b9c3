//! Issue 11, holes 3, 4, 5 and 8 over HTTP: sign-in attempts are reserved before they are
//! checked (a concurrent burst cannot outrun the limit, solved puzzles keep its pace),
//! RP-initiated logout does not sign out another user's session without confirmation,
//! cross-site form posts are refused, and an unparsable `X-Forwarded-For` entry does not make
//! the client the proxy.

use crate::helpers::{Answer, PASSWORD, TestApp, bare_client, cookie_value, field_value, spawn_app_with_env};
use crate::oauth::{REDIRECT_URI, Rp, authorize, redeem};
use crate::throttle::{TRUST_LOCAL_PROXY, WRONG, challenge_of, retry_after, solve_blocking};
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use std::sync::Arc;
use std::time::Instant;
use tessera_core::oauth::client::ClientRegistration;
use tessera_core::store::AuditQuery;
use tessera_testkit::Backend;

on_both_backends!(
    a_concurrent_burst_is_checked_only_up_to_the_account_limit,
    solved_puzzles_do_not_lift_the_account_limit,
    wrong_second_factor_codes_in_a_burst_are_reserved_first,
    logout_with_another_users_hint_asks_first,
    cross_site_form_posts_are_refused,
    unparsable_forwarded_for_entries_do_not_hide_the_client,
    https_issuers_use_host_prefixed_cookies,
);

const LOGOUT_URI: &str = "https://rp.example/bye";

/// `POST /login` from client `ip` with the CSRF pair of `app.client`, and extra headers.
async fn login(app: &TestApp, csrf: &str, ip: &str, password: &str, pow: Option<(&str, &str)>) -> Answer {
    let mut form = vec![("csrf_token", csrf), ("return_to", "/account"), ("username", "alice"), ("password", password)];
    if let Some((c, n)) = pow {
        form.push(("pow_challenge", c));
        form.push(("pow_nonce", n));
    }
    Answer::of(app.client.post(app.url("/login")).header("x-forwarded-for", ip).form(&form).send().await.unwrap()).await
}

/// The audit events of `kind`.
async fn events(app: &TestApp, kind: &str) -> Vec<tessera_core::audit::AuditEvent> {
    let mut all = app.accounts.audit_events(&AuditQuery { limit: 10_000, ..AuditQuery::default() }).await.unwrap();
    all.retain(|e| e.kind == kind);
    all
}

/// 60 wrong passwords for one account at once (from 60 addresses, so only the account's
/// limit applies): at most `account_failures` (5) are checked, the rest are 429s; the right
/// password sent while the burst is still in flight, once the limit is reached, does not
/// sign in.
async fn a_concurrent_burst_is_checked_only_up_to_the_account_limit(backend: Backend) {
    const LIMIT: usize = 5;
    let app = Arc::new(spawn_app_with_env(backend, &[TRUST_LOCAL_PROXY, ("TESSERA_THROTTLE__ACCOUNT_FAILURES", "5")]).await);
    app.create_user("alice", PASSWORD).await;
    let (_, _, csrf) = app.get_login().await;
    let limit_reached = Arc::new(tokio::sync::Notify::new());
    let barrier = Arc::new(tokio::sync::Barrier::new(61));
    let mut wrong = Vec::new();
    for i in 0..60 {
        let (app, csrf, barrier, limit_reached) = (app.clone(), csrf.clone(), barrier.clone(), limit_reached.clone());
        wrong.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = login(&app, &csrf, &format!("203.0.113.{}", i + 1), WRONG, None).await;
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                limit_reached.notify_one();
            }
            r.status
        }));
    }
    // The right password, hidden in the burst: sent as soon as the first 429 shows the limit
    // is taken (or after the burst, if none comes).
    let right = {
        let (app, csrf, barrier, limit_reached) = (app.clone(), csrf.clone(), barrier.clone(), limit_reached.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            tokio::select! {
                _ = limit_reached.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
            }
            login(&app, &csrf, "198.51.100.1", PASSWORD, None).await
        })
    };
    let mut statuses = Vec::new();
    for t in wrong {
        statuses.push(t.await.unwrap());
    }
    let right = right.await.unwrap();
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked + refused, 60, "only 401s and 429s: {statuses:?}");
    assert!(checked <= LIMIT, "{checked} of 60 concurrent guesses were checked; the limit is {LIMIT}");
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS, "the right password after the limit is refused: {}", right.body);
    assert!(right.session_cookie().is_none());
    assert!(retry_after(&right) >= 1);
    // The audit log agrees: no more password checks failed than the limit.
    let failed = events(&app, "login_failed").await;
    assert!(failed.len() <= LIMIT, "{} login_failed events", failed.len());
    assert!(events(&app, "login_succeeded").await.is_empty());
}

/// Native code solves a puzzle in milliseconds: solved puzzles admit attempts only at the
/// limit's pace (one after the first 5 s delay, then 10 s, …), never a guess per puzzle.
async fn solved_puzzles_do_not_lift_the_account_limit(backend: Backend) {
    let app = spawn_app_with_env(backend, &[TRUST_LOCAL_PROXY, ("TESSERA_THROTTLE__ACCOUNT_FAILURES", "3"), ("TESSERA_THROTTLE__POW_BITS", "8")]).await;
    app.create_user("alice", PASSWORD).await;
    let (_, _, csrf) = app.get_login().await;
    for i in 0..3 {
        assert_eq!(login(&app, &csrf, &format!("203.0.113.{i}"), WRONG, None).await.status, StatusCode::UNAUTHORIZED);
    }
    let started = Instant::now();
    let mut r = login(&app, &csrf, "203.0.113.50", WRONG, None).await;
    let mut statuses = Vec::new();
    for i in 0..30 {
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        let (token, bits) = challenge_of(&r.body).expect("a challenge");
        let (nonce, _) = solve_blocking(&token, bits).await;
        r = login(&app, &csrf, &format!("203.0.113.{}", 60 + i), WRONG, Some((&token, &nonce))).await;
        statuses.push(r.status.as_u16());
        if r.status == StatusCode::UNAUTHORIZED {
            // A checked guess: the next attempt starts from a plain refusal again.
            r = login(&app, &csrf, "203.0.113.50", WRONG, None).await;
        }
    }
    let elapsed = started.elapsed().as_secs();
    // Slots open 5, 15, 35, 75 … s after the limit was reached.
    let (mut slots, mut at) = (0, 5);
    while at <= elapsed + 1 {
        slots += 1;
        at += 5 << slots;
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= slots, "{checked} solved guesses were checked in {elapsed} s (at most {slots} slots opened): {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");

    // The real user with a solved puzzle gets in once the pace allows (Retry-After).
    let r = login(&app, &csrf, "198.51.100.9", PASSWORD, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let (token, bits) = challenge_of(&r.body).expect("a challenge");
    let (nonce, _) = solve_blocking(&token, bits).await;
    tokio::time::sleep(std::time::Duration::from_secs(retry_after(&r))).await;
    let r = login(&app, &csrf, "198.51.100.9", PASSWORD, Some((&token, &nonce))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the right password with a solved puzzle at the limit's pace: {}", r.body);
}

/// Second-factor codes are reserved like passwords: a burst of wrong TOTP codes for one
/// pending sign-in checks at most the account's limit.
async fn wrong_second_factor_codes_in_a_burst_are_reserved_first(backend: Backend) {
    let app = Arc::new(spawn_app_with_env(backend, &[("TESSERA_THROTTLE__ACCOUNT_FAILURES", "3")]).await);
    app.create_user("alice", PASSWORD).await;
    // Enrol a TOTP through the account flows (the second-factor page then asks for it).
    let signed = app.post_login("alice", PASSWORD).await;
    let session = cookie_value(&signed.session_cookie().unwrap());
    let who = app.accounts.authenticate(&tessera_core::secret::SecretToken::from_client(&session).unwrap(), &crate::helpers::ctx()).await.unwrap();
    let setup = app.accounts.begin_totp_enrolment(&who).await.unwrap();
    let secret = setup.manual_key.replace(' ', "");
    app.accounts.confirm_totp_enrolment(&who, &totp_now(&secret), &crate::helpers::ctx()).await.unwrap();
    // A new browser: password, then the code form.
    let c = crate::helpers::client();
    let page = Answer::of(c.get(app.url("/login")).send().await.unwrap()).await;
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let form = [("csrf_token", csrf.as_str()), ("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)];
    let r = Answer::of(c.post(app.url("/login")).form(&form).send().await.unwrap()).await;
    assert_eq!(r.location(), Some("/login/mfa?return_to=%2Faccount"), "{r:?}");
    let page = Answer::of(c.get(app.url("/login/mfa?return_to=%2Faccount")).send().await.unwrap()).await;
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let good = totp_now(&secret);
    let wrong = if good == "111111" { "222222" } else { "111111" };
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (c, app, csrf, barrier) = (c.clone(), app.clone(), csrf.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let form = [("csrf_token", csrf.as_str()), ("return_to", "/account"), ("method", "totp"), ("code", wrong)];
                c.post(app.url("/login/mfa")).form(&form).send().await.unwrap().status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let checked = events(&app, "mfa_failed").await.len();
    assert!(checked <= 3, "{checked} of 20 concurrent codes were checked (limit 3): {statuses:?}");
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
}

/// Undoes the HTML escaping of an attribute value.
fn unescape(s: &str) -> String {
    [("&#61;", "="), ("&#43;", "+"), ("&#34;", "\""), ("&quot;", "\""), ("&#39;", "'"), ("&#60;", "<"), ("&lt;", "<"), ("&#62;", ">"), ("&gt;", ">"), ("&#38;", "&"), ("&amp;", "&")]
        .iter()
        .fold(s.to_owned(), |acc, (from, to)| acc.replace(from, to))
}

/// The current TOTP code of a base32 secret.
fn totp_now(secret_b32: &str) -> String {
    tessera_testkit::totp_code(secret_b32, std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
}

/// Registers a confidential client that skips consent, with a post-logout URI.
async fn register(app: &TestApp) -> Rp {
    let (client, secret) = app
        .provider
        .register_client(ClientRegistration {
            name: "Relying Party".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            post_logout_redirect_uris: vec![LOGOUT_URI.into()],
            skip_consent: true,
            ..ClientRegistration::default()
        })
        .await
        .unwrap();
    Rp { id: client.id.to_string(), secret: secret.unwrap() }
}

/// Signs `username` in with a fresh client; returns the session cookie's value.
async fn session_of(app: &TestApp, username: &str) -> String {
    let c = crate::helpers::client();
    let page = Answer::of(c.get(app.url("/login")).send().await.unwrap()).await;
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let form = [("csrf_token", csrf.as_str()), ("return_to", "/account"), ("username", username), ("password", PASSWORD)];
    let r = Answer::of(c.post(app.url("/login")).form(&form).send().await.unwrap()).await;
    cookie_value(&r.session_cookie().expect("signed in"))
}

/// `GET /oauth2/logout` with `params`, as the browser holding `session`, cross-site.
async fn logout_get(app: &TestApp, session: &str, params: &[(&str, &str)]) -> Answer {
    let url = reqwest::Url::parse_with_params(&app.url("/oauth2/logout"), params).unwrap();
    let rb = bare_client().get(url).header(COOKIE, format!("tessera_session={session}")).header("sec-fetch-site", "cross-site");
    Answer::of(rb.send().await.unwrap()).await
}

/// Hole 4: bob's valid ID token as `id_token_hint` does not sign alice out without asking;
/// alice's own fresh hint does (the RP's normal logout); confirming on the page does.
async fn logout_with_another_users_hint_asks_first(backend: Backend) {
    let app = spawn_app_with_env(backend, &[]).await;
    let rp = register(&app).await;
    app.create_user("alice", PASSWORD).await;
    app.create_user("bob", PASSWORD).await;
    let alice = session_of(&app, "alice").await;
    let bob = session_of(&app, "bob").await;
    let id_token_of = |session: String| {
        let (app, rp) = (&app, &rp);
        async move {
            let code = authorize(&app.base, &app.issuer, rp, &session, "openid").await;
            let (status, body) = redeem(&app.base, rp, &code).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["id_token"].as_str().unwrap().to_owned()
        }
    };
    let bobs_token = id_token_of(bob.clone()).await;
    let alices_token = id_token_of(alice.clone()).await;

    // Another user's hint: a confirmation page, alice stays signed in.
    let params = [("id_token_hint", bobs_token.as_str()), ("post_logout_redirect_uri", LOGOUT_URI), ("state", "s1")];
    let r = logout_get(&app, &alice, &params).await;
    assert_eq!(r.status, StatusCode::OK, "a confirmation page, not a redirect: {r:?}");
    assert!(r.location().is_none());
    assert!(r.body.contains("action=\"/oauth2/logout/confirm\""), "{}", r.body);
    assert_eq!(app.account_with_cookie(&alice).await.status, StatusCode::OK, "alice is still signed in");
    // The page's form needs alice's session-bound token and a same-origin POST.
    let csrf = field_value(&r.body, "csrf_token").unwrap();
    let request = unescape(&field_value(&r.body, "request").unwrap());
    let confirm = |origin: &'static str| {
        bare_client()
            .post(app.url("/oauth2/logout/confirm"))
            .header(COOKIE, format!("tessera_session={alice}"))
            .header("origin", origin)
            .form(&[("csrf_token", csrf.as_str()), ("request", request.as_str()), ("decision", "logout")])
            .send()
    };
    let refused = confirm("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.account_with_cookie(&alice).await.status, StatusCode::OK, "a cross-site confirmation is refused");

    // No hint at all, and a hint without a redirect: asked too.
    let r = logout_get(&app, &alice, &[("client_id", rp.id.as_str()), ("post_logout_redirect_uri", LOGOUT_URI)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.location().is_none());
    assert_eq!(app.account_with_cookie(&alice).await.status, StatusCode::OK);

    // Alice's own fresh hint: the RP's logout proceeds without a page.
    let params = [("id_token_hint", alices_token.as_str()), ("post_logout_redirect_uri", LOGOUT_URI), ("state", "s2")];
    let r = logout_get(&app, &alice, &params).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(r.location(), Some(&*format!("{LOGOUT_URI}?state=s2")));
    assert_ne!(app.account_with_cookie(&alice).await.status, StatusCode::OK, "alice signed out");
    // Bob was never touched.
    assert_eq!(app.account_with_cookie(&bob).await.status, StatusCode::OK);

    // Confirming on the page (same origin, session-bound token) signs out.
    let r = logout_get(&app, &bob, &[("client_id", rp.id.as_str()), ("post_logout_redirect_uri", LOGOUT_URI)]).await;
    let csrf = field_value(&r.body, "csrf_token").unwrap();
    let request = unescape(&field_value(&r.body, "request").unwrap());
    let done = bare_client()
        .post(app.url("/oauth2/logout/confirm"))
        .header(COOKIE, format!("tessera_session={bob}"))
        .header("origin", app.issuer.as_str())
        .form(&[("csrf_token", csrf.as_str()), ("request", request.as_str()), ("decision", "logout")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_ne!(app.account_with_cookie(&bob).await.status, StatusCode::OK, "bob confirmed and is signed out");
}

/// Hole 5: a login POST with a valid token pair but another site's `Origin`, or
/// `Sec-Fetch-Site: cross-site`, is refused; so are the other forms; the back-channel OAuth
/// endpoints stay callable cross-origin.
async fn cross_site_form_posts_are_refused(backend: Backend) {
    let app = spawn_app_with_env(backend, &[]).await;
    app.create_user("alice", PASSWORD).await;
    let (_, _, csrf) = app.get_login().await;
    let form = [("csrf_token", csrf.as_str()), ("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)];
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = Answer::of(app.client.post(app.url("/login")).header(name, value).form(&form).send().await.unwrap()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {value}: {r:?}");
        assert!(r.session_cookie().is_none(), "{name}: {value}: signed in");
    }
    let r = Answer::of(app.client.post(app.url("/login")).header("origin", app.issuer.as_str()).header("sec-fetch-site", "same-origin").form(&form).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the same-origin sign-in works: {r:?}");
    let session = cookie_value(&r.session_cookie().unwrap());

    // Every other form of the pages: refused cross-site before the handler runs.
    for path in [
        "/logout",
        "/login/mfa",
        "/login/passkey/options",
        "/account/password",
        "/account/totp",
        "/account/recovery-codes",
        "/account/sessions/x/end",
        "/signup",
        "/setup",
        "/oauth2/consent",
        "/oauth2/logout/confirm",
        "/password/strength",
    ] {
        let r = bare_client()
            .post(app.url(path))
            .header(COOKIE, format!("tessera_session={session}"))
            .header("origin", "https://evil.example")
            .form(&[("csrf_token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.account_with_cookie(&session).await.status, StatusCode::OK, "still signed in after the cross-site logout");
    // The back channel is not a browser form: another Origin changes nothing there.
    for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        let r = bare_client().post(app.url(path)).header("origin", "https://evil.example").form(&[("token", "x")]).send().await.unwrap();
        assert_ne!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(r.headers().get("content-type").unwrap().to_str().unwrap().starts_with("application/json"), "{path}");
    }
}

/// Hole 8: behind the trusted proxy, garbage ahead of (or among) the forwarded addresses
/// does not turn the client into the proxy: the audit log names the client.
async fn unparsable_forwarded_for_entries_do_not_hide_the_client(backend: Backend) {
    let app = spawn_app_with_env(backend, &[TRUST_LOCAL_PROXY]).await;
    app.create_user("alice", PASSWORD).await;
    let (_, _, csrf) = app.get_login().await;
    for (i, xff) in ["garbage, 203.0.113.71", "203.0.113.72, unknown", "_obfuscated, 203.0.113.73:5555"].iter().enumerate() {
        let r = login(&app, &csrf, xff, WRONG, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let failed = events(&app, "login_failed").await;
        let ip = failed.first().and_then(|e| e.ip.clone());
        assert_eq!(ip.as_deref(), Some(&*format!("203.0.113.7{}", i + 1)), "{xff}: {failed:?}");
    }
}

/// Over https (TLS terminated in front of the server) every cookie of ours is `__Host-`
/// prefixed, and an unprefixed cookie of the same name (which a sibling subdomain could
/// plant) is not read: a planted CSRF anchor cannot be paired with its token.
async fn https_issuers_use_host_prefixed_cookies(backend: Backend) {
    let app = spawn_app_with_env(backend, &[("TESSERA_ISSUER", "https://id.example.test")]).await;
    app.create_user("alice", PASSWORD).await;
    let page = Answer::of(bare_client().get(app.url("/login")).send().await.unwrap()).await;
    let set = crate::helpers::set_cookie_header(&page.headers, "__Host-tessera_csrf").expect("a __Host- CSRF cookie");
    assert!(set.contains("; Secure") && set.contains("Path=/") && !set.contains("Domain"), "{set}");
    assert!(crate::helpers::set_cookie_header(&page.headers, "tessera_csrf").is_none());
    let anchor = cookie_value(&set);
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let form = [("csrf_token", csrf.as_str()), ("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)];
    let post = |cookie: String| bare_client().post(app.url("/login")).header(COOKIE, cookie).header("origin", "https://id.example.test").form(&form).send();
    // The same pair under the plain name (planted): refused.
    let r = Answer::of(post(format!("tessera_csrf={anchor}")).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    // A planted plain cookie next to the real one does not shadow it.
    let r = Answer::of(post(format!("tessera_csrf=planted-planted-planted-planted-1; __Host-tessera_csrf={anchor}")).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    let session = crate::helpers::set_cookie_header(&r.headers, "__Host-tessera_session").expect("a __Host- session cookie");
    assert!(session.contains("; Secure") && session.contains("HttpOnly"), "{session}");
    let account = bare_client().get(app.url("/account")).header(COOKIE, format!("__Host-tessera_session={}", cookie_value(&session))).send().await.unwrap();
    assert_eq!(account.status(), StatusCode::OK);
    let plain = bare_client().get(app.url("/account")).header(COOKIE, format!("tessera_session={}", cookie_value(&session))).send().await.unwrap();
    assert_ne!(plain.status(), StatusCode::OK, "the unprefixed name is not a session");
}
