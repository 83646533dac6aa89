//! The peer of the SeaweedFS benchmark: `weed benchmark`, SeaweedFS's own Go client, which
//! writes N small files (a `dir/assign` over gRPC, a multipart upload to the volume server each)
//! and then reads N of them back at random, timing each phase itself.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Command;

/// One phase as `weed benchmark` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Requests that succeeded.
    pub completed: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Its own figure: completed requests per second of the phase.
    pub per_second: f64,
}

/// Both phases of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Writing N files.
    pub write: Phase,
    /// Reading N files, picked at random from those written.
    pub read: Phase,
}

/// How `weed benchmark` is run.
#[derive(Debug, Clone)]
pub struct Weed {
    /// The `weed` binary (the bed's own).
    pub binary: PathBuf,
    /// The master, `host:port`.
    pub master: String,
    /// The master's gRPC port, which the Go client assigns file ids through.
    pub master_grpc_port: u16,
    /// Where the list of written file ids goes (the read phase reads it back).
    pub list: PathBuf,
}

impl Weed {
    /// Runs one write-then-read benchmark into `collection`.
    pub async fn run(
        &self,
        collection: &str,
        objects: usize,
        concurrency: usize,
        size: usize,
    ) -> Result<Report, String> {
        let output = Command::new(&self.binary)
            .arg("benchmark")
            // `host:port.grpcPort`: the gRPC port is not the default port + 10000 on the bed.
            .arg(format!("-master={}.{}", self.master, self.master_grpc_port))
            .arg(format!("-c={concurrency}"))
            .arg(format!("-n={objects}"))
            .arg(format!("-size={size}"))
            .arg(format!("-collection={collection}"))
            .arg(format!("-list={}", self.list.display()))
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "weed benchmark exited with {}: {}{}",
                output.status,
                tail(&stdout),
                tail(&String::from_utf8_lossy(&output.stderr))
            ));
        }
        parse(&stdout).ok_or_else(|| {
            format!(
                "weed benchmark printed no figures for both phases: {}",
                tail(&stdout)
            )
        })
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The figures of both phases from `weed benchmark`'s output.
pub fn parse(output: &str) -> Option<Report> {
    let write_at = output.find("Writing Benchmark")?;
    let read_at = output.find("Reading Benchmark")?;
    if read_at < write_at {
        return None;
    }
    Some(Report {
        write: phase(&output[write_at..read_at])?,
        read: phase(&output[read_at..])?,
    })
}

fn phase(section: &str) -> Option<Phase> {
    let field = |name: &str| -> Option<&str> {
        section
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
    };
    Some(Phase {
        completed: field("Completed requests:")?.parse().ok()?,
        failed: field("Failed requests:")?.parse().ok()?,
        per_second: field("Requests per second:")?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // What weed 4.48 printed for `weed benchmark -c=16 -n=2000 -size=1024` on the bed
    // (latency tables shortened).
    const OUTPUT: &str = "\
------------ Writing Benchmark ----------
Completed 936 of 2000 requests, 46.8% 936.0/s 0.9MB/s

Concurrency Level:      16
Time taken for tests:   1.626 seconds
Completed requests:      2000
Failed requests:        0
Total transferred:      2109403 bytes
Requests per second:    1229.93 [#/sec]
Transfer rate:          1266.81 [Kbytes/sec]

Percentage of the requests served within a certain time (ms)
   50%      4.0 ms
  100%    1018.6 ms

------------ Randomly Reading Benchmark ----------

Concurrency Level:      16
Time taken for tests:   0.419 seconds
Completed requests:      1998
Failed requests:        2
Total transferred:      2110181 bytes
Requests per second:    4771.59 [#/sec]
Transfer rate:          4916.46 [Kbytes/sec]
";

    #[test]
    fn both_phases_are_read() {
        let report = parse(OUTPUT).unwrap();
        assert_eq!(
            report.write,
            Phase {
                completed: 2000,
                failed: 0,
                per_second: 1229.93
            }
        );
        assert_eq!(
            report.read,
            Phase {
                completed: 1998,
                failed: 2,
                per_second: 4771.59
            }
        );
    }

    #[test]
    fn a_run_without_its_read_phase_has_no_report() {
        let cut = &OUTPUT[..OUTPUT.find("------------ Randomly").unwrap()];
        assert_eq!(parse(cut), None);
        assert_eq!(parse("connection refused"), None);
    }
}
