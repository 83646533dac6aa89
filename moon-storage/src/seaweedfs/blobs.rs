//! SeaweedFS's own API for masses of small files: blobs named by file ids (`3,01637037d6`), with
//! no filer entry. A write asks the master for a file id (`dir/assign`) and posts the bytes
//! straight to the volume server it names; reads and deletes go to the volume server found by
//! the volume id, whose location is cached ([`VolumeLocations`]). This is what makes SeaweedFS
//! fast with small files: one metadata lookup per volume, not per file. Assignments ask for
//! several ids at once and keep the others for the next writes (see `spares.rs`), so most
//! writes are a single request, to the volume server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;

use super::fid::Fid;
use super::http::{encode, error_body, failure, status_error, transport_error, unavailable};
use super::lookup::VolumeLocations;
use super::spares::{ASSIGN_BATCH, Assigned, Spares};
use crate::error::{Error, Result};

static NEXT_BOUNDARY: AtomicU64 = AtomicU64::new(0);
/// How long an assignment waits for the master to grow volumes for a collection (at most the
/// store's timeout); the master's own wait for the Go client's assignments is 10 s.
const GROWTH_WAIT: Duration = Duration::from_secs(10);

/// Where a blob is written. Unset fields are the master's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobOptions {
    /// The collection (a set of volumes of its own, e.g. one per tenant).
    pub collection: Option<String>,
    /// The replica placement, e.g. `001` (one more copy on another server of the rack).
    pub replication: Option<String>,
    /// How long the blob lives, e.g. `15m`, `3d`.
    pub ttl: Option<String>,
}

/// The blob API of one SeaweedFS master and its volume servers.
#[derive(Debug, Clone)]
pub struct SeaweedBlobs {
    http: Client,
    master: String,
    timeout: Duration,
    locations: VolumeLocations,
    defaults: BlobOptions,
    spares: Spares,
    assignments: Arc<AtomicU64>,
}

#[derive(Deserialize)]
struct Assignment {
    #[serde(default)]
    fid: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    error: Option<String>,
}

impl SeaweedBlobs {
    pub(crate) fn new(
        http: Client,
        master: String,
        timeout: Duration,
        defaults: BlobOptions,
    ) -> Self {
        let locations = VolumeLocations::new(http.clone(), master.clone(), timeout);
        SeaweedBlobs {
            http,
            master,
            timeout,
            locations,
            defaults,
            spares: Spares::default(),
            assignments: Arc::default(),
        }
    }

    /// The options blobs are written with when a call names none (the store's collection).
    pub fn defaults(&self) -> &BlobOptions {
        &self.defaults
    }

    /// The cache of volume locations.
    pub fn locations(&self) -> &VolumeLocations {
        &self.locations
    }

    /// How many assignments of file ids this blob API made (one repeated while the master
    /// grows volumes counts once).
    pub fn assignments(&self) -> u64 {
        self.assignments.load(Ordering::Relaxed)
    }

    /// Stores `bytes` as a new blob; options left unset fall back to [`Self::defaults`].
    pub async fn put_blob(&self, bytes: Bytes, options: &BlobOptions) -> Result<Fid> {
        let query = self.query(options);
        if let Some(spare) = self.spares.take(&query) {
            match self.upload(&spare, &query, &bytes).await {
                Ok(()) => return Ok(spare.fid),
                // The volume of a spare id may have filled up, turned read-only or moved since
                // it was assigned: its other spares go, and the blob gets a fresh id.
                Err(_) => self.spares.drop_volume(&query, &spare),
            }
        }
        let assigned = self.assign(&query, bytes.len()).await?;
        self.upload(&assigned, &query, &bytes).await?;
        Ok(assigned.fid)
    }

    /// The query naming where blobs with `options` go: `collection=..&replication=..&ttl=..`.
    fn query(&self, options: &BlobOptions) -> String {
        let mut query = Vec::new();
        for (key, value) in [
            (
                "collection",
                options
                    .collection
                    .as_ref()
                    .or(self.defaults.collection.as_ref()),
            ),
            (
                "replication",
                options
                    .replication
                    .as_ref()
                    .or(self.defaults.replication.as_ref()),
            ),
            ("ttl", options.ttl.as_ref().or(self.defaults.ttl.as_ref())),
        ] {
            if let Some(value) = value {
                query.push(format!("{key}={}", encode(value, false)));
            }
        }
        query.join("&")
    }

    /// Asks the master for [`ASSIGN_BATCH`] file ids; returns the first and keeps the others as
    /// spares.
    async fn assign(&self, query: &str, size: usize) -> Result<Assigned> {
        let shown = format!("master {}", self.master);
        // `dataSize`: the master reserves that much of the volume it picks for each id until the
        // volume server reports the writes. Without it the master reserves a large default per
        // id, so a burst of small writes marks fresh volumes full within a second and further
        // assignments fail with "no writable volumes".
        let mut url = format!(
            "http://{}/dir/assign?count={ASSIGN_BATCH}&dataSize={size}",
            self.master
        );
        if !query.is_empty() {
            url.push('&');
            url.push_str(query);
        }
        self.assignments.fetch_add(1, Ordering::Relaxed);
        // A collection's first writes find no volume until the master has grown some; it says
        // so at once (the Go client's gRPC assignment waits on the master's side instead), so
        // the request is repeated for a while.
        let deadline = Instant::now() + self.timeout.min(GROWTH_WAIT);
        let mut pause = Duration::from_millis(50);
        let response = loop {
            let response = self
                .http
                .get(&url)
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| transport_error(&e, &shown))?;
            let status = response.status();
            if status.is_success() {
                break response;
            }
            let body = error_body(response).await;
            let growing = matches!(status.as_u16(), 406 | 503) && body.contains("writable volumes");
            if !growing || Instant::now() + pause > deadline {
                return Err(status_error(status, &body, "a new blob", &shown));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        };
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(&e, &shown))?;
        let assignment: Assignment = serde_json::from_slice(&body).map_err(|e| {
            unavailable(format!("{shown} sent an assignment that is not JSON: {e}"))
        })?;
        if let Some(error) = assignment.error.filter(|e| !e.is_empty()) {
            return Err(unavailable(format!("{shown} assigned no file id: {error}")));
        }
        let fid = Fid::parse(&assignment.fid)
            .map_err(|e| unavailable(format!("{shown} assigned '{}': {e}", assignment.fid)))?;
        self.locations
            .remember(fid.volume(), vec![assignment.url.clone()]);
        let assigned = Assigned {
            fid,
            url: assignment.url,
        };
        // An older master that ignores `count` answers without it: one id.
        let count = assignment.count.unwrap_or(1).min(ASSIGN_BATCH);
        self.spares.keep_rest(query, &assigned, count);
        Ok(assigned)
    }

    /// Posts `bytes` as the blob `assigned.fid` to its volume server.
    async fn upload(&self, assigned: &Assigned, query: &str, bytes: &Bytes) -> Result<()> {
        let (content_type, body) = multipart(bytes);
        let server = format!("volume server {}", assigned.url);
        let mut url = format!("http://{}/{}", assigned.url, assigned.fid);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                self.locations.forget(assigned.fid.volume());
                transport_error(&e, &server)
            })?;
        if !response.status().is_success() {
            return Err(failure(response, assigned.fid.as_str(), &server).await);
        }
        Ok(())
    }

    /// Reads the blob `fid`.
    pub async fn get_blob(&self, fid: &Fid) -> Result<Bytes> {
        let response = self
            .at_volume(fid, |http, url| http.get(url).send())
            .await?;
        response
            .bytes()
            .await
            .map_err(|e| transport_error(&e, "a volume server"))
    }

    /// Deletes the blob `fid`; a missing blob is [`Error::NotFound`].
    pub async fn delete_blob(&self, fid: &Fid) -> Result<()> {
        let timeout = self.timeout;
        self.at_volume(fid, move |http, url| {
            http.delete(url).timeout(timeout).send()
        })
        .await?;
        Ok(())
    }

    /// Sends a request to the volume server holding `fid`. When the cached location fails (no
    /// connection, or no such blob there), the location is forgotten and the master asked again;
    /// if it names another server, the request is sent there once.
    async fn at_volume<F, Fut>(&self, fid: &Fid, send: F) -> Result<Response>
    where
        F: Fn(&Client, String) -> Fut,
        Fut: Future<Output = reqwest::Result<Response>>,
    {
        let mut tried: Vec<String> = Vec::new();
        loop {
            let urls = self.locations.locate(fid.volume()).await?;
            let fresh: Vec<&String> = urls.iter().filter(|u| !tried.contains(u)).collect();
            let Some(server) = fresh.first().map(|s| s.to_string()) else {
                return Err(Error::NotFound {
                    path: fid.to_string(),
                });
            };
            let shown = format!("volume server {server}");
            let outcome = send(&self.http, format!("http://{server}/{fid}")).await;
            let last_chance = tried.len() >= 2;
            tried.push(server);
            match outcome {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) if response.status() == StatusCode::NOT_FOUND && !last_chance => {
                    self.locations.forget(fid.volume());
                }
                Ok(response) => return Err(failure(response, fid.as_str(), &shown).await),
                Err(_) if !last_chance => self.locations.forget(fid.volume()),
                Err(e) => return Err(transport_error(&e, &shown)),
            }
        }
    }
}

/// A `multipart/form-data` body with `bytes` as its one file, and its content type. The
/// boundary is chosen so that it does not occur in `bytes`.
fn multipart(bytes: &Bytes) -> (String, Bytes) {
    let boundary = loop {
        let candidate = format!(
            "moon-blob-{:x}-{:x}",
            std::process::id(),
            NEXT_BOUNDARY.fetch_add(1, Ordering::Relaxed)
        );
        if !bytes
            .windows(candidate.len())
            .any(|w| w == candidate.as_bytes())
        {
            break candidate;
        }
    };
    let mut body = BytesMut::with_capacity(bytes.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"blob\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.freeze(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_hold_the_bytes_once() {
        let (content_type, body) = multipart(&Bytes::from_static(b"payload"));
        let boundary = content_type.split("boundary=").nth(1).unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("\r\n\r\npayload\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
