//! HDFS, one large file: a sequential write and read through moon-storage's `HdfsStore` against
//! Hadoop's Java client timing the same in one warm JVM, alternating round by round.
//!
//! Both sides write SIZE bytes in CHUNK-sized pieces to a new file, close it, read it to its
//! end in CHUNK-sized pieces, check the length and delete it; both warm up first with an
//! untimed file. The last line is the ratio of medians, moon / Java, for writes and reads
//! (target: at least 1.0 both ways).
//!
//! Usually run by `benchmarks/storage_hdfs.sh`, which builds the Java peer and starts a bed
//! when none is given.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use moon_storage::{HdfsOptions, HdfsStore, Server, Store, StorePath};
use moon_storage_bench::cpu;
use moon_storage_bench::hdfs_load;
use moon_storage_bench::java_peer::{JavaCreate, JavaPeer, PeerOptions, Round};
use moon_storage_bench::stats::{Samples, round_ratios};

const MIB: u64 = 1 << 20;

#[derive(Parser, Debug)]
#[command(about = "moon-storage's HDFS store against Hadoop's Java client")]
struct Args {
    /// The namenode, hdfs://host:port.
    #[arg(long, env = "MOON_TEST_HDFS_URL")]
    url: String,
    /// The directory of the cluster's core-site.xml.
    #[arg(long, env = "MOON_TEST_HDFS_CONF_DIR")]
    conf_dir: Option<PathBuf>,
    /// The Java peer's classpath (its classes, then Hadoop's client jars).
    #[arg(long)]
    java_classpath: String,
    /// The `java` binary.
    #[arg(long, default_value = "java")]
    java: PathBuf,
    /// MiB per file.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// KiB per write and read call on both sides.
    #[arg(long, default_value_t = 1024)]
    chunk_kib: usize,
    /// MiB of the untimed warm-up file of each side.
    #[arg(long, default_value_t = 128)]
    warmup_mib: u64,
    /// Rounds; each runs both sides, the first side alternating.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Smoke mode: 128 MiB files, a 16 MiB warm-up, 1 round.
    #[arg(long)]
    quick: bool,
    /// Run one side only (for profiling it): `moon` or `java`; no ratio is printed.
    #[arg(long, value_parser = ["moon", "java"])]
    only: Option<String>,
    /// How the Java client creates its files: `sync` (CreateFlag.SYNC_BLOCK: each block is
    /// written through to disk when it is finalized, as moon's client always asks), `default`
    /// (FileSystem.create(path, true): no sync), or `both`.
    #[arg(long, value_enum, default_value_t = JavaCreates::Both)]
    java_create: JavaCreates,
}

const MOON: &str = "moon";

/// Which of the Java client's ways to create a file run.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum JavaCreates {
    Sync,
    Default,
    Both,
}

impl JavaCreates {
    fn modes(self) -> &'static [JavaCreate] {
        match self {
            JavaCreates::Sync => &[JavaCreate::SyncBlock],
            JavaCreates::Default => &[JavaCreate::Default],
            JavaCreates::Both => &[JavaCreate::SyncBlock, JavaCreate::Default],
        }
    }
}

fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / took.as_secs_f64() / 1e6
}

/// One side's figures over the rounds.
#[derive(Default)]
struct Side {
    write: Samples,
    read: Samples,
    /// Client CPU seconds per GiB.
    write_cpu: Samples,
    read_cpu: Samples,
}

impl Side {
    fn record(&mut self, name: &str, size: u64, round: Round) {
        let gib = size as f64 / (1u64 << 30) as f64;
        let (w, r) = (mb_per_s(size, round.write), mb_per_s(size, round.read));
        let (wc, rc) = (
            round.write_cpu.as_secs_f64() / gib,
            round.read_cpu.as_secs_f64() / gib,
        );
        println!(
            "  {name:<9} write {w:>7.1} MB/s ({:.2} s, CPU {wc:.2} s/GiB)   read {r:>7.1} MB/s ({:.2} s, CPU {rc:.2} s/GiB)",
            round.write.as_secs_f64(),
            round.read.as_secs_f64()
        );
        self.write.push(w);
        self.read.push(r);
        self.write_cpu.push(wc);
        self.read_cpu.push(rc);
    }
}

struct Moon {
    store: HdfsStore,
    /// The directory of this run below the store's root; deleting its last file removes it.
    dir: String,
    size: u64,
    chunk: bytes::Bytes,
}

impl Moon {
    /// Writes, reads and deletes the file `name`: the times and this process's CPU time of the
    /// write and the read.
    async fn once(&self, name: &str, size: u64) -> Result<Round, String> {
        let path = StorePath::parse(&format!("{}/{name}", self.dir)).map_err(|e| e.to_string())?;
        let cpu0 = cpu::own();
        let write = hdfs_load::write(&self.store, &path, size, &self.chunk)
            .await
            .map_err(|e| format!("moon's write: {e}"))?;
        let cpu1 = cpu::own();
        let read = hdfs_load::read(&self.store, &path, size)
            .await
            .map_err(|e| format!("moon's read: {e}"))?;
        let cpu2 = cpu::own();
        self.store
            .delete(&path)
            .await
            .map_err(|e| format!("deleting {path}: {e}"))?;
        Ok(Round {
            write,
            read,
            write_cpu: cpu1 - cpu0,
            read_cpu: cpu2 - cpu1,
        })
    }
}

async fn run(mut args: Args) -> Result<(), String> {
    if args.quick {
        args.size_mib = 128;
        args.warmup_mib = 16;
        args.rounds = 1;
    }
    let size = args.size_mib * MIB;
    let chunk = hdfs_load::chunk(args.chunk_kib * 1024);
    let rest = args
        .url
        .strip_prefix("hdfs://")
        .ok_or_else(|| format!("'{}' is not an hdfs:// URL", args.url))?;
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .ok_or_else(|| format!("'{}' names no port", args.url))?;
    let server = Server {
        host: host.to_string(),
        port: port
            .parse()
            .map_err(|_| format!("'{}' names no port", args.url))?,
        userinfo: None,
    };
    let run_id = format!("moon-bench-{}", std::process::id());
    let mut options = HdfsOptions::default();
    if let Some(dir) = &args.conf_dir {
        options = options.with_config_dir(dir);
    }
    let moon = Moon {
        store: HdfsStore::new(server, "/moon-bench", options).map_err(|e| e.to_string())?,
        dir: format!("{run_id}-moon"),
        size,
        chunk,
    };
    println!(
        "HDFS at {}: {} MiB written then read per side and round, {} KiB per call, {} rounds",
        args.url, args.size_mib, args.chunk_kib, args.rounds
    );
    let runs = |side: &str| args.only.as_deref().is_none_or(|only| only == side);
    let mut peer = if !runs("java") {
        None
    } else {
        Some(
            JavaPeer::start(&PeerOptions {
                java: args.java.clone(),
                classpath: args.java_classpath.clone(),
                url: args.url.clone(),
                conf_dir: args.conf_dir.clone(),
                dir: format!("/moon-bench/{run_id}-java"),
                size,
                chunk: args.chunk_kib * 1024,
                warmup: args.warmup_mib * MIB,
            })
            .await?,
        )
    };
    if runs("moon") {
        moon.once("warmup", args.warmup_mib * MIB).await?;
    }

    // moon, then the Java client creating files as moon's does (each block synced to disk
    // before the datanode finalizes it), then Java's default create; the order rotates.
    let mut sides: Vec<&str> = Vec::new();
    if runs("moon") {
        sides.push(MOON);
    }
    if peer.is_some() {
        sides.extend(args.java_create.modes().iter().map(|mode| mode.label()));
    }
    let mut figures: BTreeMap<&str, Side> = BTreeMap::new();
    for round in 0..args.rounds {
        println!("round {}/{}", round + 1, args.rounds);
        let name = format!("r{round}");
        for i in 0..sides.len() {
            let side = sides[(i + round) % sides.len()];
            let took = match (side, peer.as_mut()) {
                (MOON, _) => moon.once(&name, moon.size).await?,
                (_, Some(peer)) => peer.round(&name, JavaCreate::of_label(side)).await?,
                (_, None) => unreachable!("Java sides run only with the peer"),
            };
            figures.entry(side).or_default().record(side, size, took);
        }
    }
    if let Some(peer) = peer {
        peer.finish().await?;
    }

    println!();
    println!("medians [min-max, spread = (max-min)/median]:");
    for side in &sides {
        let f = &figures[side];
        println!("  {side:<9} write {}", f.write.summary(1, " MB/s"));
        println!("  {side:<9} read  {}", f.read.summary(1, " MB/s"));
        println!(
            "  {side:<9} CPU   write {}, read {}",
            f.write_cpu.summary(2, " s/GiB"),
            f.read_cpu.summary(2, " s/GiB")
        );
    }
    let Some(moon) = figures.get(MOON) else {
        return Ok(());
    };
    let mut last = Vec::new();
    for side in sides.iter().filter(|s| **s != MOON) {
        let java = &figures[side];
        println!(
            "  per-round ratios moon/{side}: write {}, read {}",
            round_ratios(&moon.write, &java.write).summary(2, "x"),
            round_ratios(&moon.read, &java.read).summary(2, "x")
        );
        last.push(format!(
            "vs {side}: write {:.2}x, read {:.2}x",
            moon.write.median() / java.write.median(),
            moon.read.median() / java.read.median()
        ));
    }
    if !last.is_empty() {
        println!(
            "moon/java MB/s over {} rounds: {}",
            args.rounds,
            last.join("; ")
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storage-hdfs: {e}");
            ExitCode::FAILURE
        }
    }
}
