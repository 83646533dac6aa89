//! The peer of the HDFS benchmark: Hadoop's Java client in one JVM
//! (`benchmarks/storage/hdfs-java-peer`), which times its own writes and reads, so that the
//! JVM's start and warm-up stay out of its figures. It is driven a round at a time over its
//! standard input.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How the peer is started.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// The `java` binary.
    pub java: PathBuf,
    /// The peer's classpath: its classes, then Hadoop's client jars.
    pub classpath: String,
    /// The namenode, `hdfs://host:port`.
    pub url: String,
    /// The directory holding the cluster's `core-site.xml`, if any.
    pub conf_dir: Option<PathBuf>,
    /// The HDFS directory the peer writes in.
    pub dir: String,
    /// Bytes per file.
    pub size: u64,
    /// Bytes per `write` and `read` call.
    pub chunk: usize,
    /// Bytes of the untimed file written and read before the first round.
    pub warmup: u64,
}

/// A running peer, ready for rounds.
pub struct JavaPeer {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl JavaPeer {
    /// Starts the JVM and waits until it has connected and warmed up.
    pub async fn start(options: &PeerOptions) -> Result<Self, String> {
        let mut command = Command::new(&options.java);
        command
            .arg("-Xmx1g")
            .arg("-cp")
            .arg(&options.classpath)
            .arg("moon.bench.HdfsPeer")
            .arg("--url")
            .arg(&options.url)
            .arg("--dir")
            .arg(&options.dir)
            .arg("--size")
            .arg(options.size.to_string())
            .arg("--chunk")
            .arg(options.chunk.to_string())
            .arg("--warmup")
            .arg(options.warmup.to_string());
        if let Some(dir) = &options.conf_dir {
            command.arg("--conf-dir").arg(dir);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", options.java.display()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut peer = JavaPeer {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        };
        match peer.next_line().await?.as_str() {
            "READY" => Ok(peer),
            other => Err(format!("the Java peer said '{other}' instead of READY")),
        }
    }

    async fn next_line(&mut self) -> Result<String, String> {
        match self.lines.next_line().await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err("the Java peer ended (see its errors above)".to_string()),
            Err(e) => Err(format!("reading the Java peer's output: {e}")),
        }
    }

    /// Writes and reads the file `name`, created as `create` says; the peer's own figures.
    pub async fn round(&mut self, name: &str, create: JavaCreate) -> Result<Round, String> {
        let mode = match create {
            JavaCreate::SyncBlock => "sync",
            JavaCreate::Default => "default",
        };
        self.stdin
            .write_all(format!("round {name} {mode}\n").as_bytes())
            .await
            .map_err(|e| format!("the Java peer's input: {e}"))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| format!("the Java peer's input: {e}"))?;
        let line = self.next_line().await?;
        parse_round(&line, name).ok_or_else(|| format!("the Java peer said '{line}'"))
    }

    /// Ends the peer: its input closes, it deletes its directory and exits.
    pub async fn finish(self) -> Result<(), String> {
        let JavaPeer {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .map_err(|_| "the Java peer did not exit within 60 s".to_string())?
            .map_err(|e| format!("waiting for the Java peer: {e}"))?;
        if !status.success() {
            return Err(format!("the Java peer exited with {status}"));
        }
        Ok(())
    }
}

/// How the peer creates its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JavaCreate {
    /// `FileSystem.create(path, true)`: the datanode finalizes each block without syncing it.
    Default,
    /// With `CreateFlag.SYNC_BLOCK`: each block is written through to disk before the datanode
    /// finalizes it (what hdfs-native asks at the end of every block).
    SyncBlock,
}

impl JavaCreate {
    /// The side's name in the report.
    pub fn label(self) -> &'static str {
        match self {
            JavaCreate::SyncBlock => "java-sync",
            JavaCreate::Default => "java",
        }
    }

    /// The way of creating that [`Self::label`] names (`java` for any other name).
    pub fn of_label(label: &str) -> Self {
        if label == JavaCreate::SyncBlock.label() {
            JavaCreate::SyncBlock
        } else {
            JavaCreate::Default
        }
    }
}

/// One round's figures, as the peer measured them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// From create to close.
    pub write: Duration,
    /// From open to the end of the file.
    pub read: Duration,
    /// The JVM's CPU time while writing (every thread: the client's, the JIT's, the GC's).
    pub write_cpu: Duration,
    /// The JVM's CPU time while reading.
    pub read_cpu: Duration,
}

/// `ROUND NAME WRITE_NS READ_NS WRITE_CPU_NS READ_CPU_NS` for the round `name`.
fn parse_round(line: &str, name: &str) -> Option<Round> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let ns = |word: &str| word.parse().ok().map(Duration::from_nanos);
    match words.as_slice() {
        ["ROUND", got, write, read, write_cpu, read_cpu] if *got == name => Some(Round {
            write: ns(write)?,
            read: ns(read)?,
            write_cpu: ns(write_cpu)?,
            read_cpu: ns(read_cpu)?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_lines_are_read_for_their_round_only() {
        assert_eq!(
            parse_round("ROUND j1 9362274967 4474789814 5000000000 2000000000", "j1"),
            Some(Round {
                write: Duration::from_nanos(9_362_274_967),
                read: Duration::from_nanos(4_474_789_814),
                write_cpu: Duration::from_secs(5),
                read_cpu: Duration::from_secs(2),
            })
        );
        assert_eq!(parse_round("ROUND j2 1 2 3 4", "j1"), None);
        assert_eq!(parse_round("ROUND j1 1 2", "j1"), None);
        assert_eq!(parse_round("Exception in thread main", "j1"), None);
    }
}
