//! A connection to a home's state database and its transactions: the one
//! place that opens SQLite, and the one place where rusqlite's errors become
//! moon's.

use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use rusqlite::ErrorCode;

use super::schema;
use crate::error::{DatabaseError, Error, Result};
use crate::local::private;

/// An open state database. Only the store's functions read or write through it.
pub struct Connection {
    raw: rusqlite::Connection,
}

/// Opens (creating if needed) the database of a `MOON_HOME`.
pub fn open(path: &Path) -> Result<Connection> {
    // Made 0600 before SQLite opens it: SQLite gives its -wal and -shm files
    // the database file's own mode.
    private::open_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|error| Error::io("creating", path, error))?;
    let raw = rusqlite::Connection::open(path).map_err(database)?;
    raw.busy_timeout(Duration::from_secs(30))
        .map_err(database)?;
    // WAL lets readers (watchers, `moon job ls`) run beside the agent's writes;
    // synchronous=FULL makes a committed row survive power loss, not just a crash.
    raw.pragma_update(None, "journal_mode", "WAL")
        .map_err(database)?;
    raw.pragma_update(None, "synchronous", "FULL")
        .map_err(database)?;
    schema::apply(&raw).map_err(database)?;
    Ok(Connection { raw })
}

impl Connection {
    /// Starts a transaction: what is written through it lands together on
    /// [`Transaction::commit`], or not at all if it is dropped first.
    pub fn transaction(&self) -> Result<Transaction<'_>> {
        Ok(Transaction {
            guard: self.raw.unchecked_transaction().map_err(database)?,
            connection: self,
        })
    }

    /// The rusqlite connection, for the store's own statements.
    pub(super) fn raw(&self) -> &rusqlite::Connection {
        &self.raw
    }
}

/// Writes that land together. It stands for its [`Connection`], so every
/// store function takes it as one.
pub struct Transaction<'a> {
    guard: rusqlite::Transaction<'a>,
    connection: &'a Connection,
}

impl Transaction<'_> {
    /// Makes every write of the transaction durable at once.
    pub fn commit(self) -> Result<()> {
        self.guard.commit().map_err(database)
    }
}

impl Deref for Transaction<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.connection
    }
}

/// rusqlite's error as moon's: its text, and whether another process held
/// the database past the busy timeout, so that trying again may help.
pub(super) fn database(error: rusqlite::Error) -> Error {
    let busy = matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    Error::Database(DatabaseError::new(error.to_string(), busy))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `DatabaseError` that a failed statement becomes.
    fn database_error(result: rusqlite::Result<usize>) -> DatabaseError {
        match result.map_err(database) {
            Err(Error::Database(error)) => error,
            other => panic!("not a database error: {other:?}"),
        }
    }

    #[test]
    fn a_write_that_waits_out_the_busy_timeout_is_a_busy_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        let writer = open(&path).expect("open");
        let other = open(&path).expect("open");
        other
            .raw()
            .busy_timeout(Duration::ZERO)
            .expect("busy timeout");
        let held = writer.raw().unchecked_transaction().expect("transaction");
        held.execute("INSERT INTO settings (key, value) VALUES ('a', 'b')", [])
            .expect("write");
        let error = database_error(
            other
                .raw()
                .execute("INSERT INTO settings (key, value) VALUES ('c', 'd')", []),
        );
        assert!(error.is_busy(), "{error}");
        assert_eq!(error.to_string(), "database is locked");
    }

    #[test]
    fn other_failures_are_not_busy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open(&dir.path().join("state.db")).expect("open");
        let error = database_error(db.raw().execute("INSERT INTO nowhere VALUES (1)", []));
        assert!(!error.is_busy());
        assert!(error.message().contains("no such table"), "{error}");
    }
}
