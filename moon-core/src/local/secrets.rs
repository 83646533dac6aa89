//! Tenant secrets on this machine: one JSON file per secret, mode 0600, in
//! `MOON_HOME/secrets/<tenant>/`, directories of mode 0700. Nothing else
//! under `MOON_HOME` holds a value: the state database and a replica's plan
//! hold the secret's name and file, and each replica's supervisor reads the
//! file in memory right before it starts the replica.

use std::collections::BTreeMap;
use std::fs::{DirBuilder, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::Layout;
use super::private;
use crate::backend::ApplyOutcome;
use crate::error::{Error, Result};
use crate::secret::{SecretData, SecretInfo};
use crate::spec::Role;

const PRIVATE_DIR: u32 = private::DIR_MODE;
const EXTENSION: &str = "json";

/// A secret a replica's variables come from, as its plan names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretSource {
    /// `tenant/name`, for messages.
    pub secret: String,
    /// Its file.
    pub file: PathBuf,
}

/// The secrets a replica of `role` reads its variables from, in the role's order.
pub fn sources(layout: &Layout, tenant: &str, role: &Role) -> Vec<SecretSource> {
    role.env_from
        .iter()
        .map(|source| SecretSource {
            secret: format!("{tenant}/{}", source.secret),
            file: layout.secret_file(tenant, &source.secret),
        })
        .collect()
}

/// The variables of every source, later ones over earlier ones. The error
/// names the secret that could not be read and why, never a value.
pub fn resolve(sources: &[SecretSource]) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut variables = BTreeMap::new();
    for source in sources {
        let bytes = std::fs::read(&source.file).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => format!("secret {:?} not found", source.secret),
            _ => format!("cannot read secret {:?}: {error}", source.secret),
        })?;
        // serde_json's messages give positions, not text, but a secret's
        // file is not worth a chance: the message names the secret only.
        let data: BTreeMap<String, String> = serde_json::from_slice(&bytes)
            .map_err(|_| format!("secret {:?} is not a file moon wrote", source.secret))?;
        variables.extend(data);
    }
    Ok(variables)
}

/// Whether the tenant has the secret.
pub fn exists(layout: &Layout, tenant: &str, name: &str) -> bool {
    layout.secret_file(tenant, name).is_file()
}

/// Writes a secret (validated already) so that readers see the old file or
/// the new one, and no one but the owner can read either.
pub fn write(layout: &Layout, tenant: &str, name: &str, data: &SecretData) -> Result<ApplyOutcome> {
    let dir = layout.tenant_secrets_dir(tenant);
    private_dir(&layout.secrets_dir())?;
    private_dir(&dir)?;
    let file = layout.secret_file(tenant, name);
    let outcome = match std::fs::read(&file) {
        Ok(bytes) => match serde_json::from_slice::<BTreeMap<String, String>>(&bytes) {
            Ok(stored) if &stored == data.expose() => return Ok(ApplyOutcome::Unchanged),
            _ => ApplyOutcome::Updated,
        },
        Err(error) if error.kind() == io::ErrorKind::NotFound => ApplyOutcome::Created,
        Err(error) => return Err(Error::io("reading the secret", &file, error)),
    };
    let bytes = serde_json::to_vec(data.expose()).expect("a map of strings serializes");
    let partial = dir.join(format!(".{name}.partial"));
    write_private(&partial, &file, &bytes)
        .map_err(|error| Error::io("writing the secret", &file, error))?;
    Ok(outcome)
}

/// A tenant's secrets and their keys, by name.
pub fn list(layout: &Layout, tenant: &str) -> Result<Vec<SecretInfo>> {
    let dir = layout.tenant_secrets_dir(tenant);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(Error::io("listing secrets", &dir, error)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|error| Error::io("listing secrets", &dir, error))?
            .path();
        if path.extension().and_then(|ext| ext.to_str()) != Some(EXTENSION) {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|stem| stem.to_str()) else {
            continue;
        };
        let bytes =
            std::fs::read(&path).map_err(|error| Error::io("reading the secret", &path, error))?;
        let keys = serde_json::from_slice::<BTreeMap<String, String>>(&bytes)
            .map(|data| data.into_keys().collect())
            .unwrap_or_default();
        found.push(SecretInfo {
            tenant: tenant.to_string(),
            name: name.to_string(),
            keys,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Deletes a secret; `NotFound` if there is none.
pub fn delete(layout: &Layout, tenant: &str, name: &str) -> Result<()> {
    let file = layout.secret_file(tenant, name);
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(Error::NotFound {
            kind: "secret",
            name: format!("{tenant}/{name}"),
        }),
        Err(error) => Err(Error::io("deleting the secret", &file, error)),
    }
}

/// Makes `dir` if needed and leaves it private, whatever mode it had.
fn private_dir(dir: &Path) -> Result<()> {
    match DirBuilder::new().mode(PRIVATE_DIR).create(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(Error::io("creating", dir, error)),
    }
    std::fs::set_permissions(dir, Permissions::from_mode(PRIVATE_DIR))
        .map_err(|error| Error::io("restricting", dir, error))
}

/// Writes `bytes` to `path` through `partial`, a file created 0600 so that
/// the bytes are never readable by others, not even for an instant.
fn write_private(partial: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    match std::fs::remove_file(partial) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut file = private::open_options()
        .write(true)
        .create_new(true)
        .open(partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(partial, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::EnvFrom;

    fn data(value: &str) -> SecretData {
        SecretData::new(BTreeMap::from([("TOKEN".to_string(), value.to_string())]))
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_secret_is_a_private_file_in_private_directories() {
        let home = tempfile::tempdir().unwrap();
        let layout = Layout::new(home.path());
        assert_eq!(
            write(&layout, "vision", "wandb", &data("one")).unwrap(),
            ApplyOutcome::Created
        );
        assert_eq!(mode(&layout.secrets_dir()), 0o700);
        assert_eq!(mode(&layout.tenant_secrets_dir("vision")), 0o700);
        assert_eq!(mode(&layout.secret_file("vision", "wandb")), 0o600);
        assert_eq!(
            write(&layout, "vision", "wandb", &data("one")).unwrap(),
            ApplyOutcome::Unchanged
        );
        assert_eq!(
            write(&layout, "vision", "wandb", &data("two")).unwrap(),
            ApplyOutcome::Updated
        );
        assert_eq!(mode(&layout.secret_file("vision", "wandb")), 0o600);
        let listed = list(&layout, "vision").unwrap();
        assert_eq!(
            listed,
            [SecretInfo {
                tenant: "vision".into(),
                name: "wandb".into(),
                keys: vec!["TOKEN".into()],
            }]
        );
        let mut role = Role::new("worker", 1, &["true"]);
        role.env_from.push(EnvFrom {
            secret: "wandb".into(),
        });
        let resolved = resolve(&sources(&layout, "vision", &role)).unwrap();
        assert_eq!(resolved["TOKEN"], "two");
        delete(&layout, "vision", "wandb").unwrap();
        assert!(matches!(
            delete(&layout, "vision", "wandb"),
            Err(Error::NotFound { kind: "secret", name }) if name == "vision/wandb"
        ));
        assert_eq!(
            resolve(&sources(&layout, "vision", &role)).unwrap_err(),
            "secret \"vision/wandb\" not found"
        );
    }

    #[test]
    fn loose_directories_are_made_private_again() {
        let home = tempfile::tempdir().unwrap();
        let layout = Layout::new(home.path());
        std::fs::create_dir(layout.secrets_dir()).unwrap();
        std::fs::set_permissions(layout.secrets_dir(), Permissions::from_mode(0o755)).unwrap();
        write(&layout, "vision", "wandb", &data("one")).unwrap();
        assert_eq!(mode(&layout.secrets_dir()), 0o700);
    }
}
