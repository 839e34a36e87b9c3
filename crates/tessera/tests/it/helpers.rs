//! `spawn_app`: an in-process Tessera on a fresh database and a random port, with a
//! cookie-keeping, non-redirecting client and typed helpers for the pages.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tessera::app::Application;
use tessera::config::{Config, load_settings};
use tessera_core::accounts::{Accounts, CreateUser};
use tessera_core::oauth::provider::Provider;
use tessera_core::secret::Password;
use tessera_core::session::RequestContext;
use tessera_core::user::User;
use tessera_testkit::{Backend, CleanupGuard, TestDb, scratch_dir};
use tokio::sync::oneshot;

/// A password long enough for the default rules.
pub const PASSWORD: &str = "correct horse battery staple";

/// A running application.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Client with a cookie store and no redirect following.
    pub client: reqwest::Client,
    /// The application's account flows.
    pub accounts: Accounts,
    /// The application's OAuth provider.
    #[allow(dead_code)]
    pub provider: Provider,
    /// The issuer URL.
    #[allow(dead_code)]
    pub issuer: String,
    /// The application's credential vault.
    #[allow(dead_code)]
    pub vault: tessera_core::vault::Vault,
    /// Which backend it runs on.
    #[allow(dead_code)]
    pub backend: Backend,
    data_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    _db: CleanupGuard,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Installs the TLS crypto provider the binary installs in `main`.
pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The environment that makes a cheap, isolated server on `database_url`.
pub fn test_env(data_dir: &std::path::Path, database_url: &str) -> BTreeMap<String, String> {
    [
        ("TESSERA_LISTEN", "127.0.0.1:0".to_owned()),
        ("TESSERA_DATA_DIR", data_dir.display().to_string()),
        ("TESSERA_DATABASE_URL", database_url.to_owned()),
        ("TESSERA_PASSWORD__MEMORY_KIB", "1024".to_owned()),
        ("TESSERA_PASSWORD__ITERATIONS", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A client that keeps cookies and does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A client without a cookie store (cookies are sent by hand).
pub fn bare_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Builds and starts the application on a fresh database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with_env(backend, &[]).await
}

/// Like [`spawn_app`], with extra `TESSERA_*` environment settings (which win over the
/// test defaults), e.g. `("TESSERA_SIGNUP__ENABLED", "true")`.
pub async fn spawn_app_with_env(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    spawn_app_with_clock(backend, extra, std::sync::Arc::new(tessera_core::clock::SystemClock)).await
}

/// Like [`spawn_app_with_env`], with every "now" of the server read from `clock` (a
/// `ManualClock` lets a test move time forward).
pub async fn spawn_app_with_clock(backend: Backend, extra: &[(&str, &str)], clock: tessera_core::clock::SharedClock) -> TestApp {
    install_crypto();
    let (url, cleanup) = TestDb::fresh_url(backend).await.expect("fresh database");
    let data_dir = scratch_dir("http").unwrap();
    let mut env = test_env(&data_dir, &url);
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let config = Config::from_settings(load_settings(None, &env).unwrap()).unwrap();
    let app = Application::build_with_clock(config, clock).await.expect("application builds");
    let base = format!("http://{}", app.local_addr());
    let accounts = app.accounts().clone();
    let provider = app.provider().clone();
    let issuer = app.issuer().to_owned();
    let vault = app.vault().expect("the application has a credential vault").clone();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move {
                let _ = rx.await;
            })
            .await;
    });
    TestApp { base, client: client(), accounts, provider, issuer, vault, backend, data_dir, shutdown: Some(tx), _db: cleanup }
}

/// The request context of test actions taken outside HTTP.
pub fn ctx() -> RequestContext {
    RequestContext::new(None, Some("tessera-tests"))
}

/// Scrapes `name="NAME" value="…"` from a page.
pub fn field_value(body: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = body.find(&needle)? + needle.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

/// The text of the `role="alert"` element, if any.
pub fn alert_text(body: &str) -> Option<String> {
    let at = body.find("role=\"alert\"")?;
    let open = at + body[at..].find('>')? + 1;
    let close = open + body[open..].find('<')?;
    Some(body[open..close].to_owned())
}

/// The `Set-Cookie` header setting cookie `name`, if any.
pub fn set_cookie_header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value a `Set-Cookie` header sets.
pub fn cookie_value(set_cookie: &str) -> String {
    let first = set_cookie.split(';').next().unwrap_or("");
    first.split_once('=').map(|(_, v)| v.to_owned()).unwrap_or_default()
}

/// A finished response: status, headers, body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub async fn of(res: reqwest::Response) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap_or_default();
        Self { status, headers, body }
    }

    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.headers.get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The session cookie this response sets, if any.
    pub fn session_cookie(&self) -> Option<String> {
        set_cookie_header(&self.headers, "tessera_session")
    }
}

impl TestApp {
    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` with this app's client.
    pub async fn get(&self, path: &str) -> Answer {
        Answer::of(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    /// `GET /login`: status, body and the form's CSRF token.
    pub async fn get_login(&self) -> (StatusCode, String, String) {
        let a = self.get("/login").await;
        let csrf = field_value(&a.body, "csrf_token").expect("login form has a csrf_token");
        (a.status, a.body, csrf)
    }

    /// `POST /login` with exactly these form fields.
    pub async fn post_login_form(&self, fields: &[(&str, &str)]) -> Answer {
        Answer::of(self.client.post(self.url("/login")).form(fields).send().await.unwrap()).await
    }

    /// Signs in through the login form (fetching it first for the CSRF token).
    pub async fn post_login(&self, username: &str, password: &str) -> Answer {
        let (_, _, csrf) = self.get_login().await;
        self.post_login_form(&[("csrf_token", &csrf), ("return_to", "/account"), ("username", username), ("password", password)])
            .await
    }

    /// Creates a user with a password through the account flows.
    pub async fn create_user(&self, username: &str, password: &str) -> User {
        self.accounts
            .create_user(
                CreateUser {
                    username: username.into(),
                    email: None,
                    display_name: None,
                    password: Some(Password::new(password)),
                    roles: vec![],
                },
                &ctx(),
            )
            .await
            .unwrap()
    }

    /// `GET /account` with only this session cookie, through a cookie-less client.
    pub async fn account_with_cookie(&self, session: &str) -> Answer {
        account_with_cookie(&self.base, session).await
    }
}

/// `GET {base}/account` sending only `tessera_session=<session>`.
pub async fn account_with_cookie(base: &str, session: &str) -> Answer {
    let res = bare_client()
        .get(format!("{base}/account"))
        .header(reqwest::header::COOKIE, format!("tessera_session={session}"))
        .send()
        .await
        .unwrap();
    Answer::of(res).await
}
