//! The gluster CLI: one command at a time, in script mode with XML output, under a timeout, and
//! its answer (`<cliOutput>` with `opRet`, `opErrno`, `opErrstr`) read into a result.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

use super::mount::unavailable;

/// How long to wait before asking again when glusterd is busy with another command on the
/// same volume.
const BUSY_RETRY: Duration = Duration::from_millis(500);

/// How to run the gluster CLI.
#[derive(Debug, Clone)]
pub(super) struct Cli {
    pub program: PathBuf,
    pub socket: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub timeout: Duration,
}

/// A command glusterd answered with success: its XML.
#[derive(Debug)]
pub(super) struct Answer {
    pub xml: String,
}

impl Answer {
    pub fn doc(&self) -> Result<roxmltree::Document<'_>> {
        roxmltree::Document::parse(&self.xml)
            .map_err(|e| unavailable(format!("the gluster CLI's XML does not parse: {e}")))
    }
}

/// Why glusterd refused a command, in its words, before it becomes an [`Error`].
#[derive(Debug)]
pub(super) struct Refusal {
    pub message: String,
}

impl Cli {
    /// Runs `gluster ARGS`; `Ok(Err(refusal))` when glusterd answered but refused. A command that
    /// meets glusterd busy with another one on the same volume is tried again until the timeout.
    pub async fn run(&self, args: &[&str]) -> Result<std::result::Result<Answer, Refusal>> {
        let started = Instant::now();
        loop {
            let answer = self.run_once(args).await?;
            match &answer {
                Err(refusal) if is_busy(&refusal.message) && started.elapsed() < self.timeout => {
                    tokio::time::sleep(BUSY_RETRY).await;
                }
                _ => return Ok(answer),
            }
        }
    }

    async fn run_once(&self, args: &[&str]) -> Result<std::result::Result<Answer, Refusal>> {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(["--mode=script", "--xml"]);
        if let Some(socket) = &self.socket {
            command.arg(format!("--glusterd-sock={}", socket.display()));
        }
        if let Some(log) = &self.log_file {
            command.arg(format!("--log-file={}", log.display()));
        }
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let shown = format!("gluster {}", args.join(" "));
        let child = command.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => unavailable(format!(
                "{shown}: the gluster CLI is not installed ({}: {e}; Debian's glusterfs-cli)",
                self.program.display()
            )),
            _ => unavailable(format!("{shown}: {e}")),
        })?;
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| unavailable(format!("{shown} did not finish within {:?}", self.timeout)))?
            .map_err(|e| unavailable(format!("{shown}: {e}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let Some(start) = stdout.find("<cliOutput>") else {
            // Not an answer of glusterd: the CLI could not reach it, or refused the arguments.
            let said = [stdout.trim(), stderr.trim()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(cli_error(&shown, &said));
        };
        let xml = format!(
            "<?xml version=\"1.0\"?>{}",
            &stdout[start
                ..stdout
                    .find("</cliOutput>")
                    .map_or(stdout.len(), |end| { end + "</cliOutput>".len() })]
        );
        let answer = Answer { xml };
        let doc = answer.doc()?;
        let top = doc.root_element();
        let op_ret: i64 = child_text(top, "opRet")
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(-1);
        if op_ret == 0 && output.status.success() {
            drop(doc);
            return Ok(Ok(answer));
        }
        let message = child_text(top, "opErrstr")
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("{shown} failed (exit status {})", output.status));
        Ok(Err(Refusal { message }))
    }
}

/// The text of `node`'s first child element named `name`.
pub(super) fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .and_then(|c| c.text())
}

fn is_busy(message: &str) -> bool {
    message.contains("Another transaction is in progress") || message.contains("Locking failed")
}

/// Failures of the CLI itself (no answer from glusterd).
fn cli_error(shown: &str, said: &str) -> Error {
    if said.contains("Permission denied") {
        return Error::PermissionDenied {
            path: "glusterd".to_string(),
            message: format!("{shown}: {said} (the gluster CLI needs root)"),
        };
    }
    unavailable(format!("{shown}: {said}"))
}
