//! The supervisor of one replica attempt: a small process, detached from
//! the agent, that owns the replica's process group, stamps its output into
//! the replica's log and records how it ended. It outlives the agent, so a
//! crash of the agent neither stops a replica nor loses its exit status.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use nix::sys::signal::{SigSet, Signal};
use serde::{Deserialize, Serialize};

use super::layout::attempt_files;
use super::private;
use super::process::{signal_group, signal_process, start_time};
use super::secrets::{self, SecretSource};
use super::store::now_ms;

/// What to run, written by the agent into the attempt's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptPlan {
    /// `worker-1`.
    pub replica: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The role's variables and moon's, over everything else.
    pub env: BTreeMap<String, String>,
    /// What the replica inherits of the submitter's environment, under
    /// everything else.
    #[serde(default)]
    pub inherited: BTreeMap<String, String>,
    /// The secrets whose keys become variables, over the inherited ones and
    /// under `env` (as `envFrom` is under `env` on Kubernetes); read right
    /// before the replica starts, so that no value is ever in a plan.
    #[serde(default)]
    pub env_from: Vec<SecretSource>,
    /// Where to start it.
    pub working_dir: PathBuf,
    /// The replica's log, appended to.
    pub log: PathBuf,
    /// Seconds between SIGTERM and SIGKILL when the replica is stopped.
    pub grace_seconds: u64,
}

/// Who owns an attempt: its supervisor, or nobody (`pid` 0) when an agent
/// recovering from a crash abandoned it before any supervisor claimed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The supervisor's pid.
    pub pid: i32,
    /// Its start time, which tells it apart from a later process with the same pid.
    pub started: u64,
}

/// How an attempt ended, written atomically by its supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitRecord {
    /// Exit code, if the replica exited.
    pub code: Option<i32>,
    /// Signal, if one killed it.
    pub signal: Option<i32>,
    /// When.
    pub finished_ms: i64,
    /// Why moon could not run it or could not tell how it ended.
    pub error: Option<String>,
}

/// Writes `bytes` to `path` so that readers see the old file or the new
/// one, never half, and the new one survives a power loss once this returns.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_whole(path, bytes, true)
}

/// Writes `bytes` to `path` so that readers see the old file or the new one,
/// never half, without waiting for the disk. For files that matter only while
/// the machine stays up: a plan (a crash of the machine before its attempt
/// was claimed abandons the attempt, and a claimed one never reads it again)
/// and a replica's process group (gone with the machine).
pub fn write_visibly(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_whole(path, bytes, false)
}

fn write_whole(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let partial = path.with_extension("partial");
    let mut file = private::open_options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&partial)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    std::fs::rename(&partial, path)?;
    if durable && let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Claims `dir` for `claim`; `Ok(false)` if someone else did first.
pub fn claim_attempt(dir: &Path, claim: Claim) -> io::Result<bool> {
    let mut file = match private::open_options()
        .write(true)
        .create_new(true)
        .open(dir.join(attempt_files::CLAIM))
    {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(error) => return Err(error),
    };
    file.write_all(format!("{} {}\n", claim.pid, claim.started).as_bytes())?;
    file.sync_all()?;
    Ok(true)
}

/// Reads an attempt's claim, if it has one.
pub fn read_claim(dir: &Path) -> Option<Claim> {
    let text = std::fs::read_to_string(dir.join(attempt_files::CLAIM)).ok()?;
    let mut fields = text.split_whitespace();
    Some(Claim {
        pid: fields.next()?.parse().ok()?,
        started: fields.next()?.parse().ok()?,
    })
}

/// Reads an attempt's exit record, if written.
pub fn read_exit(dir: &Path) -> Option<ExitRecord> {
    let text = std::fs::read(dir.join(attempt_files::EXIT)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Reads the replica's process group, if it started.
pub fn read_group(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join(attempt_files::GROUP))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Runs one attempt described by `dir/plan.json`; the process's exit code.
pub fn run(dir: &Path) -> i32 {
    match supervise(dir) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("moon supervisor {}: {error}", dir.display());
            1
        }
    }
}

fn supervise(dir: &Path) -> io::Result<()> {
    let plan: AttemptPlan = serde_json::from_slice(&std::fs::read(dir.join(attempt_files::PLAN))?)
        .map_err(io::Error::other)?;
    // Signals are taken by a dedicated thread; block them before any thread starts.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGHUP);
    signals.thread_block().map_err(io::Error::from)?;

    // As a subreaper we inherit whatever the replica orphans, even processes
    // that left its group, so we can make sure none outlives it.
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let pid = std::process::id() as i32;
    let claim = Claim {
        pid,
        started: start_time(pid).unwrap_or(0),
    };
    if !claim_attempt(dir, claim)? {
        // Abandoned by a recovering agent, or already run: never run twice.
        return Ok(());
    }
    if let Some(parent) = plan.log.parent() {
        private::create_dir_all(parent)?;
    }
    let log = Arc::new(Mutex::new(private::append(&plan.log)?));

    // The secrets' values exist only here, in memory, and in the replica.
    let mut env = plan.inherited;
    match secrets::resolve(&plan.env_from) {
        Ok(variables) => env.extend(variables),
        Err(message) => {
            write_line(&log, "stderr", format!("moon: {message}").as_bytes());
            return record_exit(dir, None, None, Some(message));
        }
    }
    env.extend(plan.env);

    let mut command = Command::new(&plan.argv[0]);
    command
        .args(&plan.argv[1..])
        .env_clear()
        .envs(&env)
        .current_dir(&plan.working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // The replica starts with default signal handling, whatever this
            // supervisor blocks and whatever a Python client left ignored.
            let mut none = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            for signal in [
                libc::SIGPIPE,
                libc::SIGXFSZ,
                libc::SIGINT,
                libc::SIGTERM,
                libc::SIGHUP,
            ] {
                libc::signal(signal, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let code = if error.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            let message = format!(
                "cannot start {:?} in {}: {error}",
                plan.argv[0],
                plan.working_dir.display()
            );
            write_line(&log, "stderr", format!("moon: {message}").as_bytes());
            return record_exit(dir, Some(code), None, Some(message));
        }
    };
    let group = child.id() as i32;
    write_visibly(
        &dir.join(attempt_files::GROUP),
        group.to_string().as_bytes(),
    )?;

    let (done_sender, done) = mpsc::channel();
    let mut readers = 0;
    if let Some(stdout) = child.stdout.take() {
        spawn_reader(stdout, "stdout", log.clone(), done_sender.clone());
        readers += 1;
    }
    if let Some(stderr) = child.stderr.take() {
        spawn_reader(stderr, "stderr", log.clone(), done_sender.clone());
        readers += 1;
    }
    let grace = Duration::from_secs(plan.grace_seconds);
    std::thread::spawn(move || forward_stop_signals(signals, group, grace));

    let status = child.wait()?;
    // When the replica's main process ends, so does everything it started.
    let _ = signal_group(group, Signal::SIGKILL);
    kill_and_reap_descendants();
    for _ in 0..readers {
        // A process that left the group may hold the pipes open; don't wait for it forever.
        if done.recv_timeout(Duration::from_secs(5)).is_err() {
            break;
        }
    }
    record_exit(dir, status.code(), status.signal(), None)
}

/// Kills and reaps every process left under this supervisor (orphans are
/// re-parented to it as a subreaper) until it has no child at all.
fn kill_and_reap_descendants() {
    loop {
        for pid in own_children() {
            let _ = signal_process(pid, Signal::SIGKILL);
        }
        match nix::sys::wait::waitpid(None::<nix::unistd::Pid>, None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

fn own_children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut children = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            children.extend(
                list.split_whitespace()
                    .filter_map(|pid| pid.parse::<i32>().ok()),
            );
        }
    }
    children
}

fn record_exit(
    dir: &Path,
    code: Option<i32>,
    signal: Option<i32>,
    error: Option<String>,
) -> io::Result<()> {
    let record = ExitRecord {
        code,
        signal,
        finished_ms: now_ms(),
        error,
    };
    let bytes = serde_json::to_vec(&record).map_err(io::Error::other)?;
    write_atomically(&dir.join(attempt_files::EXIT), &bytes)
}

/// SIGTERM to the supervisor stops the replica: SIGTERM to its group, then
/// SIGKILL once the grace period has passed.
fn forward_stop_signals(signals: SigSet, group: i32, grace: Duration) {
    let mut escalation_started = false;
    while let Ok(_signal) = signals.wait() {
        let _ = signal_group(group, Signal::SIGTERM);
        if !escalation_started {
            escalation_started = true;
            std::thread::spawn(move || {
                std::thread::sleep(grace);
                let _ = signal_group(group, Signal::SIGKILL);
            });
        }
    }
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    name: &'static str,
    log: Arc<Mutex<File>>,
    done: mpsc::Sender<()>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    write_line(&log, name, &line);
                }
            }
        }
        let _ = done.send(());
    });
}

/// One log line: `<RFC 3339 time> <stream> <text>`, the CRI log format less its tag.
fn write_line(log: &Mutex<File>, stream: &str, text: &[u8]) {
    let mut entry = format!(
        "{} {stream} ",
        humantime::format_rfc3339_nanos(SystemTime::now())
    )
    .into_bytes();
    entry.extend_from_slice(text);
    entry.push(b'\n');
    if let Ok(mut file) = log.lock() {
        // One write per line, so a follower never sees half a line from this side.
        let _ = file.write_all(&entry);
    }
}

/// Parses a log line written by `write_line`: (time in ms, stream, text).
pub fn parse_log_line(line: &str) -> Option<(i64, String, String)> {
    let (time, rest) = line.split_once(' ')?;
    let (stream, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let time = humantime::parse_rfc3339(time).ok()?;
    let millis = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_millis() as i64;
    Some((millis, stream.to_string(), text.to_string()))
}
