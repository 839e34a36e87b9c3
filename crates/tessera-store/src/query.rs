//! The tail every statement shares: run it on a pool or in a transaction, then map the
//! driver's error with [`db`]. [`Exec::exec`] answers how many rows a statement changed;
//! [`Fetch`] reads typed rows (`query_as`) or single values (`query_scalar`); [`commit`]
//! ends a write transaction; [`take_by_hash`] binds the single use of a one-time record.

use crate::backend::db;
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Transaction, Type};
use tessera_core::secret::TokenHash;
use tessera_core::store::StoreError;
use time::OffsetDateTime;

/// How many rows a statement changed, on either backend.
pub(crate) trait RowsAffected {
    /// The number of rows inserted, updated or deleted.
    fn changed(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn changed(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn changed(&self) -> u64 {
        self.rows_affected()
    }
}

/// Runs a statement that returns no rows.
pub(crate) trait Exec<DB: Database> {
    /// Runs it on `on` (a pool or `&mut *tx`); how many rows it changed.
    async fn exec<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<u64, StoreError>;
}

impl<'q, DB, A> Exec<DB> for Query<'q, DB, A>
where
    DB: Database,
    DB::QueryResult: RowsAffected,
    A: 'q + Send + IntoArguments<DB>,
{
    async fn exec<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<u64, StoreError> {
        self.execute(on).await.map(|r| r.changed()).map_err(db)
    }
}

/// Runs a query and reads what it returns.
pub(crate) trait Fetch<DB: Database> {
    /// One returned row or value.
    type Item;
    /// The row, if the query returned one.
    async fn optional<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Option<Self::Item>, StoreError>;
    /// The row the query always returns.
    async fn one<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Self::Item, StoreError>;
    /// Every returned row.
    async fn all<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Vec<Self::Item>, StoreError>;
}

impl<'q, DB, O, A> Fetch<DB> for QueryAs<'q, DB, O, A>
where
    DB: Database,
    A: 'q + Send + IntoArguments<DB>,
    O: Send + Unpin + for<'r> FromRow<'r, DB::Row>,
{
    type Item = O;
    async fn optional<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Option<O>, StoreError> {
        self.fetch_optional(on).await.map_err(db)
    }
    async fn one<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<O, StoreError> {
        self.fetch_one(on).await.map_err(db)
    }
    async fn all<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Vec<O>, StoreError> {
        self.fetch_all(on).await.map_err(db)
    }
}

impl<'q, DB, O, A> Fetch<DB> for QueryScalar<'q, DB, O, A>
where
    DB: Database,
    A: 'q + Send + IntoArguments<DB>,
    O: Send + Unpin,
    (O,): for<'r> FromRow<'r, DB::Row>,
{
    type Item = O;
    async fn optional<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Option<O>, StoreError> {
        self.fetch_optional(on).await.map_err(db)
    }
    async fn one<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<O, StoreError> {
        self.fetch_one(on).await.map_err(db)
    }
    async fn all<'c, E: Executor<'c, Database = DB>>(self, on: E) -> Result<Vec<O>, StoreError> {
        self.fetch_all(on).await.map_err(db)
    }
}

/// Commits a write transaction.
pub(crate) async fn commit<DB: Database>(tx: Transaction<'_, DB>) -> Result<(), StoreError> {
    tx.commit().await.map_err(db)
}

/// A query that takes a one-time record stored under a hash: `sql` is a `DELETE … RETURNING`
/// whose `$1` is the hash and `$2` the time now (the record must not have expired); the
/// caller binds any further parameters and reads the row with [`Fetch::optional`].
pub(crate) fn take_by_hash<DB, R>(sql: &'static str, hash: &TokenHash, now: OffsetDateTime) -> QueryAs<'static, DB, R, DB::Arguments>
where
    DB: Database,
    R: for<'r> FromRow<'r, DB::Row>,
    Vec<u8>: Encode<'static, DB> + Type<DB>,
    i64: Encode<'static, DB> + Type<DB>,
{
    sqlx::query_as(sql).bind(hash.as_bytes().to_vec()).bind(now.unix_timestamp())
}
