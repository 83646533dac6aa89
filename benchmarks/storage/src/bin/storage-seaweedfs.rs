//! SeaweedFS, small objects: moon-storage's blob API against `weed benchmark` on the same
//! servers, alternating round by round; the filer's paths beside them, for information.
//!
//! Each side of each round writes into a collection of its own, whose volumes are made before
//! its clock starts and which is deleted after it; so every run starts on empty volumes, as
//! `weed benchmark` expects. The last line is the ratio of medians, moon / weed, for writes and
//! reads (target: at least 1.0 both ways). Exits 1 when a request failed on either side.
//!
//! Usually run by `benchmarks/storage_seaweedfs.sh`, which starts a bed when none is given.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use moon_storage::Server;
use moon_storage::seaweedfs::{SeaweedOptions, SeaweedStore};
use moon_storage_bench::cpu;
use moon_storage_bench::master::Master;
use moon_storage_bench::seaweed_load::{self, Load, Outcome};
use moon_storage_bench::stats::{Samples, round_ratios};
use moon_storage_bench::weed::Weed;

#[derive(Parser, Debug)]
#[command(about = "moon-storage's SeaweedFS blob API against `weed benchmark`")]
struct Args {
    /// The master, host:port or its http:// URL.
    #[arg(long, env = "MOON_TEST_SEAWEEDFS_MASTER")]
    master: String,
    /// The filer, host:port or its http:// URL.
    #[arg(long, env = "MOON_TEST_SEAWEEDFS_FILER")]
    filer: String,
    /// The `weed` binary the servers run (the peer is its `benchmark` command).
    #[arg(long)]
    weed: PathBuf,
    /// Objects written and reads made by each side in each round.
    #[arg(long, default_value_t = 100_000)]
    objects: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Object size in bytes (each object gets 0 to 63 bytes more, as in `weed benchmark`).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Rounds; each runs both sides, the first side alternating.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Objects of the informative filer line in each round (0: none).
    #[arg(long, default_value_t = 10_000)]
    filer_objects: usize,
    /// Smoke mode: 5,000 objects, 1 round, 1,000 filer objects.
    #[arg(long)]
    quick: bool,
    /// Where `weed benchmark` keeps its list of file ids.
    #[arg(long, default_value = "/tmp")]
    work_dir: PathBuf,
    /// The `weed server` process of the servers, when it runs on this machine: its CPU time
    /// per object is reported for each side (what each client's requests cost the servers).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Run one side only (for profiling it): `moon` or `weed`; no ratio is printed.
    #[arg(long, value_parser = ["moon", "weed"])]
    only: Option<String>,
}

fn address(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

fn server(address: &str) -> Result<Server, String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("'{address}' is not host:port"))?;
    Ok(Server {
        host: host.to_string(),
        port: port
            .parse()
            .map_err(|_| format!("'{address}' has no port number"))?,
        userinfo: None,
    })
}

/// Every figure of the run, by side and phase.
#[derive(Default)]
struct Figures {
    moon_write: Samples,
    moon_read: Samples,
    weed_write: Samples,
    weed_read: Samples,
    filer_write: Samples,
    filer_read: Samples,
    /// Client CPU time per request (write and read together), in microseconds.
    moon_cpu_us: Samples,
    weed_cpu_us: Samples,
    /// The servers' CPU time per object while each side ran, in microseconds.
    moon_server_us: Samples,
    weed_server_us: Samples,
    moon_failed: u64,
    weed_failed: u64,
    filer_failed: u64,
}

struct Bench {
    args: Args,
    load: Load,
    master: Master,
    weed: Weed,
    filer: Server,
    run_id: String,
}

impl Bench {
    fn store(&self, root: &str, collection: &str) -> Result<SeaweedStore, String> {
        let options = SeaweedOptions {
            master: Some(server(&address(&self.args.master))?),
            collection: Some(collection.to_string()),
            timeout: Duration::from_secs(30),
        };
        SeaweedStore::new(self.filer.clone(), root, options).map_err(|e| e.to_string())
    }

    /// The servers' CPU time so far, when their process was named.
    fn server_cpu(&self) -> Option<Duration> {
        self.args.server_pid.and_then(cpu::of_process)
    }

    /// Microseconds of the servers' CPU per object since `before`.
    fn server_us_since(&self, before: Option<Duration>) -> Option<f64> {
        Some(per_request_us(
            self.server_cpu()? - before?,
            self.load.objects,
        ))
    }

    async fn moon_side(&self, round: usize, figures: &mut Figures) -> Result<(), String> {
        let collection = format!("{}-r{round}-moon", self.run_id);
        self.master.prepare(&collection).await?;
        let blobs = self
            .store("/", &collection)?
            .blobs()
            .map_err(|e| e.to_string())?;
        let cpu_before = cpu::own();
        let server_before = self.server_cpu();
        let outcome = async {
            let (fids, write) = seaweed_load::write_blobs(&blobs, self.load).await?;
            let server_mid = self.server_cpu();
            let read = seaweed_load::read_blobs(&blobs, fids, self.load, round as u64).await?;
            Ok::<_, String>((write, read, server_mid))
        }
        .await;
        let cpu_us = per_request_us(cpu::own() - cpu_before, self.load.objects);
        let server_us = self.server_us_since(server_before);
        self.master.delete_collection(&collection).await?;
        let (write, read, server_mid) = outcome?;
        report("moon", write, read, cpu_us, server_us);
        if let (Some(before), Some(mid), Some(total)) = (server_before, server_mid, server_us) {
            let writing = per_request_us(mid - before, self.load.objects);
            println!(
                "         servers' CPU: {writing:.0} us/object writing, {:.0} reading",
                total - writing
            );
        }
        figures.moon_write.push(write.per_second());
        figures.moon_read.push(read.per_second());
        figures.moon_cpu_us.push(cpu_us);
        if let Some(us) = server_us {
            figures.moon_server_us.push(us);
        }
        figures.moon_failed += (write.failed + read.failed) as u64;
        Ok(())
    }

    async fn weed_side(&self, round: usize, figures: &mut Figures) -> Result<(), String> {
        let collection = format!("{}-r{round}-weed", self.run_id);
        self.master.prepare(&collection).await?;
        let cpu_before = cpu::children();
        let server_before = self.server_cpu();
        let outcome = self
            .weed
            .run(
                &collection,
                self.load.objects,
                self.load.concurrency,
                self.load.size,
            )
            .await;
        // The whole `weed` process: its start, its gRPC connection to the master and its
        // reading of the list file count too, though they are outside its timed phases.
        let cpu_us = per_request_us(cpu::children() - cpu_before, self.load.objects);
        let server_us = self.server_us_since(server_before);
        self.master.delete_collection(&collection).await?;
        let report = outcome?;
        println!(
            "  weed   write {:>8.0} req/s ({} failed)   read {:>8.0} req/s ({} failed){}",
            report.write.per_second,
            report.write.failed,
            report.read.per_second,
            report.read.failed,
            cpu_words(cpu_us, server_us)
        );
        figures.weed_write.push(report.write.per_second);
        figures.weed_read.push(report.read.per_second);
        figures.weed_cpu_us.push(cpu_us);
        if let Some(us) = server_us {
            figures.weed_server_us.push(us);
        }
        figures.weed_failed += report.write.failed + report.read.failed;
        Ok(())
    }

    async fn filer_side(&self, round: usize, figures: &mut Figures) -> Result<(), String> {
        let collection = format!("{}-r{round}-filer", self.run_id);
        let root = format!("/moon-bench/{}-r{round}", self.run_id);
        self.master.prepare(&collection).await?;
        let store = self.store(&root, &collection)?;
        let load = Load {
            objects: self.args.filer_objects,
            ..self.load
        };
        let outcome = seaweed_load::filer(&store, load, round as u64).await;
        remove_filer_dir(&address(&self.args.filer), &root).await?;
        self.master.delete_collection(&collection).await?;
        let (write, read) = outcome?;
        report("filer", write, read, f64::NAN, None);
        figures.filer_write.push(write.per_second());
        figures.filer_read.push(read.per_second());
        figures.filer_failed += (write.failed + read.failed) as u64;
        Ok(())
    }
}

/// Microseconds of CPU per object written and read.
fn per_request_us(cpu: Duration, objects: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / objects as f64
}

/// `   client CPU N us/object, servers M us/object`, the parts that were measured.
fn cpu_words(client_us: f64, server_us: Option<f64>) -> String {
    let mut words = String::new();
    if !client_us.is_nan() {
        words.push_str(&format!("   client CPU {client_us:.0} us/object"));
    }
    if let Some(us) = server_us {
        words.push_str(&format!(", servers {us:.0} us/object"));
    }
    words
}

fn report(side: &str, write: Outcome, read: Outcome, cpu_us: f64, server_us: Option<f64>) {
    println!(
        "  {side:<6} write {:>8.0} req/s ({} failed)   read {:>8.0} req/s ({} failed){}",
        write.per_second(),
        write.failed,
        read.per_second(),
        read.failed,
        cpu_words(cpu_us, server_us)
    );
}

/// Removes the filer directory of a round; its chunks go with the collection, deleted next.
async fn remove_filer_dir(filer: &str, root: &str) -> Result<(), String> {
    let url = format!(
        "http://{filer}{root}?recursive=true&ignoreRecursiveError=true&skipChunkDeletion=true"
    );
    let response = reqwest::Client::new()
        .delete(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    Ok(())
}

async fn run(mut args: Args) -> Result<Figures, String> {
    if args.quick {
        args.objects = 5_000;
        args.rounds = 1;
        args.filer_objects = args.filer_objects.min(1_000);
    }
    let load = Load {
        objects: args.objects,
        concurrency: args.concurrency,
        size: args.size,
    };
    let master = Master::new(&address(&args.master))?;
    let leader = master.leader_with_grpc_port().await?;
    let (master_address, grpc_port) = leader
        .rsplit_once('.')
        .ok_or_else(|| format!("leader '{leader}' has no gRPC port"))?;
    let weed = Weed {
        binary: args.weed.clone(),
        master: master_address.to_string(),
        master_grpc_port: grpc_port
            .parse()
            .map_err(|_| format!("leader '{leader}' has no gRPC port"))?,
        list: args
            .work_dir
            .join(format!("weed-benchmark-{}.list", std::process::id())),
    };
    let bench = Bench {
        filer: server(&address(&args.filer))?,
        run_id: format!("moon-bench-{}", std::process::id()),
        load,
        master,
        weed,
        args,
    };
    println!(
        "SeaweedFS at {} (filer {}): {} objects of {}+0..63 bytes, concurrency {}, {} rounds",
        bench.args.master,
        bench.args.filer,
        load.objects,
        load.size,
        load.concurrency,
        bench.args.rounds
    );
    let mut figures = Figures::default();
    for round in 0..bench.args.rounds {
        println!("round {}/{}", round + 1, bench.args.rounds);
        let mut sides = ["moon", "weed"];
        if round % 2 == 1 {
            sides.reverse();
        }
        for side in sides {
            if bench.args.only.as_deref().is_some_and(|only| only != side) {
                continue;
            }
            if side == "moon" {
                bench.moon_side(round, &mut figures).await?;
            } else {
                bench.weed_side(round, &mut figures).await?;
            }
        }
        if bench.args.filer_objects > 0 {
            bench.filer_side(round, &mut figures).await?;
        }
    }
    let _ = std::fs::remove_file(&bench.weed.list);
    println!();
    println!("medians [min-max, spread = (max-min)/median]:");
    let lines = [
        ("moon write", &figures.moon_write, " req/s"),
        ("weed write", &figures.weed_write, " req/s"),
        ("moon read ", &figures.moon_read, " req/s"),
        ("weed read ", &figures.weed_read, " req/s"),
        ("moon CPU  ", &figures.moon_cpu_us, " us/object"),
        ("weed CPU  ", &figures.weed_cpu_us, " us/object"),
        (
            "servers' CPU, moon's load",
            &figures.moon_server_us,
            " us/object",
        ),
        (
            "servers' CPU, weed's load",
            &figures.weed_server_us,
            " us/object",
        ),
    ];
    for (name, samples, unit) in lines {
        if !samples.is_empty() {
            println!("  {name}  {}", samples.summary(0, unit));
        }
    }
    if !figures.filer_write.is_empty() {
        println!(
            "  filer paths (informative, {} objects): write {}, read {}",
            bench.args.filer_objects,
            figures.filer_write.summary(0, " req/s"),
            figures.filer_read.summary(0, " req/s")
        );
    }
    println!(
        "  failed requests: moon {}, weed {}, filer {}",
        figures.moon_failed, figures.weed_failed, figures.filer_failed
    );
    if bench.args.only.is_none() {
        println!(
            "  per-round ratios moon/weed: write {}, read {}",
            round_ratios(&figures.moon_write, &figures.weed_write).summary(2, "x"),
            round_ratios(&figures.moon_read, &figures.weed_read).summary(2, "x")
        );
        println!(
            "moon/weed req/s over {} rounds: write {:.2}x, read {:.2}x",
            bench.args.rounds,
            figures.moon_write.median() / figures.weed_write.median(),
            figures.moon_read.median() / figures.weed_read.median()
        );
    }
    Ok(figures)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(figures) if figures.moon_failed + figures.weed_failed + figures.filer_failed == 0 => {
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!("requests failed (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("storage-seaweedfs: {e}");
            ExitCode::FAILURE
        }
    }
}
