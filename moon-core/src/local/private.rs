//! Files only their owner can read. `MOON_HOME` holds job output, plans and
//! secrets of one user, so its directories are 0700 and its files 0600,
//! whatever the umask of the notebook or shell that made them: moon sets the
//! mode where it creates each file rather than changing a process-wide umask
//! it does not own.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of every directory moon makes under its home.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file moon makes under its home.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parents with mode 0700.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Creates the home directory if needed and makes sure only its owner can
/// enter it: a home made by hand, or by a moon before homes were private,
/// is narrowed to 0700 when it is ours.
pub fn ensure_home(home: &Path) -> io::Result<()> {
    create_dir_all(home)?;
    let metadata = std::fs::metadata(home)?;
    if metadata.mode() & 0o077 != 0 && metadata.uid() == nix::unistd::geteuid().as_raw() {
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Options that create a file with mode 0600 (the mode applies only when
/// the file is created).
pub fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Opens `path` for appending, creating it 0600.
pub fn append(path: &Path) -> io::Result<File> {
    open_options().create(true).append(true).open(path)
}

/// Writes `bytes` to `path` (created 0600, truncated if it exists).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    open_options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?
        .write_all(bytes)
}

/// Which directory and database a home path stands for. A home removed
/// and made again at the same path is another instance: an agent of the old
/// one must not serve the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomeInstance {
    home: (u64, u64),
    database: (u64, u64),
}

impl HomeInstance {
    /// The instance `home` and `database` are now; an error if either is gone.
    pub fn of(home: &Path, database: &Path) -> io::Result<HomeInstance> {
        let identity = |path: &Path| std::fs::metadata(path).map(|m| (m.dev(), m.ino()));
        Ok(HomeInstance {
            home: identity(home)?,
            database: identity(database)?,
        })
    }

    /// Whether `home` and `database` still are this instance.
    pub fn is_current(&self, home: &Path, database: &Path) -> bool {
        HomeInstance::of(home, database).is_ok_and(|now| now == *self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_made_open_by_hand_is_narrowed_to_its_owner() {
        let root = tempfile::tempdir().expect("tempdir");
        let home = root.path().join("home");
        std::fs::create_dir(&home).expect("mkdir");
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        ensure_home(&home).expect("ensure");
        let mode = std::fs::metadata(&home).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn files_are_created_for_their_owner_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("a/b/file");
        create_dir_all(path.parent().expect("parent")).expect("mkdir");
        write(&path, b"x").expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").mode() & 0o777;
        assert_eq!(mode(&path), FILE_MODE);
        assert_eq!(mode(&root.path().join("a")), DIR_MODE);
        assert_eq!(mode(&root.path().join("a/b")), DIR_MODE);
    }

    #[test]
    fn a_home_made_again_is_another_instance() {
        let root = tempfile::tempdir().expect("tempdir");
        let home = root.path().join("home");
        let database = home.join("state.db");
        std::fs::create_dir(&home).expect("mkdir");
        std::fs::write(&database, b"").expect("db");
        let first = HomeInstance::of(&home, &database).expect("instance");
        assert!(first.is_current(&home, &database));
        // Keep the old directory alive under another name so that the new
        // one cannot get its inode number back.
        std::fs::rename(&home, root.path().join("old")).expect("move");
        assert!(!first.is_current(&home, &database), "a moved home is gone");
        std::fs::create_dir(&home).expect("mkdir again");
        std::fs::write(&database, b"").expect("db again");
        assert!(!first.is_current(&home, &database), "a new home is new");
    }
}
