//! The tenants table: each tenant's spec as applied, stored as JSON.

use rusqlite::{OptionalExtension, params};

use super::clock::now_ms;
use super::connection::{Connection, database};
use crate::error::{Error, Result};
use crate::spec::Tenant;

/// One tenant's spec.
pub fn tenant(db: &Connection, name: &str) -> Result<Option<Tenant>> {
    let spec: Option<String> = db
        .raw()
        .query_row(
            "SELECT spec FROM tenants WHERE name = ?1",
            params![name],
            |row| row.get(0),
        )
        .optional()
        .map_err(database)?;
    spec.map(|text| {
        serde_json::from_str(&text)
            .map_err(|error| Error::Agent(format!("stored tenant {name:?} is unreadable: {error}")))
    })
    .transpose()
}

/// Every tenant, by name.
pub fn tenants(db: &Connection) -> Result<Vec<Tenant>> {
    let mut statement = db
        .raw()
        .prepare("SELECT spec FROM tenants ORDER BY name")
        .map_err(database)?;
    let rows = statement
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(database)?;
    let mut found = Vec::new();
    for text in rows {
        found.push(
            serde_json::from_str(&text.map_err(database)?)
                .map_err(|error| Error::Agent(format!("stored tenant is unreadable: {error}")))?,
        );
    }
    Ok(found)
}

/// Stores a tenant's spec, created now or replacing the one of that name.
pub fn put_tenant(db: &Connection, tenant: &Tenant) -> Result<()> {
    let spec = serde_json::to_string(tenant).map_err(|error| Error::Agent(error.to_string()))?;
    db.raw()
        .execute(
            "INSERT INTO tenants (name, spec, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT (name) DO UPDATE SET spec = ?2, updated_ms = ?3",
            params![tenant.name, spec, now_ms()],
        )
        .map_err(database)?;
    Ok(())
}

/// Removes a tenant's row.
pub fn delete_tenant_row(db: &Connection, name: &str) -> Result<()> {
    db.raw()
        .execute("DELETE FROM tenants WHERE name = ?1", params![name])
        .map_err(database)?;
    Ok(())
}
