//! Launching one attempt of a replica: its plan (command, environment,
//! working directory) written where its supervisor reads it, the attempt
//! recorded, then the supervisor started in a session of its own. The
//! attempt is recorded before its supervisor starts, and the supervisor
//! claims it before running anything, so a crash anywhere in between never
//! runs it twice (`recovery` tells the cases apart).

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::crash_points::{self, CrashPoint};
use super::environment;
use super::gpus::Gpus;
use super::layout::{Layout, attempt_files};
use super::private;
use super::secrets;
use super::services;
use super::store::{self, AttemptKey, Connection, JobRecord, ReplicaRecord, now_ms};
use super::supervisor::{self, AttemptPlan, ExitRecord};
use super::volumes;
use crate::backend::Phase;
use crate::error::{Error, Result};
use crate::rendezvous;
use crate::volumes::replica_env as volume_env;

/// Seconds a stopped replica gets between SIGTERM and SIGKILL.
const GRACE_SECONDS: u64 = 5;

/// How a launch went.
pub enum Launched {
    /// The attempt's supervisor runs, with this pid.
    Running(AttemptKey, i32),
    /// Its supervisor could not start; the attempt's exit record says why,
    /// and the attempt ends like any other.
    NotStarted(AttemptKey),
}

/// Starts the next attempt of `replica` with `program` as its supervisor.
pub fn launch(
    db: &Connection,
    layout: &Layout,
    program: &Path,
    gpus: &Gpus,
    job: &JobRecord,
    replica: &ReplicaRecord,
) -> Result<Launched> {
    let name = replica.name();
    let attempt = store::next_attempt(db, job.id, &replica.role, replica.index)?;
    let key = AttemptKey {
        job_id: job.id,
        role: replica.role.clone(),
        index: replica.index,
        attempt,
    };
    let dir = layout.attempt_dir(&key);
    private::create_dir_all(&dir).map_err(|error| Error::io("creating", &dir, error))?;
    let plan = plan(layout, gpus, job, &replica.role, replica.index, attempt)?;
    let plan_bytes =
        serde_json::to_vec_pretty(&plan).map_err(|error| Error::Agent(error.to_string()))?;
    supervisor::write_visibly(&dir.join(attempt_files::PLAN), &plan_bytes)
        .map_err(|error| Error::io("writing", dir.join(attempt_files::PLAN), error))?;

    let tx = db.transaction()?;
    store::record_launch(&tx, &key, now_ms())?;
    tx.commit()?;
    crash_points::reached(layout.home(), CrashPoint::BeforeSpawn);

    let mut command = Command::new(program);
    command
        .arg("__supervise")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; the supervisor gets its own
    // session so that signals meant for the agent's group spare it.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(io::Error::from));
    }
    let pid = match command.spawn() {
        Ok(child) => child.id() as i32,
        Err(error) => {
            let exit = ExitRecord {
                code: None,
                signal: None,
                finished_ms: now_ms(),
                error: Some(format!(
                    "cannot start its supervisor {}: {error}",
                    program.display()
                )),
            };
            let bytes = serde_json::to_vec(&exit).unwrap_or_default();
            let _ = supervisor::write_atomically(&dir.join(attempt_files::EXIT), &bytes);
            return Ok(Launched::NotStarted(key));
        }
    };
    let tx = db.transaction()?;
    store::mark_attempt_running(&tx, &key, pid)?;
    store::add_event(
        &tx,
        job,
        "ReplicaStarted",
        Phase::Running,
        Some(&name),
        &format!("{name} started (attempt {attempt})"),
    )?;
    tx.commit()?;
    Ok(Launched::Running(key, pid))
}

/// The command, environment and directory of one attempt.
fn plan(
    layout: &Layout,
    gpus: &Gpus,
    job: &JobRecord,
    role_name: &str,
    index: u32,
    attempt: u32,
) -> Result<AttemptPlan> {
    let tracker_port = job.ports.get("tracker").copied().unwrap_or(0);
    let hidden = rendezvous::hidden_roles(&job.spec, "127.0.0.1", tracker_port);
    let role = job
        .spec
        .roles
        .iter()
        .chain(hidden.iter())
        .find(|role| role.name == role_name)
        .ok_or_else(|| Error::Agent(format!("job {} has no role {role_name:?}", job.key())))?;
    let endpoints = rendezvous::Endpoints::new(|_, _| "127.0.0.1".to_string(), job.ports.clone());
    let inherited = environment::inherited(&job.submit_env, role);
    let env_from = secrets::sources(layout, &job.spec.tenant, role);
    let replica = format!("{role_name}-{index}");
    let mut env = role.env.clone();
    env.extend(rendezvous::replica_env(
        &job.spec, role_name, index, &endpoints,
    ));
    env.extend(volume_env(&job.volumes, |volume| {
        volumes::mount_point(layout, job.id, volume).map(|dir| dir.display().to_string())
    }));
    env.insert("MOON_ATTEMPT".into(), attempt.to_string());
    if job.service.is_some() {
        env.extend(services::replica_env(job, index));
    }
    gpus.expose(&mut env, job, &replica);
    let submit_dir = PathBuf::from(&job.submit_dir);
    let working_dir = match &role.working_dir {
        Some(dir) => submit_dir.join(dir),
        None => submit_dir,
    };
    Ok(AttemptPlan {
        log: layout.replica_log(job.id, &replica),
        replica,
        argv: role.argv(),
        env,
        inherited,
        env_from,
        working_dir,
        grace_seconds: GRACE_SECONDS,
    })
}

/// Whether `role` is one rendezvous adds to the job (XGBoost's tracker)
/// rather than one of its spec's: such a role starts before the job's
/// startup ports listen, and its success decides nothing.
pub fn is_hidden_role(job: &JobRecord, role: &str) -> bool {
    !job.spec
        .roles
        .iter()
        .any(|spec_role| spec_role.name == role)
}
