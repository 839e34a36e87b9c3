//! Brute-force defences over HTTP, on both backends (SPEC §1.7): per-account proof-of-work
//! challenges, per-IP growing delays with `429 Retry-After`, no permanent lockout, and the
//! `login_throttled` audit events. The server trusts `127.0.0.1/32` as a proxy, so each
//! request's `X-Forwarded-For` is its client IP.

use crate::helpers::{Answer, PASSWORD, TestApp, field_value, spawn_app_with_env};
use aws_lc_rs::digest;
use reqwest::StatusCode;
use std::time::{Duration, Instant};
use tessera_core::store::AuditQuery;
use tessera_testkit::Backend;

on_both_backends!(
    brute_force_on_one_account_ends_in_a_challenge_the_user_can_solve,
    password_spray_is_throttled_per_ip,
    ipv6_clients_are_counted_per_64,
    ip_delay_lifts_after_waiting_retry_after,
    account_challenge_lifts_for_a_client_that_waits,
);

pub(crate) const WRONG: &str = "wrong wrong wrong wrong";
pub(crate) const TRUST_LOCAL_PROXY: (&str, &str) = ("TESSERA_SERVER__TRUSTED_PROXIES", "127.0.0.1/32");

/// A client behind the trusted proxy: one CSRF anchor (the app's cookie store), one IP.
struct Attempts<'a> {
    app: &'a TestApp,
    csrf: String,
}

impl<'a> Attempts<'a> {
    async fn new(app: &'a TestApp) -> Self {
        let (_, _, csrf) = app.get_login().await;
        Self { app, csrf }
    }

    /// `POST /login` from client `ip`, with an optional `(challenge, nonce)`.
    async fn login(&self, ip: &str, username: &str, password: &str, pow: Option<(&str, &str)>) -> Answer {
        let mut form = vec![("csrf_token", self.csrf.as_str()), ("return_to", "/account"), ("username", username), ("password", password)];
        if let Some((c, n)) = pow {
            form.push(("pow_challenge", c));
            form.push(("pow_nonce", n));
        }
        let res = self.app.client.post(self.app.url("/login")).header("x-forwarded-for", ip).form(&form).send().await.unwrap();
        Answer::of(res).await
    }
}

/// The numeric `Retry-After` of a 429.
pub(crate) fn retry_after(a: &Answer) -> u64 {
    let v = a.headers.get("retry-after").unwrap_or_else(|| panic!("429 without Retry-After: {:?}", a.headers));
    v.to_str().unwrap().parse().unwrap_or_else(|_| panic!("Retry-After is not a number of seconds: {v:?}"))
}

/// The value of attribute `name` in an HTML tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')?;
    Some(tag[start..start + end].to_owned())
}

/// The proof-of-work challenge of a login page: the hidden `pow_challenge` input's value and
/// `data-bits`, checking the page also has the `pow_nonce` input and loads `/static/pow.js`.
pub(crate) fn challenge_of(body: &str) -> Option<(String, u8)> {
    let at = body.find("name=\"pow_challenge\"")?;
    let start = body[..at].rfind("<input")?;
    let end = at + body[at..].find('>')?;
    let tag = &body[start..end];
    let token = attr(tag, "value")?;
    let bits = attr(tag, "data-bits")?.parse().ok()?;
    assert!(body.contains("name=\"pow_nonce\""), "challenge page without a pow_nonce input");
    assert!(body.contains("src=\"/static/pow.js\""), "challenge page without /static/pow.js");
    Some((token, bits))
}

/// Leading zero bits of a digest.
fn zero_bits(d: &[u8]) -> u32 {
    let mut n = 0;
    for b in d {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// What `/static/pow.js` does: the first nonce `n` (decimal) such that
/// SHA-256(challenge ":" n) starts with `bits` zero bits.
fn solve(challenge: &str, bits: u8) -> String {
    let mut buf = Vec::with_capacity(challenge.len() + 24);
    for n in 0u64.. {
        buf.clear();
        buf.extend_from_slice(challenge.as_bytes());
        buf.push(b':');
        buf.extend_from_slice(n.to_string().as_bytes());
        if zero_bits(digest::digest(&digest::SHA256, &buf).as_ref()) >= u32::from(bits) {
            return n.to_string();
        }
    }
    unreachable!()
}

/// Solves off the runtime's worker threads (the server shares them); returns the nonce and
/// the time it took.
pub(crate) async fn solve_blocking(challenge: &str, bits: u8) -> (String, Duration) {
    let c = challenge.to_owned();
    let t = Instant::now();
    let nonce = tokio::task::spawn_blocking(move || solve(&c, bits)).await.unwrap();
    // The library's solver (what tools use) agrees with the page's algorithm.
    let lib = tessera_core::throttle::Challenge { token: challenge.to_owned(), bits };
    let elapsed = t.elapsed();
    assert_eq!(tokio::task::spawn_blocking(move || tessera_core::throttle::solve(&lib)).await.unwrap(), nonce);
    (nonce, elapsed)
}

/// The `login_throttled` audit events, oldest first.
async fn throttled_events(app: &TestApp) -> Vec<tessera_core::audit::AuditEvent> {
    let mut all = app.accounts.audit_events(&AuditQuery { limit: 10_000, ..AuditQuery::default() }).await.unwrap();
    all.retain(|e| e.kind == "login_throttled");
    all.reverse();
    all
}

/// (a) One IP guesses one account's password 101 times: 401 until the account threshold
/// (10), then 429 + Retry-After with a challenge for the rest. The real user, from another
/// IP, is challenged too, solves it and signs in once the limit's pace allows; a solution
/// cannot be used twice. (d) Each
/// refused attempt is a `login_throttled` audit event.
async fn brute_force_on_one_account_ends_in_a_challenge_the_user_can_solve(backend: Backend) {
    let app = spawn_app_with_env(backend, &[TRUST_LOCAL_PROXY]).await;
    app.create_user("alice", PASSWORD).await;
    let attacker = "203.0.113.66";
    let user_ip = "198.51.100.23";
    let a = Attempts::new(&app).await;

    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..101 {
        let r = a.login(attacker, "alice", WRONG, None).await;
        statuses.push(r.status.as_u16());
        last = Some(r);
    }
    let first_429 = statuses.iter().position(|s| *s == 429).unwrap_or_else(|| panic!("never throttled: {statuses:?}"));
    assert_eq!(first_429, 10, "401 for the first account_failures (10) attempts: {statuses:?}");
    assert!(statuses[..first_429].iter().all(|s| *s == 401), "{statuses:?}");
    // A client that waits out the (doubling) delay may guess again without a proof of work,
    // so a slow run can see a few late 401s; the guessing still ends in 429s.
    let late_401 = statuses[first_429..].iter().filter(|s| **s == 401).count();
    assert!(late_401 <= 4, "delays double with each failure: {statuses:?}");
    assert!(statuses[statuses.len() - 20..].iter().all(|s| *s == 429), "the guessing ends in 429: {statuses:?}");
    let last = last.unwrap();
    assert_eq!(last.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&last) >= 1);
    assert!(challenge_of(&last.body).is_some(), "the 429 page carries a challenge");
    assert_eq!(crate::helpers::alert_text(&last.body).as_deref(), Some("Too many failed sign-in attempts. Please wait a moment and try again."));

    // The real user, from elsewhere, with the right password: challenged too (the account
    // is under attack), not told whether the password was right.
    let r = a.login(user_ip, "alice", PASSWORD, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(retry_after(&r) >= 1);
    assert!(r.session_cookie().is_none());
    let (token, bits) = challenge_of(&r.body).expect("the login page shows a challenge");
    assert_eq!(bits, 18, "default pow_bits");
    // Page conventions survive: the form still has its CSRF token and typed username.
    assert!(field_value(&r.body, "csrf_token").is_some());

    // A wrong nonce is refused (and a new challenge handed out).
    let r = a.login(user_ip, "alice", PASSWORD, Some((&token, "not-a-solution"))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    let (nonce, took) = solve_blocking(&token, bits).await;
    eprintln!("{backend:?}: solved a {bits}-bit challenge in {took:?} (nonce {nonce})");
    let mut r = a.login(user_ip, "alice", PASSWORD, Some((&token, &nonce))).await;
    if r.status == StatusCode::TOO_MANY_REQUESTS {
        // A solution admits one attempt at the limit's pace, not at once: wait what
        // Retry-After says and solve the new challenge.
        tokio::time::sleep(Duration::from_secs(retry_after(&r))).await;
        let (token, bits) = challenge_of(&r.body).expect("a new challenge");
        let (nonce, _) = solve_blocking(&token, bits).await;
        r = a.login(user_ip, "alice", PASSWORD, Some((&token, &nonce))).await;
    }
    assert_eq!(r.status, StatusCode::SEE_OTHER, "a solved challenge lets the right password in at the limit's pace: {}", r.body);
    assert_eq!(r.location(), Some("/account"));
    let session = crate::helpers::cookie_value(&r.session_cookie().expect("a session cookie"));
    assert_eq!(app.account_with_cookie(&session).await.status, StatusCode::OK);

    // The attack goes on: the counter starts again after the successful sign-in.
    for i in 0..10 {
        let r = a.login(attacker, "alice", WRONG, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "guess {i} after the sign-in");
    }
    let r = a.login(attacker, "alice", WRONG, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    // The user's earlier solution is used up.
    let r = a.login(user_ip, "alice", PASSWORD, Some((&token, &nonce))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "a replayed solution is refused");
    assert!(r.session_cookie().is_none());

    // A fresh solution only buys one password check: with a wrong password it is a 401, and
    // the same solution with the right password is then refused.
    let (token2, bits2) = challenge_of(&r.body).expect("a new challenge");
    let (nonce2, _) = solve_blocking(&token2, bits2).await;
    // (It waits for the limit's pace, like every attempt past the threshold.)
    tokio::time::sleep(Duration::from_secs(retry_after(&r))).await;
    let r = a.login(attacker, "alice", WRONG, Some((&token2, &nonce2))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a solution lets the attempt reach the password check: {}", r.body);
    let r = a.login(user_ip, "alice", PASSWORD, Some((&token2, &nonce2))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the same solution twice is refused");
    assert!(r.session_cookie().is_none());

    // A solution for another account's challenge does not transfer.
    app.create_user("bob", PASSWORD).await;
    for _ in 0..10 {
        assert_eq!(a.login("203.0.113.67", "bob", WRONG, None).await.status, StatusCode::UNAUTHORIZED);
    }
    let r = a.login(user_ip, "bob", PASSWORD, Some((&token2, &nonce2))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "alice's challenge is not bob's");

    // (d) Audit: every refused attempt is recorded, with the client IP and the reason.
    let events = throttled_events(&app).await;
    let from_attacker = events.iter().filter(|e| e.ip.as_deref() == Some(attacker)).count();
    assert!(from_attacker >= 91 + 1, "one login_throttled per refused guess, saw {from_attacker}");
    assert!(events.iter().any(|e| e.ip.as_deref() == Some(user_ip)), "the user's challenged attempts are audited");
    for e in &events {
        assert_eq!(e.detail["reason"], "challenge_required", "{e:?}");
        assert!(e.detail["login"] == "alice" || e.detail["login"] == "bob", "{e:?}");
        let text = e.detail.to_string();
        assert!(!text.contains(PASSWORD) && !text.contains(WRONG), "no passwords in the audit log: {text}");
    }
}

/// (b) A password spray: 50 accounts, one guess each, from one IP. After ip_failures (30)
/// the IP waits (429 + Retry-After) while the same accounts from fresh IPs are not delayed.
async fn password_spray_is_throttled_per_ip(backend: Backend) {
    let app = spawn_app_with_env(backend, &[TRUST_LOCAL_PROXY]).await;
    let names: Vec<String> = (0..50).map(|i| format!("user{i:02}")).collect();
    for n in &names {
        app.create_user(n, PASSWORD).await;
    }
    let sprayer = "203.0.113.7";
    let a = Attempts::new(&app).await;
    let mut answers = Vec::new();
    for n in &names {
        answers.push(a.login(sprayer, n, WRONG, None).await);
    }
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert!(statuses[..30].iter().all(|s| *s == 401), "the first ip_failures (30) guesses are checked: {statuses:?}");
    // The delay after the 30th failure is 1 s counted from a whole-second timestamp, so the
    // 31st guess may just miss it; the 32nd cannot.
    let first_429 = statuses.iter().position(|s| *s == 429).unwrap_or_else(|| panic!("the spray was never delayed: {statuses:?}"));
    assert!((30..=31).contains(&first_429), "the IP waits after ip_failures (30) guesses: {statuses:?}");
    let throttled: Vec<&Answer> = answers.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert!(throttled.len() >= 15, "most of the rest of the spray is refused: {statuses:?}");
    for r in &throttled {
        assert!(retry_after(r) >= 1);
        assert!(challenge_of(&r.body).is_none(), "an IP delay is not an account challenge");
        assert!(r.session_cookie().is_none());
    }
    // Still delayed, even for an account it has not tried and the right password.
    let r = a.login(sprayer, "user00", PASSWORD, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    // The same accounts from fresh IPs: not delayed, no challenge (one failure each).
    for (i, n) in names.iter().enumerate() {
        let ip = format!("198.51.100.{}", 100 + i);
        let r = a.login(&ip, n, PASSWORD, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{n} from {ip}: {}", r.body);
    }
    let r = a.login("192.0.2.1", "user01", WRONG, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a fresh IP's wrong guess is checked, not delayed");

    // (d) The refused spray attempts are audited as IP delays.
    let events = throttled_events(&app).await;
    let delayed: Vec<_> = events.iter().filter(|e| e.ip.as_deref() == Some(sprayer)).collect();
    assert_eq!(delayed.len(), throttled.len() + 1);
    assert!(delayed.iter().all(|e| e.detail["reason"] == "ip_delayed"), "{delayed:?}");
}

/// IPv6 clients count per /64: rotating addresses inside one /64 does not escape the delay,
/// another /64 is not affected.
async fn ipv6_clients_are_counted_per_64(backend: Backend) {
    let app = spawn_app_with_env(backend, &[TRUST_LOCAL_PROXY, ("TESSERA_THROTTLE__IP_FAILURES", "5")]).await;
    app.create_user("alice", PASSWORD).await;
    let a = Attempts::new(&app).await;
    for i in 0..5 {
        let r = a.login(&format!("2001:db8:1:2::{:x}", i + 1), &format!("nobody{i}"), WRONG, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = a.login("2001:db8:1:2:ffff::99", "alice", PASSWORD, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "another address in the same /64 is delayed");
    assert!(retry_after(&r) >= 1);
    let r = a.login("2001:db8:1:3::1", "alice", PASSWORD, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "another /64 is not");
}

/// (c) No permanent lockout: with max_delay 2 s, an IP that keeps failing is delayed at
/// most 2 s at a time, and a client that waits what `Retry-After` says gets its attempt
/// checked.
async fn ip_delay_lifts_after_waiting_retry_after(backend: Backend) {
    let app = spawn_app_with_env(
        backend,
        &[
            TRUST_LOCAL_PROXY,
            ("TESSERA_THROTTLE__IP_FAILURES", "3"),
            ("TESSERA_THROTTLE__ACCOUNT_FAILURES", "1000"),
            ("TESSERA_THROTTLE__MAX_DELAY", "2s"),
        ],
    )
    .await;
    app.create_user("alice", PASSWORD).await;
    let ip = "203.0.113.99";
    let a = Attempts::new(&app).await;
    for _ in 0..3 {
        assert_eq!(a.login(ip, "alice", WRONG, None).await.status, StatusCode::UNAUTHORIZED);
    }
    // Delays would be 1, 2, 4, 8 s: capped at 2 s, and each wait lifts it. (A guess right at
    // a delay's end may still be checked: counters keep whole seconds.)
    let (mut waits, mut tries) = (0, 0);
    while waits < 4 {
        tries += 1;
        assert!(tries < 20, "the IP was not delayed again");
        let r = a.login(ip, "alice", WRONG, None).await;
        if r.status == StatusCode::UNAUTHORIZED {
            continue;
        }
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        let wait = retry_after(&r);
        assert!((1..=2).contains(&wait), "Retry-After {wait} within max_delay (2 s)");
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let r = a.login(ip, "alice", WRONG, None).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "wait {waits}: after waiting Retry-After ({wait} s) the attempt is checked (now Retry-After: {:?})",
            r.headers.get("retry-after")
        );
        waits += 1;
    }
    let mut r = a.login(ip, "alice", PASSWORD, None).await;
    if r.status == StatusCode::TOO_MANY_REQUESTS {
        tokio::time::sleep(Duration::from_secs(retry_after(&r))).await;
        r = a.login(ip, "alice", PASSWORD, None).await;
    }
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the user gets in after the wait");
}

/// No permanent lockout for people without JavaScript: the challenge page says "try again in
/// N seconds" (and `Throttled::ChallengeRequired` documents "solve this challenge (or
/// wait)"), so a client that waits `Retry-After` gets its attempt checked.
async fn account_challenge_lifts_for_a_client_that_waits(backend: Backend) {
    let app = spawn_app_with_env(backend, &[TRUST_LOCAL_PROXY, ("TESSERA_THROTTLE__ACCOUNT_FAILURES", "3")]).await;
    app.create_user("alice", PASSWORD).await;
    let a = Attempts::new(&app).await;
    for _ in 0..3 {
        assert_eq!(a.login("203.0.113.5", "alice", WRONG, None).await.status, StatusCode::UNAUTHORIZED);
    }
    let r = a.login("198.51.100.5", "alice", PASSWORD, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&r);
    assert!(r.body.contains(&format!("try again in {wait} seconds")), "the page tells a script-less user how long to wait");
    tokio::time::sleep(Duration::from_secs(wait + 1)).await;
    let r = a.login("198.51.100.5", "alice", PASSWORD, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "after waiting Retry-After (+1 s) the user signs in without solving the puzzle");
}
