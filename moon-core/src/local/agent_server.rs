//! The agent's side of its socket: accepts connections from the home's owner
//! only, takes nudges, and streams a job's events to its watchers. It runs on
//! the agent's async runtime; everything that reads SQLite runs on the
//! runtime's blocking pool, so a slow disk never stalls the accept loop.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::event_hub::EventHub;
use super::protocol::{Reply, Request};
use super::store::{self, AttemptKey, Connection};
use crate::backend::{Event, Phase};
use crate::error::{Error, Result};

/// What the agent's loop is told by its connections.
pub enum Message {
    /// Something changed in the database (a submission, a cancel, a quota).
    Kick,
    /// An attempt's supervisor exited.
    AttemptEnded(AttemptKey),
    /// The job's startup ports listen (or waiting for them timed out).
    StartupDone(i64),
    /// The job's volumes are mounted, or why one could not be.
    VolumesMounted(i64, std::result::Result<(), String>),
}

/// The longest pause of the accept loop after an error such as EMFILE.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Everything a connection needs; cheap to clone.
#[derive(Clone)]
pub struct Server {
    /// The state database, for watchers' catch-up reads.
    pub database: Arc<Path>,
    /// Where connections send their nudges.
    pub messages: std_mpsc::Sender<Message>,
    /// Live events by job.
    pub hub: Arc<EventHub>,
    /// Connections following a job now; the agent stays while any does.
    pub watchers: Arc<AtomicUsize>,
    /// Read-only connections kept for watchers' catch-up reads.
    pub readers: Arc<Mutex<Vec<Connection>>>,
}

impl Server {
    /// Serves `listener` until the returned task is aborted.
    pub fn accept(&self, listener: UnixListener) -> JoinHandle<()> {
        let server = self.clone();
        tokio::spawn(async move {
            let owner = nix::unistd::geteuid().as_raw();
            let mut backoff = Duration::from_millis(5);
            let mut refused = 0u64;
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of descriptors (EMFILE) or memory: pause rather
                        // than spin, and let connections close meanwhile.
                        eprintln!("moon agent: accepting a connection: {error}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                        continue;
                    }
                };
                backoff = Duration::from_millis(5);
                match stream.peer_cred() {
                    Ok(peer) if peer.uid() == owner => {}
                    Ok(peer) => {
                        refused += 1;
                        // Logged sparingly: a flood must not fill the disk.
                        if refused.is_power_of_two() {
                            eprintln!(
                                "moon agent: refused a connection from uid {} (pid {:?}); \
                                 only uid {owner} may use this agent ({refused} refused so far)",
                                peer.uid(),
                                peer.pid()
                            );
                        }
                        continue;
                    }
                    Err(error) => {
                        eprintln!("moon agent: reading a peer's credentials: {error}");
                        continue;
                    }
                }
                let server = server.clone();
                tokio::spawn(async move {
                    if let Err(error) = server.handle(stream).await {
                        eprintln!("moon agent: client connection: {error}");
                    }
                });
            }
        })
    }

    async fn handle(&self, stream: UnixStream) -> Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let Ok(Some(line)) = lines.next_line().await else {
            return Ok(());
        };
        let request: Request = match serde_json::from_str(&line) {
            Ok(request) => request,
            Err(error) => {
                let message = format!("bad request: {error}");
                return send(&mut write, &Reply::Error { message }).await;
            }
        };
        match request {
            Request::Kick => {
                let _ = self.messages.send(Message::Kick);
                let pid = std::process::id();
                send(&mut write, &Reply::Ok { pid }).await
            }
            Request::Watch { job, after } => {
                self.watchers.fetch_add(1, Ordering::SeqCst);
                let result = self.stream_events(job, after, &mut write).await;
                self.watchers.fetch_sub(1, Ordering::SeqCst);
                result
            }
        }
    }

    /// Sends the job's stored events after `after`, then its live ones,
    /// until its terminal event.
    async fn stream_events(&self, job: i64, after: u64, write: &mut OwnedWriteHalf) -> Result<()> {
        // Subscribe first, then read what is stored: an event committed in
        // between comes both ways and is sent once.
        let mut live = self.hub.subscribe(job);
        let (phase, stored) = match self.stored_events(job, after).await {
            Ok(found) => found,
            Err(error) => {
                let message = error.to_string();
                return send(write, &Reply::Error { message }).await;
            }
        };
        let mut last = after;
        for event in stored {
            if forward(write, event, &mut last).await? {
                return Ok(());
            }
        }
        if phase.is_terminal() {
            // Ended before `after`'s successors: there is nothing more to follow.
            return Ok(());
        }
        while let Some(event) = live.recv().await {
            if event.seq > last && forward(write, event, &mut last).await? {
                return Ok(());
            }
        }
        // The job was deleted, or the agent is leaving: the stream ends.
        Ok(())
    }

    async fn stored_events(&self, job: i64, after: u64) -> Result<(Phase, Vec<Event>)> {
        let database = self.database.clone();
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let reader = readers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop();
            let reader = match reader {
                Some(reader) => reader,
                None => store::open(&database)?,
            };
            let events = store::job_events(&reader, job, after);
            readers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(reader);
            events
        })
        .await
        .map_err(|error| Error::Agent(format!("reading events failed: {error}")))?
    }
}

/// Sends one event; whether it was the job's last.
async fn forward(write: &mut OwnedWriteHalf, event: Event, last: &mut u64) -> Result<bool> {
    *last = event.seq;
    let terminal = event.phase.is_terminal();
    send(write, &Reply::Event { event }).await?;
    Ok(terminal)
}

async fn send(write: &mut OwnedWriteHalf, reply: &Reply) -> Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(|error| Error::Agent(error.to_string()))?;
    line.push(b'\n');
    write
        .write_all(&line)
        .await
        .map_err(|error| Error::io("answering a client", "agent socket", error))
}
