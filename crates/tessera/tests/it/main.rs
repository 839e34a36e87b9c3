//! HTTP tests: the application is built in-process on a fresh database (SQLite and
//! PostgreSQL) and driven over real sockets with `reqwest`; the durability tests run the
//! real binary and kill it with SIGKILL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

/// Runs each `async fn NAME(backend: Backend)` on SQLite and on PostgreSQL, as
/// `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(tessera_testkit::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(tessera_testkit::Backend::Postgres).await;
                }
            )*
        }
    };
}

mod helpers;

mod bad_input;
mod durability;
mod headers;
mod login;
mod oauth;
mod sessions;
mod attacks;
mod fuzz;
mod throttle;
mod forms;
mod mfa;
mod admin_access;
mod grant_lifecycle;
mod consent;
mod cross_client;
mod hygiene;
mod file_modes;
mod backchannel_targets;
mod login_defences;
mod token_exchange;
mod body_limit;
mod error_codes;
mod faults;
mod outbox;
mod mail;
mod mail_flows;
mod smtp_sink;
mod federation;
