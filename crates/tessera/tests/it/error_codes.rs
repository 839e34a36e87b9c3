//! Protocol error codes and descriptions are what the RFCs say: `request` and `request_uri`
//! get `request_not_supported` / `request_uri_not_supported` (OIDC Core §3.1.2.6), and every
//! `error_description`, in JSON or in a redirect, keeps to RFC 6749's `%x20-21 / %x23-5B /
//! %x5D-7E` (no `"`, no `\`, no non-ASCII) however odd the request was.

use crate::helpers::{bare_client, spawn_app};
use crate::oauth::{REDIRECT_URI, Rp, pkce};
use reqwest::StatusCode;
use tessera_core::oauth::client::ClientRegistration;
use tessera_testkit::Backend;

fn rfc6749_safe(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// The query of the redirect back to the client (an error, when the request was bad), as
/// pairs; `None` when the answer went elsewhere (e.g. to the login page).
async fn authorize_error(base: &str, rp: &Rp, extra: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    let challenge = pkce().1;
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", rp.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid"),
        ("state", "s1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(n, _)| n != k);
        params.push((k, v));
    }
    let url = reqwest::Url::parse_with_params(&format!("{base}/oauth2/authorize"), &params).unwrap();
    let res = bare_client().get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{extra:?}");
    let location = res.headers().get(reqwest::header::LOCATION).unwrap().to_str().unwrap().to_owned();
    assert!(location.is_ascii(), "{location}");
    location
        .starts_with(REDIRECT_URI)
        .then(|| reqwest::Url::parse(&location).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
}

fn get<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_objects_get_their_own_error_codes_and_descriptions_stay_rfc6749_safe() {
    let app = spawn_app(Backend::Sqlite).await;
    let (client, secret) = app
        .provider
        .register_client(ClientRegistration {
            name: "RP".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            skip_consent: true,
            ..ClientRegistration::default()
        })
        .await
        .unwrap();
    let rp = Rp { id: client.id.to_string(), secret: secret.unwrap() };

    let q = authorize_error(&app.base, &rp, &[("request", "eyJhbGciOiJub25lIn0.e30.")]).await.unwrap();
    assert_eq!(get(&q, "error"), Some("request_not_supported"), "{q:?}");
    assert_eq!(get(&q, "state"), Some("s1"));
    let q = authorize_error(&app.base, &rp, &[("request_uri", "https://rp.example/request.jwt")]).await.unwrap();
    assert_eq!(get(&q, "error"), Some("request_uri_not_supported"), "{q:?}");
    // A plain bad request keeps invalid_request.
    let q = authorize_error(&app.base, &rp, &[("code_challenge_method", "plain")]).await.unwrap();
    assert_eq!(get(&q, "error"), Some("invalid_request"), "{q:?}");

    // Odd values echoed into descriptions: quotes, backslashes, non-ASCII, controls.
    let nasty = ["co\"de", "c\\o\\de", "códe ✓", "tab\there", "x\u{7f}y"];
    let mut described = 0;
    for v in nasty {
        for name in ["response_type", "scope", "code_challenge_method", "prompt", "response_mode", "max_age", "acr_values", "resource"] {
            let Some(q) = authorize_error(&app.base, &rp, &[(name, v)]).await else { continue };
            let Some(desc) = get(&q, "error_description") else { continue };
            described += 1;
            assert!(rfc6749_safe(desc), "{name}={v:?}: error_description {desc:?}");
            assert!(get(&q, "error").is_some_and(rfc6749_safe));
        }
        for form in [
            vec![("grant_type", v)],
            vec![("grant_type", "authorization_code"), ("code", v), ("redirect_uri", REDIRECT_URI), ("code_verifier", v)],
            vec![("grant_type", "refresh_token"), ("refresh_token", v), ("scope", v)],
            vec![("grant_type", "client_credentials"), ("scope", v), ("resource", v)],
        ] {
            let (status, body) = crate::oauth::post_as(&app.base, "/oauth2/token", &rp, &form).await;
            assert!(status.is_client_error(), "{form:?}: {status} {body}");
            let desc = body["error_description"].as_str().unwrap_or_else(|| panic!("{form:?}: {body}"));
            assert!(rfc6749_safe(desc), "{form:?}: error_description {desc:?}");
        }
    }
    assert!(described >= nasty.len() * 3, "too few authorization errors were checked: {described}");
}
