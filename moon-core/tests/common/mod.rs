//! What the local backend's integration tests share: a fresh MOON_HOME with
//! its own agent, killed when the test ends.
#![allow(dead_code)]

use futures::StreamExt;
use std::path::{Path, PathBuf};

use moon_core::Client;
use moon_core::local::LocalConfig;
use moon_core::spec::{Framework, Job, Role, Tenant, TenantQuota};

pub struct Home {
    dir: tempfile::TempDir,
    pub client: Client,
}

impl Home {
    pub fn new() -> Home {
        Home::with_config("")
    }

    pub fn with_config(config: &str) -> Home {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.yaml"), config).expect("config");
        let client = Client::local_with(LocalConfig {
            home: dir.path().to_path_buf(),
            agent_program: agent_program(),
        })
        .expect("client");
        Home { dir, client }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        // The services' proxy outlives the agent by design: stop it too. Its record is
        // JSON (`{"pid":123,...}`); read without a JSON crate, which the crash tests
        // sharing this file do not have.
        if let Ok(record) = std::fs::read_to_string(self.dir.path().join("proxy.json"))
            && let Some(rest) = record.split("\"pid\":").nth(1)
            && let Ok(pid) = rest
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<i32>()
        {
            // SAFETY: kill with a pid read from our own home's proxy record.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("agent.pid"))
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            // SAFETY: kill with a pid read from our own agent's pid file.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        // A job's volume left mounted (a test that failed before its job ended) must not be
        // emptied by the removal of the temporary home: unmount it first.
        if let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") {
            let home = std::fs::canonicalize(self.dir.path()).unwrap_or_default();
            for point in table.lines().filter_map(|line| line.split(' ').nth(4)) {
                if Path::new(point).starts_with(&home) {
                    let _ = std::process::Command::new("umount")
                        .args(["-l", point])
                        .status();
                }
            }
        }
    }
}

/// The agent of these tests: moon-core's `moon-agent`, or, in the crash
/// tests of the moon-crash-agent package (which share this file), the agent
/// built with crash points.
fn agent_program() -> PathBuf {
    let program = option_env!("CARGO_BIN_EXE_moon-crash-agent")
        .or(option_env!("CARGO_BIN_EXE_moon-agent"))
        .expect("built as a test of moon-core or of moon-crash-agent");
    PathBuf::from(program)
}

pub async fn tenant(client: &Client, name: &str, quota: TenantQuota) {
    let spec = Tenant {
        name: name.into(),
        quota,
        ..Tenant::default()
    };
    client.apply_tenant(&spec).await.expect("tenant");
}

pub fn shell_job(name: &str, script: &str) -> Job {
    Job::new(
        name,
        "team",
        Framework::Custom,
        vec![Role::new("main", 1, &["sh", "-c", script])],
    )
}

impl Home {
    /// The agent's pid, once one runs.
    pub fn agent_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.path().join("agent.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Submits `job` to tenant `team` and follows its logs until the first
    /// line, which comes back with the stream of the rest.
    pub async fn submit_and_read_first_line(
        &self,
        job: &Job,
    ) -> (
        moon_core::backend::Stream<moon_core::LogLine>,
        moon_core::LogLine,
    ) {
        self.client.submit(job).await.expect("submit");
        let options = moon_core::LogOptions {
            follow: true,
            ..moon_core::LogOptions::default()
        };
        let mut logs = self
            .client
            .logs(&job.tenant, &job.name, options)
            .await
            .expect("logs");
        let first = logs.next().await.expect("a line").expect("line");
        (logs, first)
    }

    /// The text of every line job `team/name` has logged so far, in order.
    pub async fn log_lines(&self, name: &str) -> Vec<String> {
        let mut logs = self
            .client
            .logs("team", name, moon_core::LogOptions::default())
            .await
            .expect("logs");
        let mut lines = Vec::new();
        while let Some(line) = logs.next().await {
            lines.push(line.expect("line").line);
        }
        lines
    }

    /// Arms a crash point of the agent (moon-core's `local/crash_points.rs`);
    /// only an agent built with them (`moon-crash-agent`) looks for it.
    pub fn arm_fault(&self, point: &str) {
        let dir = self.path().join("faults");
        std::fs::create_dir_all(&dir).expect("faults dir");
        std::fs::write(dir.join(point), "").expect("fault");
    }
}
