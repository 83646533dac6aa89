//! FUSE mounts of gluster volumes: finding one in `/proc/self/mountinfo`, making one with the
//! `mount.glusterfs` helper, checking that it is still there, and unmounting it.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

use super::GlusterOptions;

pub(super) const BACKEND: &str = "gluster";
/// `mount.glusterfs`' exit status when the mount point already holds a glusterfs mount.
const ALREADY_MOUNTED: i32 = 32;
/// How many of the client log's error lines a failed mount reports.
const LOG_LINES: usize = 4;

/// Serialises this process's mounts and unmounts, so that two stores opened at once on one
/// volume share a mount instead of racing to make two.
static MOUNTING: Mutex<()> = Mutex::new(());

pub(super) fn unavailable(message: impl Into<String>) -> Error {
    Error::Unavailable {
        backend: BACKEND.to_string(),
        message: message.into(),
    }
}

/// A FUSE mount of one whole gluster volume.
#[derive(Debug)]
pub(super) struct Mount {
    /// `HOST:/VOLUME`, as `mount` and `/proc/self/mountinfo` show it.
    pub source: String,
    /// Where the volume's root is.
    pub dir: PathBuf,
    /// The device number of the mount, to notice when it is gone.
    dev: u64,
    /// Whether the mount lies in moon's mount root, so that moon may unmount it.
    pub managed: bool,
}

impl Mount {
    /// The volume's mount: an existing one where there is any, else a new one in
    /// `MOUNT_ROOT/HOST/VOLUME`.
    pub fn find_or_make(
        host: &str,
        volume: &str,
        port: u16,
        options: &GlusterOptions,
    ) -> Result<Mount> {
        let source = format!("{host}:/{volume}");
        let _serial = MOUNTING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(dir) = find(host, volume).map_err(mount_table_error)? {
            return Mount::at(source, dir, options);
        }
        check_can_mount(&options.mount_root)?;
        let root = make_mount_root(&options.mount_root)?;
        let dir = root.join(host).join(volume);
        fs::create_dir_all(&dir).map_err(|e| mount_point_error(&dir, &e))?;
        let log = options
            .log_file
            .clone()
            .unwrap_or_else(|| root.join(host).join(format!("{volume}.log")));
        match run_mount(host, volume, &dir, &log, port, options) {
            Ok(()) => Mount::at(source, dir, options),
            Err(e) => {
                // A mount made meanwhile by another process is as good as ours.
                if let Ok(Some(found)) = find(host, volume) {
                    return Mount::at(source, found, options);
                }
                let _ = fs::remove_dir(&dir);
                let _ = fs::remove_dir(root.join(host));
                Err(e)
            }
        }
    }

    fn at(source: String, dir: PathBuf, options: &GlusterOptions) -> Result<Mount> {
        let md = fs::metadata(&dir).map_err(|e| gone(&source, &dir, &e))?;
        // The mount table holds canonical paths; the configured root may not be one.
        let managed = fs::canonicalize(&options.mount_root)
            .map(|root| dir.starts_with(root))
            .unwrap_or(false);
        Ok(Mount {
            source,
            dir,
            dev: md.dev(),
            managed,
        })
    }

    /// Fails unless the volume is still mounted where it was found, so that no store writes into
    /// the empty directory an unmount leaves.
    pub fn check(&self) -> Result<()> {
        match fs::metadata(&self.dir) {
            Ok(md) if md.dev() == self.dev => Ok(()),
            Ok(_) => Err(unavailable(format!(
                "{} is no longer mounted on {}; open the store again",
                self.source,
                self.dir.display()
            ))),
            Err(e) => Err(gone(&self.source, &self.dir, &e)),
        }
    }

    /// Unmounts the volume if moon mounted it and it is still mounted; `Ok(false)` when there was
    /// nothing of moon's to unmount.
    pub fn unmount(&self, timeout: Duration) -> Result<bool> {
        if !self.managed {
            return Ok(false);
        }
        let _serial = MOUNTING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !is_mount_point(&self.dir, &self.source).map_err(mount_table_error)? {
            return Ok(false);
        }
        let mut command = Command::new("umount");
        command.arg(&self.dir);
        let (status, output) = run(command, timeout, "umount")?;
        if !status.success() {
            let busy = output.contains("busy");
            return Err(unavailable(format!(
                "cannot unmount {} from {}{}: {}",
                self.source,
                self.dir.display(),
                if busy { " (files are open in it)" } else { "" },
                output.trim()
            )));
        }
        // The directory was made for the mount; the host's directory goes once it holds nothing.
        let _ = fs::remove_dir(&self.dir);
        if let Some(parent) = self.dir.parent() {
            let _ = fs::remove_dir(parent);
        }
        Ok(true)
    }
}

fn mount_table_error(e: io::Error) -> Error {
    unavailable(format!(
        "cannot read the mount table /proc/self/mountinfo: {e}"
    ))
}

fn mount_point_error(dir: &Path, e: &io::Error) -> Error {
    match e.kind() {
        ErrorKind::PermissionDenied => Error::PermissionDenied {
            path: dir.display().to_string(),
            message: format!("cannot make the mount point: {e}"),
        },
        _ => unavailable(format!(
            "cannot make the mount point {}: {e}",
            dir.display()
        )),
    }
}

/// The mount root, made when missing, as the canonical path the mount table will show.
fn make_mount_root(root: &Path) -> Result<PathBuf> {
    if !root.is_absolute() {
        return Err(Error::InvalidUrl {
            url: root.display().to_string(),
            reason: "the gluster mount root must be an absolute path".to_string(),
        });
    }
    fs::create_dir_all(root)
        .and_then(|()| fs::canonicalize(root))
        .map_err(|e| mount_point_error(root, &e))
}

fn gone(source: &str, dir: &Path, e: &io::Error) -> Error {
    // ENOTCONN: the client process behind the mount has died.
    if e.raw_os_error() == Some(107) {
        return unavailable(format!(
            "the glusterfs client serving {source} on {} has stopped ({e}); unmount it and open \
             the store again",
            dir.display()
        ));
    }
    if e.kind() == ErrorKind::NotFound {
        return unavailable(format!(
            "{source} is no longer mounted on {}; open the store again",
            dir.display()
        ));
    }
    unavailable(format!("{source} on {}: {e}", dir.display()))
}

/// Says what is missing, before `mount` says it less clearly.
fn check_can_mount(dir: &Path) -> Result<()> {
    if !Path::new("/dev/fuse").exists() {
        return Err(unavailable(
            "mounting a gluster volume needs /dev/fuse (the fuse kernel module; in a container, \
             the device passed in)",
        ));
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::PermissionDenied {
            path: dir.display().to_string(),
            message: "mounting a gluster volume needs root (CAP_SYS_ADMIN); mount it beforehand \
                      and moon uses that mount"
                .to_string(),
        });
    }
    let helper = ["/sbin/mount.glusterfs", "/usr/sbin/mount.glusterfs"];
    if !helper.iter().any(|h| Path::new(h).exists()) {
        return Err(unavailable(
            "mounting a gluster volume needs the glusterfs FUSE client (mount.glusterfs: \
             Debian's and Ubuntu's glusterfs-client, glusterfs-fuse elsewhere)",
        ));
    }
    Ok(())
}

/// Mounts `host:/volume[/subdir]` at `dir` (which must exist), read-only when asked: a mount
/// for one user of its own, which that user unmounts. The client logs to `dir` with `.log`
/// appended unless the options name a log.
pub(super) fn mount_at(
    host: &str,
    port: u16,
    volume: &str,
    subdir: Option<&str>,
    dir: &Path,
    read_only: bool,
    options: &GlusterOptions,
) -> Result<()> {
    check_can_mount(dir)?;
    let log = options.log_file.clone().unwrap_or_else(|| {
        let mut name = dir.as_os_str().to_owned();
        name.push(".log");
        PathBuf::from(name)
    });
    let mut options = options.clone();
    if read_only {
        options.mount_options.push("ro".to_string());
    }
    let source = match subdir {
        Some(subdir) => format!("{volume}/{subdir}"),
        None => volume.to_string(),
    };
    let _serial = MOUNTING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let log_start = fs::metadata(&log).map(|md| md.len()).unwrap_or(0);
    run_mount(host, &source, dir, &log, port, &options)?;
    // `mount.glusterfs` may succeed before the server has accepted the client (a directory
    // the volume lacks is refused then, and the client unmounts at once). A stat of the mount
    // point waits for the client's start, so a mount still there is a live one.
    let live = match (fs::metadata(dir), dir.parent().map(fs::metadata)) {
        (Ok(md), Some(Ok(parent))) => md.dev() != parent.dev(),
        _ => false,
    };
    if live {
        return Ok(());
    }
    let _ = Command::new("umount")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    Err(unavailable(format!(
        "cannot mount {host}:/{source} on {}: {} (log: {})",
        dir.display(),
        log_errors(&log, log_start).join("; "),
        log.display()
    )))
}

/// `volume` is the volume's name, or `name/subdir` for a mount of one of its directories.
fn run_mount(
    host: &str,
    volume: &str,
    dir: &Path,
    log: &Path,
    port: u16,
    options: &GlusterOptions,
) -> Result<()> {
    let source = format!("{host}:/{volume}");
    if let Some(parent) = log.parent() {
        let _ = fs::create_dir_all(parent);
    }
    // Only what this attempt logs explains its failure.
    let log_start = fs::metadata(log).map(|md| md.len()).unwrap_or(0);
    let mut opts = vec![format!("log-file={}", log.display())];
    if port != super::DEFAULT_PORT {
        opts.push(format!("server-port={port}"));
    }
    opts.extend(options.mount_options.iter().cloned());
    let mut command = Command::new("mount");
    command
        .args(["-t", "glusterfs", "-o"])
        .arg(opts.join(","))
        .arg(&source)
        .arg(dir);
    let (status, output) = run(command, options.timeout, &format!("mounting {source}"))
        .inspect_err(|_| {
            // The client may have mounted after all: leave nothing behind.
            let _ = Command::new("umount")
                .arg(dir)
                .stderr(Stdio::null())
                .status();
        })?;
    if status.success() {
        return Ok(());
    }
    if status.code() == Some(ALREADY_MOUNTED) {
        return Err(unavailable(format!(
            "{} already holds another glusterfs mount",
            dir.display()
        )));
    }
    let mut logged = log_errors(log, log_start);
    if let Some(refused) = unreachable(host, port, options.timeout) {
        logged.push(refused);
    }
    let said = [output.trim().to_string(), logged.join("; ")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; glusterfs: ");
    if logged
        .iter()
        .any(|line| line.contains("failed to fetch volume file"))
    {
        // The server answered, and has no such volume.
        return Err(Error::NotFound {
            path: super::volume_url(host, port, volume),
        });
    }
    Err(unavailable(format!(
        "cannot mount {source} on {}: {said} (log: {})",
        dir.display(),
        log.display()
    )))
}

/// Why `host:port` cannot be reached, in the operating system's words, when it cannot: the
/// client's log says only that it was disconnected.
fn unreachable(host: &str, port: u16, timeout: Duration) -> Option<String> {
    let addresses = match (host, port).to_socket_addrs() {
        Ok(addresses) => addresses.collect::<Vec<_>>(),
        Err(e) => return Some(format!("cannot resolve {host}: {e}")),
    };
    let timeout = timeout.min(Duration::from_secs(5));
    let mut last = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(_) => return None,
            Err(e) => last = Some(format!("connecting to {host}:{port} ({address}): {e}")),
        }
    }
    last
}

/// Runs `command` with no input, its output gathered in a temporary file (a pipe could be held
/// open by the client daemon the mount helper leaves running), for at most `timeout`.
fn run(mut command: Command, timeout: Duration, what: &str) -> Result<(ExitStatus, String)> {
    let capture = tempfile_in_tmp()?;
    let out = capture
        .try_clone()
        .map_err(|e| unavailable(format!("{what}: {e}")))?;
    let err = capture
        .try_clone()
        .map_err(|e| unavailable(format!("{what}: {e}")))?;
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    let mut child = command.spawn().map_err(|e| match e.kind() {
        ErrorKind::NotFound => unavailable(format!("{what}: the program is not installed ({e})")),
        _ => unavailable(format!("{what}: {e}")),
    })?;
    let status = wait(&mut child, timeout).map_err(|e| unavailable(format!("{what}: {e}")))?;
    let Some(status) = status else {
        return Err(unavailable(format!(
            "{what} did not finish within {timeout:?}"
        )));
    };
    let mut text = String::new();
    let mut capture = capture;
    let _ = capture.seek(SeekFrom::Start(0));
    let _ = capture.read_to_string(&mut text);
    Ok((status, text))
}

fn wait(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An anonymous file for a command's output: made and unlinked at once.
fn tempfile_in_tmp() -> Result<File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    let name = dir.join(format!(
        ".moon-gluster-output-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&name)
        .map_err(|e| unavailable(format!("cannot make a file in {}: {e}", dir.display())))?;
    let _ = fs::remove_file(&name);
    Ok(file)
}

/// The error and critical lines the client logged from byte `start` on, without their time
/// stamps and source locations.
fn log_errors(log: &Path, start: u64) -> Vec<String> {
    let mut text = String::new();
    if let Ok(mut file) = File::open(log) {
        let _ = file.seek(SeekFrom::Start(start));
        let _ = file.read_to_string(&mut text);
    }
    let mut lines: Vec<String> = text.lines().filter_map(log_error).collect();
    lines.dedup();
    let skip = lines.len().saturating_sub(LOG_LINES);
    lines.split_off(skip)
}

/// `[TIME] E [MSGID: N] [file.c:1:fn] 0-name: message` as `message`, for the levels E and C,
/// and for what the client says of its connection to the server (`mgmt_rpc_notify`, logged at
/// level I: "disconnected from remote-host", "Exhausted all volfile servers"), the only account
/// of a server it cannot reach.
fn log_error(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("] ")?;
    let (level, rest) = rest.split_once(' ')?;
    let rest = match rest.strip_prefix("[MSGID: ") {
        Some(msgid) => msgid.split_once("] ")?.1,
        None => rest,
    };
    let (location, message) = rest.strip_prefix('[')?.split_once("] ")?;
    if !matches!(level, "E" | "C") && !location.ends_with(":mgmt_rpc_notify") {
        return None;
    }
    let message = match message.split_once(": ") {
        Some((name, text)) if name.starts_with("0-") => text,
        _ => message,
    };
    Some(message.trim().to_string())
}

/// Where the whole volume `host:/volume` is mounted with glusterfs, if anywhere.
fn find(host: &str, volume: &str) -> io::Result<Option<PathBuf>> {
    let table = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(mounts(&table)
        .into_iter()
        .find(|m| m.host == host && m.volume == volume)
        .map(|m| m.dir))
}

fn is_mount_point(dir: &Path, source: &str) -> io::Result<bool> {
    let table = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(mounts(&table)
        .into_iter()
        .any(|m| m.dir == dir && format!("{}:/{}", m.host, m.volume) == source))
}

/// One glusterfs mount of a whole volume.
#[derive(Debug, PartialEq, Eq)]
struct Found {
    host: String,
    volume: String,
    dir: PathBuf,
}

/// The glusterfs mounts of whole volumes in a `mountinfo` table.
fn mounts(table: &str) -> Vec<Found> {
    table
        .lines()
        .filter_map(|line| {
            let (mine, theirs) = line.split_once(" - ")?;
            let dir = mine.split(' ').nth(4)?;
            let mut fs = theirs.split(' ');
            if fs.next()? != "fuse.glusterfs" {
                return None;
            }
            // `HOST:/VOLUME` or `HOST:VOLUME`; a sub-directory mount (`HOST:/VOLUME/dir`) does not
            // show the whole volume.
            let source = unescape(fs.next()?);
            let (host, volume) = source.rsplit_once(':')?;
            let volume = volume.trim_start_matches('/');
            if volume.is_empty() || volume.contains('/') {
                return None;
            }
            Some(Found {
                host: host.to_string(),
                volume: volume.to_string(),
                dir: PathBuf::from(unescape(dir)),
            })
        })
        .collect()
}

/// A `mountinfo` field with its octal escapes (`\040` for a space) decoded.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let code =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_table_shows_whole_volume_mounts_only() {
        let table = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
98 22 0:50 / /srv/moon\\040mounts/g1/vol-a rw,relatime shared:60 - fuse.glusterfs g1:/vol-a rw,user_id=0
99 22 0:51 / /mnt/b rw,relatime - fuse.glusterfs g1:vol_b rw,user_id=0
100 22 0:52 / /mnt/sub rw,relatime - fuse.glusterfs g1:/vol-c/tenant rw,user_id=0
101 22 0:53 / /mnt/sshfs rw,relatime - fuse.sshfs g1:/vol-a rw
";
        assert_eq!(
            mounts(table),
            [
                Found {
                    host: "g1".into(),
                    volume: "vol-a".into(),
                    dir: "/srv/moon mounts/g1/vol-a".into(),
                },
                Found {
                    host: "g1".into(),
                    volume: "vol_b".into(),
                    dir: "/mnt/b".into(),
                },
            ]
        );
    }

    #[test]
    fn octal_escapes_decode_and_anything_else_stays() {
        assert_eq!(unescape(r"a\040b\011c\134d"), "a b\tc\\d");
        assert_eq!(unescape(r"tail\04"), r"tail\04");
        assert_eq!(unescape(r"x\999"), r"x\999");
    }

    #[test]
    fn log_errors_keep_the_message_of_error_and_critical_lines() {
        let lines = [
            "[2026-11-30 14:01:02.345678 +0000] I [MSGID: 100030] [glusterfsd.c:2767:main] \
             0-/usr/sbin/glusterfs: Started running version [{arg=/usr/sbin/glusterfs}]",
            "[2026-11-30 14:01:02.345678 +0000] E [glusterfsd-mgmt.c:2338:mgmt_getspec_cbk] \
             0-mgmt: failed to fetch volume file (key:nosuch)",
            "[2026-11-30 14:01:02.345678 +0000] E [MSGID: 101075] \
             [common-utils.c:520:gf_resolve_ip6] 0-resolver: getaddrinfo failed (family:2) \
             (Name or service not known)",
            "[2026-11-30 14:01:02.345678 +0000] C [rpc-clnt.c:1] 0-glusterfs: a [bracketed]: word",
            "[2026-11-30 14:23:54.437346 +0000] I [glusterfsd-mgmt.c:2673:mgmt_rpc_notify] \
             0-glusterfsd-mgmt: disconnected from remote-host: vm",
            "[2026-11-30 14:23:54.437346 +0000] I [fuse-bridge.c:7065:fini] 0-fuse: Unmounting",
            "not a log line",
        ];
        let got: Vec<_> = lines.iter().filter_map(|l| log_error(l)).collect();
        assert_eq!(
            got,
            [
                "failed to fetch volume file (key:nosuch)",
                "getaddrinfo failed (family:2) (Name or service not known)",
                "a [bracketed]: word",
                "disconnected from remote-host: vm",
            ]
        );
    }

    #[test]
    fn a_failed_mount_reports_only_what_its_attempt_logged() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("vol.log");
        let old = "[t] E [a.c:1:f] 0-x: an old failure\n";
        std::fs::write(&log, old).unwrap();
        let mut text = old.to_string();
        for i in 0..6 {
            text.push_str(&format!("[t] E [a.c:1:f] 0-x: failure {i}\n"));
            text.push_str(&format!("[t] E [a.c:1:f] 0-x: failure {i}\n"));
        }
        std::fs::write(&log, &text).unwrap();
        assert_eq!(
            log_errors(&log, old.len() as u64),
            ["failure 2", "failure 3", "failure 4", "failure 5"]
        );
        assert!(log_errors(&dir.path().join("missing.log"), 0).is_empty());
    }

    #[test]
    fn commands_that_outlive_their_timeout_are_killed() {
        let mut sleep = Command::new("sleep");
        sleep.arg("30");
        let started = Instant::now();
        match run(sleep, Duration::from_millis(200), "sleeping") {
            Err(Error::Unavailable { message, .. }) => {
                assert!(message.contains("did not finish"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        let mut echo = Command::new("sh");
        echo.args(["-c", "echo out; echo err >&2; exit 3"]);
        let (status, output) = run(echo, Duration::from_secs(10), "echoing").unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(output, "out\nerr\n");
    }
}
