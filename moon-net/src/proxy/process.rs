//! The proxy as a process: a runtime, the routes it starts with, the admin
//! API, and a graceful stop on SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::TcpListener;

use super::{Proxy, Route, serve_admin};
use crate::error::{Error, Result};

/// How a proxy process runs.
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    /// Where the admin API listens (port 0: any free port).
    pub admin: SocketAddr,
    /// Routes to start with; the admin API changes them after.
    pub routes: Vec<Route>,
    /// Worker threads; 1 runs everything on one thread, as one nginx
    /// worker does.
    pub threads: usize,
}

/// A routes file: `{"routes": [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    routes: Vec<Route>,
}

/// Reads a routes file, naming the field at fault.
pub fn read_routes(path: &Path) -> Result<Vec<Route>> {
    let text = std::fs::read(path)?;
    let mut deserializer = serde_json::Deserializer::from_slice(&text);
    let file: RoutesFile =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| Error::InvalidRoute {
            field: format!("{}: {}", path.display(), e.path()),
            message: e.inner().to_string(),
        })?;
    for (i, route) in file.routes.iter().enumerate() {
        route.validate().map_err(|e| match e {
            Error::InvalidRoute { field, message } => Error::InvalidRoute {
                field: format!("routes[{i}].{field}"),
                message,
            },
            other => other,
        })?;
    }
    Ok(file.routes)
}

/// Runs a proxy until SIGTERM or SIGINT; then stops listening and waits up
/// to 10 s for requests in flight. Prints `admin http://ADDR` and, for each
/// route it starts with, `SERVICE http://ADDR` on standard output, once
/// listening.
pub fn run(options: ProxyOptions) -> Result<()> {
    let runtime = if options.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        let proxy = Proxy::new();
        let admin = TcpListener::bind(options.admin)
            .await
            .map_err(|source| Error::Bind {
                addr: options.admin,
                source,
            })?;
        println!("admin http://{}", admin.local_addr()?);
        for route in options.routes {
            let status = proxy.apply(route)?;
            println!("{} http://{}", status.service, status.listen);
        }
        let admin_task = tokio::spawn(serve_admin(admin, Arc::clone(&proxy)));

        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        admin_task.abort();
        let balancers: Vec<_> = proxy
            .status()
            .into_iter()
            .filter_map(|route| proxy.balancer(&route.service))
            .collect();
        for route in proxy.status() {
            proxy.remove(&route.service);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while balancers.iter().any(|b| b.requests_in_flight() > 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    })
}
