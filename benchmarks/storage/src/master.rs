//! The SeaweedFS master's administration calls the benchmark makes between timed phases: a
//! collection of its own for each side and round, its volumes made before the clock starts, and
//! deleted afterwards (the bed's volume server has room for few volumes).

use std::time::Duration;

use reqwest::Client;
use serde_json::Value;

/// A master, reached over HTTP.
#[derive(Debug, Clone)]
pub struct Master {
    http: Client,
    address: String,
}

impl Master {
    /// The master at `address` (`host:port`).
    pub fn new(address: &str) -> Result<Self, String> {
        let http = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Master {
            http,
            address: address.to_string(),
        })
    }

    async fn get_json(&self, path_and_query: &str) -> Result<Value, String> {
        let url = format!("http://{}/{path_and_query}", self.address);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{url} answered {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("{url} sent no JSON ({e}): {body}"))
    }

    /// The leader's address as the Go client takes it, `host:port.grpcPort`.
    pub async fn leader_with_grpc_port(&self) -> Result<String, String> {
        let status = self.get_json("cluster/status").await?;
        status
            .get("Leader")
            .and_then(Value::as_str)
            .filter(|leader| leader.contains('.'))
            .map(str::to_string)
            .ok_or_else(|| format!("the master's cluster/status names no leader: {status}"))
    }

    /// Makes `collection`'s volumes now: its first assignment grows them, which every client's
    /// first write would otherwise wait for inside its timed phase.
    pub async fn prepare(&self, collection: &str) -> Result<(), String> {
        let assigned = self
            .get_json(&format!("dir/assign?collection={collection}"))
            .await?;
        if assigned.get("fid").and_then(Value::as_str).is_none() {
            return Err(format!(
                "the master assigned nothing in collection {collection}: {assigned}"
            ));
        }
        Ok(())
    }

    /// Deletes `collection`, its volumes and every blob in them.
    pub async fn delete_collection(&self, collection: &str) -> Result<(), String> {
        let url = format!("http://{}/col/delete?collection={collection}", self.address);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("{url} answered {status}: {body}"));
        }
        Ok(())
    }
}
