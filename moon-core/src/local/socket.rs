//! The agent's socket: a file inside the private home, so that only the home's
//! owner can reach it and a home made anew never reaches an old home's agent.
//! The agent also checks each peer's uid (SO_PEERCRED) before it reads a byte.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::private::FILE_MODE;

/// The longest path a Unix socket address holds (`sun_path`, less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Runs `f` with a path the kernel accepts for the socket at `path`: the
/// path itself, or, when it is too long for a socket address, the same file
/// reached through `/proc/self/fd` and a descriptor of its directory.
fn with_short_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() <= MAX_SOCKET_PATH {
        return f(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return f(path);
    };
    let dir = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    f(&short)
}

/// Binds the agent's socket at `path`, replacing a socket file a dead agent
/// left (the caller holds the agent lock, so no live agent uses it).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let listener = with_short_path(path, |path| UnixListener::bind(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Connects to the agent's socket at `path` (non-blocking).
pub fn connect(path: &Path) -> io::Result<UnixStream> {
    let stream = with_short_path(path, |path| UnixStream::connect(path))?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_deep_in_a_long_path_binds_and_connects() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("agent.sock");
        assert!(path.as_os_str().len() > MAX_SOCKET_PATH);
        let listener = bind(&path).expect("bind");
        assert!(path.exists(), "the socket file is where it was asked for");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, FILE_MODE);
        connect(&path).expect("connect");
        listener.accept().expect("accept");
    }

    #[test]
    fn a_stale_socket_file_is_replaced() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("agent.sock");
        drop(bind(&path).expect("first bind"));
        assert!(connect(&path).is_err(), "nobody listens on a stale socket");
        let _listener = bind(&path).expect("second bind");
        connect(&path).expect("connect");
    }
}
