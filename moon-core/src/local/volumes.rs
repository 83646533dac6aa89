//! A job's volumes on this machine: each one mounted once per job, under the job's directory
//! (`jobs/ID/volumes/NAME`), before its replicas start, and unmounted when the job ends; an
//! agent that starts after a crash unmounts what was left of jobs that are no longer running.
//!
//! | system | mounted with |
//! |---|---|
//! | SeaweedFS | `weed mount` (FUSE) of the volume's filer directory; the program is `$MOON_WEED_BIN` or `weed` on `PATH` |
//! | Gluster | `mount -t glusterfs HOST:/VOLUME/DIR` (FUSE), through `moon-storage` |
//! | HDFS | not mounted: replicas get the volume's URL only (no `_PATH`) and open it with moon's storage API; `cached` changes nothing here |
//!
//! A mount's client runs in a session of its own, so that it outlives an agent that crashes;
//! a job still running when the agent comes back keeps its mounts.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moon_spec::spec::StorageSystem;
use moon_spec::volumes::ResolvedVolume;
use moon_storage::seaweedfs::SeaweedOptions;
use moon_storage::{GlusterOptions, SeaweedStore, StoreUrl};

use super::layout::Layout;
use super::store::JobRecord;

/// The `weed` program that mounts SeaweedFS volumes, where `PATH` has none.
pub const WEED_BIN_ENV: &str = "MOON_WEED_BIN";
/// The filer's gRPC port, which `weed mount` talks to, where it is not SeaweedFS's default
/// (the filer's HTTP port plus 10000).
pub const FILER_GRPC_PORT_ENV: &str = "MOON_SEAWEEDFS_FILER_GRPC_PORT";
/// SeaweedFS's default distance between a server's HTTP and gRPC ports.
const GRPC_PORT_OFFSET: u16 = 10000;
/// How long a mount may take to become live.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an unmount may take before it is made lazy.
const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a mount client's log a failure reports.
const LOG_TAIL_BYTES: u64 = 600;

/// Where `volume` of the job `job_id` is mounted, if it is mounted on this backend.
pub fn mount_point(layout: &Layout, job_id: i64, volume: &ResolvedVolume) -> Option<PathBuf> {
    match volume.system {
        StorageSystem::Seaweedfs | StorageSystem::Gluster => {
            Some(layout.volume_dir(job_id, &volume.name))
        }
        StorageSystem::Hdfs => None,
    }
}

/// Mounts every volume of `job` that is mounted on this backend and is not mounted yet.
/// On a failure, unmounts what it mounted and says which volume failed and why, in the
/// server's words.
pub async fn mount_all(layout: &Layout, job: &JobRecord) -> Result<(), String> {
    for volume in &job.volumes {
        let Some(dir) = mount_point(layout, job.id, volume) else {
            continue;
        };
        if is_mount_point(&dir) {
            // Mounted before the agent restarted.
            continue;
        }
        let mounted = match fs::create_dir_all(&dir) {
            Err(error) => Err(format!("cannot make {}: {error}", dir.display())),
            Ok(()) => match volume.system {
                StorageSystem::Seaweedfs => mount_seaweedfs(volume, &dir).await,
                StorageSystem::Gluster => mount_gluster(volume, &dir).await,
                StorageSystem::Hdfs => Ok(()),
            },
        };
        if let Err(message) = mounted {
            let _ = unmount_below(&layout.volumes_dir(job.id));
            return Err(format!("volume {:?}: {message}", volume.name));
        }
    }
    Ok(())
}

/// Unmounts every mount below `dir` (deepest first), lazily where a plain unmount fails or
/// hangs, so that nothing of a job is left mounted; returns what could not be unmounted.
pub fn unmount_below(dir: &Path) -> Vec<String> {
    let Ok(dir) = fs::canonicalize(dir) else {
        return Vec::new();
    };
    let mut points: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|point| point.starts_with(&dir) && *point != dir)
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    let mut failed = Vec::new();
    for point in points {
        if let Err(message) = unmount(&point) {
            failed.push(message);
        }
    }
    failed
}

/// Unmounts the volumes left mounted of jobs for which `running` is false: what an agent
/// that crashed could not unmount.
pub fn unmount_stale(layout: &Layout, running: impl Fn(i64) -> bool) -> Vec<String> {
    let Ok(jobs) = fs::canonicalize(layout.home().join("jobs")) else {
        return Vec::new();
    };
    let mut stale: Vec<PathBuf> = Vec::new();
    for point in mount_points() {
        let Ok(rest) = point.strip_prefix(&jobs) else {
            continue;
        };
        let mut parts = rest.components();
        let id = parts
            .next()
            .and_then(|part| part.as_os_str().to_str()?.parse::<i64>().ok());
        let in_volumes = parts
            .next()
            .is_some_and(|part| part.as_os_str() == "volumes");
        if let Some(id) = id
            && in_volumes
            && !running(id)
        {
            stale.push(point);
        }
    }
    stale
        .iter()
        .filter_map(|point| unmount(point).err())
        .collect()
}

async fn mount_seaweedfs(volume: &ResolvedVolume, dir: &Path) -> Result<(), String> {
    let (server, root, collection) = match StoreUrl::parse(&volume.url) {
        Ok(StoreUrl::SeaweedFs {
            server,
            root,
            collection,
            ..
        }) => (server, root, collection),
        Ok(_) | Err(_) => return Err(format!("{} is not a SeaweedFS URL", volume.url)),
    };
    if !volume.read_only {
        // `weed mount` needs its directory on the filer; a volume to write to may be new.
        let options = SeaweedOptions {
            collection: collection.clone(),
            ..SeaweedOptions::default()
        };
        let store = SeaweedStore::new(server.clone(), &root, options).map_err(|e| e.to_string())?;
        store.create_root().await.map_err(|e| e.to_string())?;
    }
    let weed = weed_program()?;
    let grpc_port = match std::env::var(FILER_GRPC_PORT_ENV) {
        Ok(port) if !port.trim().is_empty() => port
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("{FILER_GRPC_PORT_ENV} must be a port number, got {port:?}"))?,
        _ => server.port.saturating_add(GRPC_PORT_OFFSET),
    };
    let log = log_file(dir);
    let log_start = fs::metadata(&log).map(|md| md.len()).unwrap_or(0);
    let output = File::options()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let mut command = Command::new(&weed);
    command
        .arg("mount")
        .arg(format!(
            "-filer={}:{}.{grpc_port}",
            server.host, server.port
        ))
        .arg(format!("-filer.path={root}"))
        .arg(format!("-dir={}", dir.display()));
    if let Some(collection) = &collection {
        command.arg(format!("-collection={collection}"));
    }
    if volume.read_only {
        command.arg("-readOnly");
    }
    command
        .stdin(Stdio::null())
        .stdout(output.try_clone().map_err(|e| e.to_string())?)
        .stderr(output);
    // SAFETY: setsid is async-signal-safe; the mount's client gets a session of its own so
    // that it outlives an agent that crashes, as replicas' supervisors do.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", weed.display()))?;
    let started = Instant::now();
    loop {
        if is_mount_point(dir) {
            // Reaped when it exits, at the unmount.
            std::thread::spawn(move || child.wait());
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "weed mount exited ({status}): {}",
                log_tail(&log, log_start)
            ));
        }
        if started.elapsed() > MOUNT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "weed mount did not mount within {}s: {}",
                MOUNT_TIMEOUT.as_secs(),
                log_tail(&log, log_start)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn mount_gluster(volume: &ResolvedVolume, dir: &Path) -> Result<(), String> {
    let (server, gluster_volume, root) = match StoreUrl::parse(&volume.url) {
        Ok(StoreUrl::Gluster {
            server,
            volume,
            root,
        }) => (server, volume, root),
        Ok(_) | Err(_) => return Err(format!("{} is not a gluster URL", volume.url)),
    };
    let dir = dir.to_path_buf();
    let read_only = volume.read_only;
    let options = GlusterOptions::default()
        .with_log_file(log_file(&dir))
        .with_timeout(MOUNT_TIMEOUT);
    tokio::task::spawn_blocking(move || {
        moon_storage::gluster::mount_directory(
            &server,
            &gluster_volume,
            &root,
            &dir,
            read_only,
            &options,
        )
    })
    .await
    .map_err(|e| format!("mount task failed: {e}"))?
    .map_err(|e| e.to_string())
}

/// The `weed` program: `$MOON_WEED_BIN`, or `weed` on `PATH`.
fn weed_program() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(WEED_BIN_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{WEED_BIN_ENV} names {}, which is not a file",
                path.display()
            ))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("weed"))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!(
                "mounting a SeaweedFS volume needs SeaweedFS's weed program: put it on PATH or \
                 name it in {WEED_BIN_ENV} (for the agent, which reads it when it starts)"
            )
        })
}

/// The mount client's log, beside the mount point.
fn log_file(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".log");
    PathBuf::from(name)
}

/// The end of what a client logged from `start` on, on one line.
fn log_tail(log: &Path, start: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(log) {
        let len = file.metadata().map(|md| md.len()).unwrap_or(0);
        let from = start.max(len.saturating_sub(LOG_TAIL_BYTES));
        let _ = file.seek(SeekFrom::Start(from));
        let _ = file.read_to_string(&mut text);
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        format!("nothing logged (log: {})", log.display())
    } else {
        format!("{text} (log: {})", log.display())
    }
}

/// Unmounts `point`; lazily (`umount -l`) where a plain unmount fails or takes too long.
fn unmount(point: &Path) -> Result<(), String> {
    if run_umount(point, false) || !is_mount_point(point) {
        let _ = fs::remove_dir(point);
        return Ok(());
    }
    if run_umount(point, true) || !is_mount_point(point) {
        let _ = fs::remove_dir(point);
        return Ok(());
    }
    Err(format!("cannot unmount {}", point.display()))
}

fn run_umount(point: &Path, lazy: bool) -> bool {
    let mut command = Command::new("umount");
    if lazy {
        command.arg("-l");
    }
    let Ok(mut child) = command
        .arg(point)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if started.elapsed() < UNMOUNT_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// Whether `dir` is a mount point (of any file system) in this process's mount table.
fn is_mount_point(dir: &Path) -> bool {
    let Ok(dir) = fs::canonicalize(dir) else {
        return false;
    };
    mount_points().contains(&dir)
}

/// Every mount point of this process's mount table.
fn mount_points() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|table| parse_mount_points(&table))
        .unwrap_or_default()
}

/// The mount points of a `mountinfo` table: its fifth field, with the kernel's octal escapes
/// (`\040` for a space) undone.
fn parse_mount_points(table: &str) -> Vec<PathBuf> {
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        if bytes[i] == b'\\'
            && let Some(digits) = octal
            && let Ok(code) = u8::from_str_radix(&String::from_utf8_lossy(digits), 8)
        {
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
    fn mount_points_are_read_with_their_escapes_undone() {
        let table = "36 35 98:0 / /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                     40 36 0:45 / /home/u/.moon/jobs/7/volumes/data rw - fuse.seaweedfs weed rw\n";
        assert_eq!(
            parse_mount_points(table),
            [
                PathBuf::from("/mnt/with space"),
                PathBuf::from("/home/u/.moon/jobs/7/volumes/data")
            ]
        );
    }
}
