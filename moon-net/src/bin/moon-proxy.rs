//! moon's HTTP proxy on its own: the local backend starts it for services;
//! run by hand, it serves the routes of a JSON file.
//!
//! ```text
//! moon-proxy [--admin ADDR] [--routes FILE] [--threads N]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use moon_net::proxy::{ProxyOptions, read_routes, run};

const USAGE: &str = "usage: moon-proxy [--admin ADDR] [--routes FILE] [--threads N]
  --admin ADDR    where the admin API listens (default 127.0.0.1:0)
  --routes FILE   JSON {\"routes\": [...]} to start with
  --threads N     worker threads (default 1)";

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match parse(std::env::args().skip(1))
        .and_then(|options| run(options).map_err(|e| e.to_string()))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("moon-proxy: {message}");
            ExitCode::from(2)
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<ProxyOptions, String> {
    let mut options = ProxyOptions {
        admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        routes: Vec::new(),
        threads: 1,
    };
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--admin" => {
                let text = value("--admin")?;
                options.admin = text.parse().map_err(|e| format!("--admin {text:?}: {e}"))?;
            }
            "--routes" => {
                let path = PathBuf::from(value("--routes")?);
                options.routes = read_routes(&path).map_err(|e| e.to_string())?;
            }
            "--threads" => {
                let text = value("--threads")?;
                options.threads = text
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n >= 1)
                    .ok_or(format!(
                        "--threads {text:?}: not a number of threads (1 or more)"
                    ))?;
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(options)
}
