//! The HTTP client every SeaweedFS server is reached with, and the one place where HTTP
//! failures become store errors.

use std::error::Error as _;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode};

use crate::error::{Error, Result};

/// The backend's name in errors.
pub(crate) const BACKEND: &str = "seaweedfs";
/// How much of an error answer's body is read for its message.
const ERROR_BODY_LIMIT: usize = 4096;
/// How much of the server's words an error message keeps.
const MESSAGE_LIMIT: usize = 500;

/// A pooled client: one connection pool per store, shared by its clones and its blob API.
///
/// `timeout` bounds connecting and every wait for the server (an answer, or the next piece of a
/// body), not a whole transfer, so a large object can take as long as it needs while a server
/// that stops answering is noticed within `timeout`.
pub(crate) fn client(timeout: Duration) -> Result<Client> {
    Client::builder()
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| transport_error(&e, "the HTTP client"))
}

/// A request that got no answer: the server is down, unreachable or too slow. `server` names
/// it as `filer 127.0.0.1:8888`; URLs are left out, so nothing but the address is shown.
pub(crate) fn transport_error(e: &reqwest::Error, server: &str) -> Error {
    let mut words = Vec::new();
    let mut source = e.source();
    while let Some(cause) = source {
        words.push(cause.to_string());
        source = cause.source();
    }
    let cause = if words.is_empty() {
        "the request failed".to_string()
    } else {
        words.join(": ")
    };
    let message = if e.is_timeout() {
        format!("{server} did not answer in time ({cause})")
    } else if e.is_connect() {
        format!("cannot connect to {server}: {cause}")
    } else {
        format!("{server}: {cause}")
    };
    unavailable(message)
}

pub(crate) fn unavailable(message: impl Into<String>) -> Error {
    Error::Unavailable {
        backend: BACKEND.to_string(),
        message: message.into(),
    }
}

/// Turns an answer that is not a success into the error it means, with the server's words.
pub(crate) async fn failure(response: Response, path: &str, server: &str) -> Error {
    let status = response.status();
    let body = error_body(response).await;
    status_error(status, &body, path, server)
}

/// The start of an error answer's body, as text.
pub(crate) async fn error_body(mut response: Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// The error an HTTP status means; `body` is the answer's body (SeaweedFS writes
/// `{"error": "..."}`).
pub(crate) fn status_error(status: StatusCode, body: &str, path: &str, server: &str) -> Error {
    let words = server_words(body);
    let path = path.to_string();
    let lower = words.to_ascii_lowercase();
    match status.as_u16() {
        404 => Error::NotFound { path },
        // `mv.from` and `cp.from` answer 400 when their source is missing.
        400 if lower.contains("no entry is found") || lower.contains("not found") => {
            Error::NotFound { path }
        }
        401 | 403 => Error::PermissionDenied {
            path,
            message: words,
        },
        409 | 412 => Error::PreconditionFailed {
            path,
            message: words,
        },
        507 => Error::QuotaExceeded { message: words },
        _ if lower.contains("quota") || lower.contains("no space left") => {
            Error::QuotaExceeded { message: words }
        }
        code => unavailable(format!("{server} answered {code} for '{path}': {words}")),
    }
}

/// The message of an error body: the `error` field of SeaweedFS's JSON, or the text itself,
/// cut short.
fn server_words(body: &str) -> String {
    let text = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string());
    let mut words: String = text.chars().filter(|c| !c.is_control()).collect();
    if words.len() > MESSAGE_LIMIT {
        let mut cut = MESSAGE_LIMIT;
        while !words.is_char_boundary(cut) {
            cut -= 1;
        }
        words.truncate(cut);
        words.push_str("...");
    }
    if words.is_empty() {
        words.push_str("(no message)");
    }
    words
}

/// `text` with every byte outside the unreserved set percent-encoded, `/` kept when `keep_slash`.
pub(crate) fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(code: u16, body: &str) -> Error {
        status_error(
            StatusCode::from_u16(code).unwrap(),
            body,
            "runs/x",
            "filer 127.0.0.1:1",
        )
    }

    #[test]
    fn statuses_keep_their_meaning() {
        assert!(of(404, "").is_not_found());
        assert!(
            of(
                400,
                r#"{"error":"failed to get src entry '/a': filer: no entry is found in filer store"}"#
            )
            .is_not_found()
        );
        assert!(matches!(of(401, ""), Error::PermissionDenied { .. }));
        assert!(matches!(
            of(403, r#"{"error":"access denied"}"#),
            Error::PermissionDenied { message, .. } if message == "access denied"
        ));
        assert!(matches!(of(409, ""), Error::PreconditionFailed { .. }));
        assert!(matches!(of(412, ""), Error::PreconditionFailed { .. }));
        assert!(matches!(of(507, ""), Error::QuotaExceeded { .. }));
        assert!(matches!(
            of(500, r#"{"error":"collection quota exceeded"}"#),
            Error::QuotaExceeded { .. }
        ));
        match of(500, r#"{"error":"fail to delete non-empty folder: /a"}"#) {
            Error::Unavailable { backend, message } => {
                assert_eq!(backend, "seaweedfs");
                assert!(message.contains("500"), "{message}");
                assert!(message.contains("non-empty folder"), "{message}");
                assert!(message.contains("filer 127.0.0.1:1"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_words_are_cut_and_cleaned() {
        let long = format!("{{\"error\":\"{}\"}}", "é".repeat(400));
        let words = server_words(&long);
        assert!(words.len() <= MESSAGE_LIMIT + 3 && words.ends_with("..."));
        assert_eq!(server_words("line\nbreak\u{1b}[31m"), "linebreak[31m");
        assert_eq!(server_words(""), "(no message)");
    }

    #[test]
    fn paths_are_percent_encoded() {
        assert_eq!(encode("a b/é+%&", true), "a%20b/%C3%A9%2B%25%26");
        assert_eq!(encode("a/b", false), "a%2Fb");
    }
}
