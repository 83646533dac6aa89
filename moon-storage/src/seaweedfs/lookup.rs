//! Where each volume lives: the master's `dir/lookup?volumeId=N`, cached per volume id.
//!
//! Volumes move rarely (rebalancing, a failed server), so a location is kept until a request to
//! it fails; the caller then forgets it and asks the master again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Client;
use serde::Deserialize;

use super::http::{failure, transport_error, unavailable};
use crate::error::{Error, Result};

/// The cached volume locations of one master.
#[derive(Debug, Clone)]
pub struct VolumeLocations {
    http: Client,
    master: String,
    timeout: Duration,
    known: Arc<Mutex<HashMap<u32, Vec<String>>>>,
    asked: Arc<AtomicU64>,
}

#[derive(Deserialize)]
struct Lookup {
    #[serde(default)]
    locations: Vec<Location>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    url: String,
}

impl VolumeLocations {
    pub(crate) fn new(http: Client, master: String, timeout: Duration) -> Self {
        VolumeLocations {
            http,
            master,
            timeout,
            known: Arc::default(),
            asked: Arc::default(),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Vec<String>>> {
        // The map holds whole entries only, so a panic elsewhere cannot leave it half-written.
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The volume servers (`host:port`) holding `volume`, from the cache or the master.
    pub async fn locate(&self, volume: u32) -> Result<Vec<String>> {
        if let Some(urls) = self.known().get(&volume) {
            return Ok(urls.clone());
        }
        self.asked.fetch_add(1, Ordering::Relaxed);
        let shown = format!("master {}", self.master);
        let response = self
            .http
            .get(format!(
                "http://{}/dir/lookup?volumeId={volume}",
                self.master
            ))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| transport_error(&e, &shown))?;
        let what = format!("volume {volume}");
        if !response.status().is_success() {
            return Err(failure(response, &what, &shown).await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(&e, &shown))?;
        let lookup: Lookup = serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("{shown} sent a lookup that is not JSON: {e}")))?;
        if lookup.locations.is_empty() {
            // The master answers a volume it does not know with its reason in `error`.
            let _ = lookup.error;
            return Err(Error::NotFound { path: what });
        }
        let urls: Vec<String> = lookup.locations.into_iter().map(|l| l.url).collect();
        self.remember(volume, urls.clone());
        Ok(urls)
    }

    /// Records where `volume` lives, as an assignment or another lookup said.
    pub fn remember(&self, volume: u32, urls: Vec<String>) {
        self.known().insert(volume, urls);
    }

    /// Forgets `volume`'s location after a request to it failed.
    pub fn forget(&self, volume: u32) {
        self.known().remove(&volume);
    }

    /// How many times the master was asked, since these locations were made.
    pub fn lookups(&self) -> u64 {
        self.asked.load(Ordering::Relaxed)
    }
}
