//! The settings table: small values the agent keeps across its restarts
//! (which tenant admission served last, so that fairness survives a crash).

use rusqlite::{OptionalExtension, params};

use super::connection::{Connection, database};
use crate::error::Result;

/// A setting of the agent's own (e.g. which tenant was served last).
pub fn setting(db: &Connection, key: &str) -> Result<Option<String>> {
    db.raw()
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .optional()
        .map_err(database)
}

/// Stores a setting.
pub fn set_setting(db: &Connection, key: &str, value: &str) -> Result<()> {
    db.raw()
        .execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
            params![key, value],
        )
        .map_err(database)?;
    Ok(())
}
