//! Path operations on a SeaweedFS filer: its HTTP API, one method per request.
//!
//! Paths here are the filer's own, absolute (`/root/a/b`); the store maps its [`StorePath`]s onto
//! them. How the filer behaves, as seen on SeaweedFS 4.48, and what the store relies on:
//!
//! - An upload (`PUT`) stores the body's chunks on volume servers and creates the filer entry
//!   only once the body has ended, in one metadata write. A body cut short (an error or a dropped
//!   connection) creates nothing, and an entry it would have replaced stays whole; so uploads go
//!   straight to their path, with no temporary name.
//! - It does not refuse to mix objects and directories: a `PUT` of `a/b` silently turns the
//!   object `a` into a directory (its content is lost), and a `PUT` of `a` while `a/` is a
//!   directory answers `201` and stores nothing. The store checks first (see `check_writable`).
//! - `DELETE` of a missing path answers `204`; of a non-empty directory without `recursive`, 500.
//! - `mv.from` replaces the destination, `cp.from` only with `overwrite=true` (else 409); both
//!   create the destination's parents.
//! - A listing request (`Accept: application/json`) on an object's path answers the object's
//!   content, so listings check that their directory is one first.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Body, Client, Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use super::http::{encode, failure, transport_error, unavailable};
use super::times::parse_rfc3339;
use crate::error::Result;

/// The directory bit of an entry's `Mode` (Go's `os.ModeDir`).
const MODE_DIR: u32 = 1 << 31;
/// The symbolic-link bit (Go's `os.ModeSymlink`).
const MODE_SYMLINK: u32 = 1 << 27;

/// One filer entry, as its JSON listing and `?metadata=true` show it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Entry {
    #[serde(rename = "FullPath")]
    pub full_path: String,
    #[serde(rename = "Mtime", default)]
    mtime: String,
    #[serde(rename = "Mode", default)]
    mode: u32,
    #[serde(rename = "FileSize", default)]
    pub file_size: u64,
    #[serde(rename = "Md5", default)]
    md5: Option<String>,
    #[serde(rename = "chunks", default)]
    chunks: Vec<Chunk>,
    /// The content of a small file the filer keeps inside its own store (base64).
    #[serde(rename = "Content", default)]
    content: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Chunk {
    #[serde(default)]
    e_tag: String,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.mode & MODE_DIR != 0
    }

    /// Whether the entry is an object: a regular file (not a directory or a link).
    pub fn is_object(&self) -> bool {
        self.mode & (MODE_DIR | MODE_SYMLINK) == 0
    }

    /// The last segment of the entry's path.
    pub fn name(&self) -> &str {
        self.full_path.rsplit('/').next().unwrap_or(&self.full_path)
    }

    pub fn modified(&self) -> Option<SystemTime> {
        parse_rfc3339(&self.mtime)
    }

    /// The content the filer keeps inside the entry itself, as it does for its own files
    /// under `/etc/`.
    pub fn inline_content(&self) -> Option<Vec<u8>> {
        self.content.as_deref().and_then(base64_decode)
    }

    /// The etag the filer sends in its `Etag` header for this entry: the content's MD5, which
    /// every upload through the filer records, or a lone chunk's MD5. Entries that other clients
    /// wrote in several chunks without an MD5 have none here.
    pub fn etag(&self) -> Option<String> {
        if let Some(md5) = self.md5.as_deref().and_then(base64_to_hex) {
            return Some(md5);
        }
        match self.chunks.as_slice() {
            [one] => base64_to_hex(&one.e_tag),
            _ => None,
        }
    }
}

/// One page of a directory listing.
#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    #[serde(rename = "Entries", default)]
    pub entries: Option<Vec<Entry>>,
}

/// What an upload answered.
pub(crate) struct Uploaded {
    pub size: u64,
    pub etag: Option<String>,
}

/// A filer's HTTP API.
#[derive(Debug, Clone)]
pub(crate) struct Filer {
    http: Client,
    base: String,
    /// `filer HOST:PORT`, for messages.
    pub shown: String,
    timeout: Duration,
    /// Query parameters every upload carries (`collection=...`).
    upload_params: String,
}

impl Filer {
    pub fn new(http: Client, address: &str, timeout: Duration, collection: Option<&str>) -> Self {
        Filer {
            http,
            base: format!("http://{address}"),
            shown: format!("filer {address}"),
            timeout,
            upload_params: collection
                .map(|c| format!("collection={}", encode(c, false)))
                .unwrap_or_default(),
        }
    }

    fn url(&self, path: &str, query: &str) -> String {
        let mut url = format!("{}{}", self.base, encode(path, true));
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// Sends a request whose answer is small: the whole exchange is bounded by the timeout.
    async fn send_small(&self, request: RequestBuilder) -> Result<Response> {
        request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| transport_error(&e, &self.shown))
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        response: Response,
        path: &str,
    ) -> Result<T> {
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(&e, &self.shown))?;
        serde_json::from_slice(&body).map_err(|e| {
            unavailable(format!(
                "{} sent an answer for '{path}' that is not the expected JSON: {e}",
                self.shown
            ))
        })
    }

    /// The entry at `path`, or `None` when there is none.
    pub async fn entry(&self, path: &str) -> Result<Option<Entry>> {
        let response = self
            .send_small(self.http.get(self.url(path, "metadata=true")))
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => self.json(response, path).await.map(Some),
            _ => Err(failure(response, path, &self.shown).await),
        }
    }

    /// Uploads `body` as the whole content of `path`.
    pub async fn upload(
        &self,
        path: &str,
        body: Body,
    ) -> Result<std::result::Result<Uploaded, UploadFailed>> {
        let request = self
            .http
            .put(self.url(path, &self.upload_params))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(body);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Ok(Err(UploadFailed(e))),
        };
        if !response.status().is_success() {
            return Err(failure(response, path, &self.shown).await);
        }
        let etag = response
            .headers()
            .get("Content-Md5")
            .and_then(|v| v.to_str().ok())
            .and_then(base64_to_hex);
        #[derive(Deserialize)]
        struct Answer {
            // Left out for empty uploads.
            #[serde(default)]
            size: u64,
        }
        let answer: Answer = self.json(response, path).await?;
        Ok(Ok(Uploaded {
            size: answer.size,
            etag,
        }))
    }

    /// Starts reading `path`, the bytes `first..=last` of it when `range` is given.
    pub async fn read(&self, path: &str, range: Option<(u64, u64)>) -> Result<Response> {
        let mut request = self.http.get(self.url(path, ""));
        if let Some((first, last)) = range {
            request = request.header("Range", format!("bytes={first}-{last}"));
        }
        request
            .send()
            .await
            .map_err(|e| transport_error(&e, &self.shown))
    }

    /// Makes the directory `path` and its parents; an existing directory is no error.
    pub async fn mkdir(&self, path: &str) -> Result<()> {
        let dir = format!("{}/", path.trim_end_matches('/'));
        let response = self.send_small(self.http.post(self.url(&dir, ""))).await?;
        if response.status().is_success() {
            return Ok(());
        }
        // The filer refuses to make a directory that exists (SeaweedFS 4.48: 409 "dir ...
        // already exists"); that one is no error here.
        let refused = failure(response, path, &self.shown).await;
        match self.entry(path).await? {
            Some(entry) if entry.is_dir() => Ok(()),
            _ => Err(refused),
        }
    }

    /// The whole content of the small file `path`, or `None` when there is none.
    pub async fn read_small(&self, path: &str) -> Result<Option<Bytes>> {
        let response = self.send_small(self.http.get(self.url(path, ""))).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => body(response, &self.shown).await.map(Some),
            _ => Err(failure(response, path, &self.shown).await),
        }
    }

    /// Deletes `path`; a directory only when it is empty. A missing path is no error.
    pub async fn delete(&self, path: &str) -> Result<()> {
        let response = self
            .send_small(self.http.request(Method::DELETE, self.url(path, "")))
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(failure(response, path, &self.shown).await)
        }
    }

    /// Moves (`mv.from`) or copies (`cp.from`) the entry `from` to `to`, replacing `to` (which
    /// `cp.from` does only when asked to).
    pub async fn transfer(&self, operation: &str, from: &str, to: &str) -> Result<()> {
        let query = format!("{operation}={}&overwrite=true", encode(from, false));
        let response = self
            .send_small(self.http.post(self.url(to, &query)))
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(failure(response, from, &self.shown).await)
        }
    }

    /// Up to `limit` entries of the directory `dir`, after the name `after`.
    pub async fn list_page(
        &self,
        dir: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let mut query = format!("limit={limit}");
        if let Some(after) = after {
            query.push_str("&lastFileName=");
            query.push_str(&encode(after, false));
        }
        let dir_slash = if dir.ends_with('/') {
            dir.to_string()
        } else {
            format!("{dir}/")
        };
        let response = self
            .send_small(
                self.http
                    .get(self.url(&dir_slash, &query))
                    .header(ACCEPT, "application/json"),
            )
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(Vec::new()),
            s if s.is_success() => {
                let page: Page = self.json(response, dir).await?;
                Ok(page.entries.unwrap_or_default())
            }
            _ => Err(failure(response, dir, &self.shown).await),
        }
    }
}

/// An upload whose request failed before an answer: the caller decides whether its own body
/// stream or the connection is to blame.
pub(crate) struct UploadFailed(pub reqwest::Error);

/// The `Etag` header's value without its quotes.
pub(crate) fn etag_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("Etag")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_matches('"').to_string())
}

/// The body of a successful read as one value (ranges are small enough for memory).
pub(crate) async fn body(response: Response, shown: &str) -> Result<Bytes> {
    response
        .bytes()
        .await
        .map_err(|e| transport_error(&e, shown))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64_to_hex(text: &str) -> Option<String> {
    base64_decode(text)
        .filter(|b| b.len() == 16)
        .map(|b| hex(&b))
}

/// Standard base64 with padding, as Go encodes byte slices in JSON.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: &str) -> Entry {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn etags_are_the_filers() {
        // As the filer listed them: its `Etag` header was the hex of `Md5`.
        let file = entry(
            r#"{"FullPath":"/probe/big.bin","Mtime":"2026-11-30T12:14:28.699663675Z","Mode":432,
            "Md5":"WHHl5Jc1+x76XoV8DSs6vg==","FileSize":10000000,
            "chunks":[{"e_tag":"Z2Ue3D+8BaRLmRGyHdpQFQ=="},{"e_tag":"bCsdm2brv/KiTxUsKq1OJg=="}]}"#,
        );
        assert_eq!(file.etag().unwrap(), "5871e5e49735fb1efa5e857c0d2b3abe");
        assert!(file.is_object() && !file.is_dir());
        assert_eq!(file.name(), "big.bin");
        // Without `Md5`, a lone chunk's MD5.
        let one = entry(
            r#"{"FullPath":"/a","Mode":432,"chunks":[{"e_tag":"XUFAKrxLKna5cZ2REBfFkg=="}]}"#,
        );
        assert_eq!(one.etag().unwrap(), "5d41402abc4b2a76b9719d911017c592");
        let dir = entry(r#"{"FullPath":"/probe/a b","Mode":2147484153,"Md5":null}"#);
        assert!(dir.is_dir() && !dir.is_object());
        assert_eq!(dir.etag(), None);
    }

    #[test]
    fn a_file_kept_inside_its_entry_is_read_from_it() {
        // `/etc/seaweedfs/filer.conf` as SeaweedFS 4.48 showed it: size 0, content inline.
        let conf = entry(
            r#"{"FullPath":"/etc/seaweedfs/filer.conf","Mode":432,"FileSize":0,
            "Content":"eyJsb2NhdGlvbnMiOltdfQ=="}"#,
        );
        assert_eq!(conf.inline_content().unwrap(), br#"{"locations":[]}"#);
        let plain = entry(r#"{"FullPath":"/a","Mode":432,"Content":null}"#);
        assert_eq!(plain.inline_content(), None);
    }
}
