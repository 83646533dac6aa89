//! SeaweedFS's own API for masses of small files: blobs named by file ids (`3,01637037d6`), with
//! no filer entry. A write asks the master for a file id (`dir/assign`) and posts the bytes
//! straight to the volume server it names; reads and deletes go to the volume server found by
//! the volume id, whose location is cached ([`VolumeLocations`]). This is what makes SeaweedFS
//! fast with small files: one metadata lookup per volume, not per file.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;

use super::http::{encode, failure, transport_error, unavailable};
use super::lookup::VolumeLocations;
use crate::error::{Error, Result};

static NEXT_BOUNDARY: AtomicU64 = AtomicU64::new(0);

/// A blob's file id: `VOLUME,KEYCOOKIE` (hex), as the master assigns it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fid {
    raw: String,
    volume: u32,
}

impl Fid {
    /// Checks the form `VOLUME,HEX` (a decimal volume id, then the hex key and 8-digit cookie).
    pub fn parse(raw: &str) -> Result<Fid> {
        let bad = |reason: &str| Error::InvalidPath {
            path: raw
                .chars()
                .take(64)
                .flat_map(char::escape_default)
                .collect(),
            reason: reason.to_string(),
        };
        let (volume, key) = raw
            .split_once(',')
            .ok_or_else(|| bad("a file id is VOLUME,KEYCOOKIE, e.g. 3,01637037d6"))?;
        let volume = volume
            .parse::<u32>()
            .map_err(|_| bad("the volume id is not a number"))?;
        if key.len() <= 8 || key.len() > 24 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the key and cookie are 9 to 24 hex digits"));
        }
        Ok(Fid {
            raw: raw.to_string(),
            volume,
        })
    }

    /// The volume the blob is in.
    pub fn volume(&self) -> u32 {
        self.volume
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for Fid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

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
}

#[derive(Deserialize)]
struct Assignment {
    #[serde(default)]
    fid: String,
    #[serde(default)]
    url: String,
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

    /// Stores `bytes` as a new blob; options left unset fall back to [`Self::defaults`].
    pub async fn put_blob(&self, bytes: Bytes, options: &BlobOptions) -> Result<Fid> {
        let shown = format!("master {}", self.master);
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
        let query = query.join("&");
        // The blob's size: the master reserves that much of the volume it picks until the volume
        // server reports the write. Without it the master reserves a large default per file id,
        // so a burst of small writes marks fresh volumes full within a second and further
        // assignments fail with "no writable volumes".
        let mut assign = format!("http://{}/dir/assign?dataSize={}", self.master, bytes.len());
        if !query.is_empty() {
            assign.push('&');
            assign.push_str(&query);
        }
        let response = self
            .http
            .get(assign)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| transport_error(&e, &shown))?;
        if !response.status().is_success() {
            return Err(failure(response, "a new blob", &shown).await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(&e, &shown))?;
        let assigned: Assignment = serde_json::from_slice(&body).map_err(|e| {
            unavailable(format!("{shown} sent an assignment that is not JSON: {e}"))
        })?;
        if let Some(error) = assigned.error.filter(|e| !e.is_empty()) {
            return Err(unavailable(format!("{shown} assigned no file id: {error}")));
        }
        let fid = Fid::parse(&assigned.fid)
            .map_err(|e| unavailable(format!("{shown} assigned '{}': {e}", assigned.fid)))?;
        self.locations
            .remember(fid.volume(), vec![assigned.url.clone()]);

        let (content_type, body) = multipart(&bytes);
        let server = format!("volume server {}", assigned.url);
        let mut url = format!("http://{}/{fid}", assigned.url);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                self.locations.forget(fid.volume());
                transport_error(&e, &server)
            })?;
        if !response.status().is_success() {
            return Err(failure(response, fid.as_str(), &server).await);
        }
        Ok(fid)
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
    fn file_ids_are_checked() {
        let fid = Fid::parse("3,01637037d6").unwrap();
        assert_eq!(fid.volume(), 3);
        assert_eq!(fid.to_string(), "3,01637037d6");
        for bad in [
            "",
            "3",
            "x,01637037d6",
            "3,0163703",
            "3,0163703zz6",
            "3,01637037d6/x",
        ] {
            assert!(
                matches!(Fid::parse(bad), Err(Error::InvalidPath { .. })),
                "{bad}"
            );
        }
    }

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
