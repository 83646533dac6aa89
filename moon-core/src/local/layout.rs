//! Where the local backend keeps things under `MOON_HOME`.

use std::path::{Path, PathBuf};

use super::store::AttemptKey;

/// The files of one `MOON_HOME`.
#[derive(Debug, Clone)]
pub struct Layout {
    home: PathBuf,
}

impl Layout {
    /// The layout rooted at `home`.
    pub fn new(home: &Path) -> Layout {
        Layout {
            home: home.to_path_buf(),
        }
    }

    /// The root.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The state database.
    pub fn database(&self) -> PathBuf {
        self.home.join("state.db")
    }

    /// Held (flock) by the one running agent.
    pub fn agent_lock(&self) -> PathBuf {
        self.home.join("agent.lock")
    }

    /// The running agent's pid, for people and test clean-up.
    pub fn agent_pid(&self) -> PathBuf {
        self.home.join("agent.pid")
    }

    /// The agent's own log.
    pub fn agent_log(&self) -> PathBuf {
        self.home.join("agent.log")
    }

    /// Optional settings (`capacity:` overrides).
    pub fn config_file(&self) -> PathBuf {
        self.home.join("config.yaml")
    }

    /// The agent's socket. It lives inside the home (0700), so only the
    /// home's owner reaches it, and a home made anew at the same path has a
    /// socket of its own: a client never reaches an old home's agent.
    pub fn agent_socket(&self) -> PathBuf {
        self.home.join("agent.sock")
    }

    /// Every tenant's secrets, a directory only the owner may enter.
    pub fn secrets_dir(&self) -> PathBuf {
        self.home.join("secrets")
    }

    /// One tenant's secrets, a directory only the owner may enter.
    pub fn tenant_secrets_dir(&self, tenant: &str) -> PathBuf {
        self.secrets_dir().join(tenant)
    }

    /// One secret's keys and values, a file only the owner may read.
    pub fn secret_file(&self, tenant: &str, name: &str) -> PathBuf {
        self.tenant_secrets_dir(tenant).join(format!("{name}.json"))
    }

    /// Everything of one job.
    pub fn job_dir(&self, job_id: i64) -> PathBuf {
        self.home.join("jobs").join(job_id.to_string())
    }

    /// One replica's log, shared by its attempts.
    pub fn replica_log(&self, job_id: i64, replica: &str) -> PathBuf {
        self.job_dir(job_id)
            .join("logs")
            .join(format!("{replica}.log"))
    }

    /// Where the job's volumes are mounted, one directory each.
    pub fn volumes_dir(&self, job_id: i64) -> PathBuf {
        self.job_dir(job_id).join("volumes")
    }

    /// Where one volume of the job is mounted.
    pub fn volume_dir(&self, job_id: i64, name: &str) -> PathBuf {
        self.volumes_dir(job_id).join(name)
    }

    /// The directory of the job's logs.
    pub fn log_dir(&self, job_id: i64) -> PathBuf {
        self.job_dir(job_id).join("logs")
    }

    /// The files of one attempt of one replica.
    pub fn attempt_dir(&self, key: &AttemptKey) -> PathBuf {
        self.job_dir(key.job_id)
            .join("attempts")
            .join(key.replica())
            .join(key.attempt.to_string())
    }
}

/// The files in one attempt's directory.
pub mod attempt_files {
    /// What to run, written by the agent before it starts the supervisor.
    pub const PLAN: &str = "plan.json";
    /// Created exclusively by whoever owns the attempt first: its supervisor,
    /// or an agent recovering from a crash that abandons it.
    pub const CLAIM: &str = "claim";
    /// The replica's process group id, written once it has started.
    pub const GROUP: &str = "group";
    /// The replica's exit status, written atomically by the supervisor.
    pub const EXIT: &str = "exit.json";
}
