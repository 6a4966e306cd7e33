//! Where durable state lives ([`StateLocation`]): a directory, for the
//! embedded SQLite store, or a PostgreSQL database named by its URL. What
//! `--state` takes; opened here for `elmbox run`, `elmbox state` and
//! `elmbox serve` alike.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Result;

use super::sqlite::SqliteStore;
use super::store::{without_password, StateStore};

/// A state directory, or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// The embedded store: one SQLite database in a directory of its own.
    Directory(PathBuf),
    /// A database by its URL, `postgres://user:password@host:port/db` (or
    /// `postgresql://…`, and any parameter libpq's URLs take).
    Postgres(String),
}

impl StateLocation {
    /// A `postgres://` or `postgresql://` URL names a database; anything
    /// else is a directory.
    pub fn parse(text: impl Into<OsString>) -> StateLocation {
        let text = text.into();
        match text.to_str() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                StateLocation::Postgres(url.to_string())
            }
            _ => StateLocation::Directory(PathBuf::from(text)),
        }
    }

    /// Opens the store for this process to run apps in: a directory is
    /// made if need be, and locked; a database's schema is created or
    /// migrated.
    pub fn open(&self) -> Result<Arc<dyn StateStore>> {
        Ok(match self {
            StateLocation::Directory(dir) => Arc::new(SqliteStore::open(dir)?),
            StateLocation::Postgres(url) => postgres_store(url, false)?,
        })
    }

    /// Opens the store to read it, beside a process that may be running
    /// its apps (`elmbox state`).
    pub fn open_read_only(&self) -> Result<Arc<dyn StateStore>> {
        Ok(match self {
            StateLocation::Directory(dir) => Arc::new(SqliteStore::open_read_only(dir)?),
            StateLocation::Postgres(url) => postgres_store(url, true)?,
        })
    }
}

#[cfg(feature = "postgres")]
fn postgres_store(url: &str, read_only: bool) -> Result<Arc<dyn StateStore>> {
    use super::postgres::PostgresStore;
    Ok(match read_only {
        false => Arc::new(PostgresStore::open(url)?),
        true => Arc::new(PostgresStore::open_read_only(url)?),
    })
}

#[cfg(not(feature = "postgres"))]
fn postgres_store(url: &str, _read_only: bool) -> Result<Arc<dyn StateStore>> {
    Err(crate::error::Error::BadState {
        location: without_password(url),
        reason: "this build of elmbox has no PostgreSQL store (the `postgres` feature of the \
                 elmbox crate)"
            .into(),
    })
}

impl From<OsString> for StateLocation {
    fn from(text: OsString) -> Self {
        StateLocation::parse(text)
    }
}

impl From<&str> for StateLocation {
    fn from(text: &str) -> Self {
        StateLocation::parse(text)
    }
}

/// A database's URL is shown without its password.
impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::Directory(dir) => write!(f, "{}", dir.display()),
            StateLocation::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_database_and_anything_else_a_directory() {
        for url in [
            "postgres://h/db",
            "postgresql://u@h:5433/db?sslmode=disable",
        ] {
            assert_eq!(
                StateLocation::parse(url),
                StateLocation::Postgres(url.into())
            );
        }
        for dir in ["state", "/var/lib/elmbox", "postgres:/x", "./postgres://x"] {
            assert_eq!(
                StateLocation::parse(dir),
                StateLocation::Directory(dir.into())
            );
        }
    }

    #[test]
    fn a_url_is_shown_without_its_password() {
        for (url, shown) in [
            ("postgres://u:s3cret@h:5432/db", "postgres://u@h:5432/db"),
            ("postgres://u:s3cret@x/y?z@h/db", "postgres://u@h/db"),
            ("postgresql://u@h/db", "postgresql://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            (
                "postgres://u@h/db?password=s3cret&sslmode=disable",
                "postgres://u@h/db?sslmode=disable",
            ),
            ("postgres://u@h/db?password=s3cret", "postgres://u@h/db"),
            ("postgres://:s3cret@h/db", "postgres://@h/db"),
        ] {
            assert_eq!(without_password(url), shown, "{url}");
            let location = StateLocation::parse(url);
            assert!(!location.to_string().contains("s3cret"), "{url}");
        }
    }
}
