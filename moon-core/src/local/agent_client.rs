//! Reaching the agent of a `MOON_HOME` from a client, starting it if none runs.

use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;

use super::environment;
use super::layout::Layout;
use super::protocol::{Reply, Request};
use super::socket;
use crate::error::{Error, Result};

/// The variables the agent reads, beyond what every replica inherits: its
/// home, its idle time, how long a service's replica may drain, the GPU
/// inventory file, and the host name NVML's inventory may fall back on.
const AGENT_SETTINGS: &[&str] = &[
    "MOON_HOME",
    "MOON_AGENT_IDLE_SECONDS",
    super::reconcile::DRAIN_SECONDS_ENV,
    moon_gpu::provider::INVENTORY_ENV,
    "HOSTNAME",
    // Mounting jobs' SeaweedFS volumes (see `volumes`).
    super::volumes::WEED_BIN_ENV,
    super::volumes::FILER_GRPC_PORT_ENV,
];

/// How long a client waits for a newly started agent to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// An open request to the agent: its reply lines.
pub struct AgentReplies {
    lines: Lines<AsyncBufReader<OwnedReadHalf>>,
    _write: tokio::net::unix::OwnedWriteHalf,
}

impl AgentReplies {
    /// The next reply, or `None` when the agent closed the connection.
    pub async fn next(&mut self) -> Result<Option<Reply>> {
        match self.lines.next_line().await {
            Ok(Some(line)) => serde_json::from_str(&line)
                .map(Some)
                .map_err(|error| Error::Agent(format!("unreadable reply {line:?}: {error}"))),
            Ok(None) => Ok(None),
            // A dying agent resets the connection; to the caller that is the end.
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => Ok(None),
            Err(error) => Err(Error::io("reading from the agent", "agent socket", error)),
        }
    }
}

/// Sends `request` to the agent of `layout`, starting one if none runs. An
/// agent that dies as the request goes out (it crashed, or left when idle)
/// is replaced once: what clients record is in the database already, so the
/// new agent finds it.
pub async fn request(layout: &Layout, program: &Path, request: &Request) -> Result<AgentReplies> {
    let mut line = serde_json::to_vec(request).map_err(|error| Error::Agent(error.to_string()))?;
    line.push(b'\n');
    let stream = match connect(layout) {
        Ok(stream) => stream,
        Err(_) => connect_starting_agent(layout, program).await?,
    };
    match send_line(layout, stream, &line).await {
        Err(SendError::AgentGone) => {
            let stream = connect_starting_agent(layout, program).await?;
            send_line(layout, stream, &line)
                .await
                .map_err(|error| error.into_error(layout))
        }
        other => other.map_err(|error| error.into_error(layout)),
    }
}

enum SendError {
    /// The agent closed the connection before the request was written.
    AgentGone,
    Other(Error),
}

impl SendError {
    fn into_error(self, layout: &Layout) -> Error {
        match self {
            SendError::AgentGone => Error::Agent(format!(
                "the agent of {} closed the connection; see {}",
                layout.home().display(),
                layout.agent_log().display()
            )),
            SendError::Other(error) => error,
        }
    }
}

async fn send_line(
    layout: &Layout,
    stream: std::os::unix::net::UnixStream,
    line: &[u8],
) -> Result<AgentReplies, SendError> {
    let stream = UnixStream::from_std(stream).map_err(|error| {
        SendError::Other(Error::io("connecting to the agent", layout.home(), error))
    })?;
    let (read, mut write) = stream.into_split();
    match write.write_all(line).await {
        Ok(()) => Ok(AgentReplies {
            lines: AsyncBufReader::new(read).lines(),
            _write: write,
        }),
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) =>
        {
            Err(SendError::AgentGone)
        }
        Err(error) => Err(SendError::Other(Error::io(
            "writing to the agent",
            layout.home(),
            error,
        ))),
    }
}

fn connect(layout: &Layout) -> io::Result<std::os::unix::net::UnixStream> {
    socket::connect(&layout.agent_socket())
}

/// Starts an agent and connects to it. An agent that reports `busy` holds
/// the home but is not listening yet (starting) or any more (leaving when
/// idle); the start is repeated until one listens or the time runs out.
async fn connect_starting_agent(
    layout: &Layout,
    program: &Path,
) -> Result<std::os::unix::net::UnixStream> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut delay = Duration::from_millis(5);
    loop {
        start_agent(layout, program).await?;
        match connect(layout) {
            Ok(stream) => return Ok(stream),
            Err(error) if Instant::now() >= deadline => {
                return Err(Error::Agent(format!(
                    "no agent answers for {} ({error}); see {}",
                    layout.home().display(),
                    layout.agent_log().display()
                )));
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(200));
            }
        }
    }
}

/// Starts `program __agent HOME`, which detaches, and waits for its first line.
async fn start_agent(layout: &Layout, program: &Path) -> Result<()> {
    let layout = layout.clone();
    let program = program.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&program)
            .arg("__agent")
            .arg(layout.home())
            // The agent outlives its starter and has no use for a notebook's
            // tokens: it gets what replicas inherit and the settings it reads.
            .env_clear()
            .envs(std::env::vars_os().filter(|(name, _)| {
                name.to_str().is_some_and(|name| {
                    environment::always_inherited(name) || AGENT_SETTINGS.contains(&name)
                })
            }))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| Error::io("starting the agent", &program, error))?;
        let mut first_line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut first_line);
        }
        // The program we started forks the agent and exits at once; reap it.
        let _ = child.wait();
        match first_line.trim() {
            "ready" | "busy" => Ok(()),
            "" => Err(Error::Agent(format!(
                "{} did not start an agent; is it a moon program?",
                program.display()
            ))),
            other => Err(Error::Agent(other.trim_start_matches("error ").to_string())),
        }
    })
    .await
    .map_err(|error| Error::Agent(format!("agent start-up task failed: {error}")))?
}
