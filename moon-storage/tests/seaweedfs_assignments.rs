//! The blob API's assignments on paths the real servers of the bed cannot be made to take on
//! demand: spare file ids whose volume stops taking writes, and a master still growing a
//! collection's first volumes. A small fake plays master and volume server on one loopback
//! port.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use moon_storage::Server;
use moon_storage::seaweedfs::{BlobOptions, SeaweedOptions, SeaweedStore};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the fake saw: each request as `METHOD PATH` (the query left out).
type Seen = Arc<Mutex<Vec<String>>>;

/// How the fake master answers.
#[derive(Clone, Copy)]
enum Master {
    /// 16 ids on volume 3, then on volume 4, ...
    Assigns,
    /// "no writable volumes, volume growth in progress" (503) to the first `n` assignments.
    GrowsFirst(usize),
    /// Another failure (503) to every assignment.
    Fails,
}

/// Answers `dir/assign` as `master` says; accepts uploads except the further ids of volume 3,
/// which it refuses as a read-only volume would.
async fn serve(stream: TcpStream, port: u16, seen: Seen, master: Master) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            stream.read_line(&mut header).await.unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.unwrap();

        let mut words = request_line.split_whitespace();
        let method = words.next().unwrap().to_string();
        let target = words.next().unwrap();
        let path = target.split('?').next().unwrap().to_string();
        let assigns = {
            let mut seen = seen.lock().unwrap();
            seen.push(format!("{method} {path}"));
            seen.iter().filter(|r| r.ends_with("/dir/assign")).count()
        };
        let (status, answer) = match master {
            Master::GrowsFirst(n) if path == "/dir/assign" && assigns <= n => (
                "503 Service Unavailable",
                r#"{"error":"no writable volumes for {\"collection\":\"tenant-a\"}, volume growth in progress"}"#
                    .to_string(),
            ),
            Master::Fails if path == "/dir/assign" => (
                "503 Service Unavailable",
                r#"{"error":"raft: not the leader"}"#.to_string(),
            ),
            _ => answer(&method, &path, assigns, length, port),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        stream
            .get_mut()
            .write_all(response.as_bytes())
            .await
            .unwrap();
    }
}

/// The answers of a master that assigns and a volume server whose volume 3 is read-only.
fn answer(
    method: &str,
    path: &str,
    assigns: usize,
    length: usize,
    port: u16,
) -> (&'static str, String) {
    if path == "/dir/assign" {
        let volume = 2 + assigns;
        (
            "200 OK",
            format!(
                r#"{{"fid":"{volume},0{volume}637037d6","url":"127.0.0.1:{port}","publicUrl":"127.0.0.1:{port}","count":16}}"#
            ),
        )
    } else if method == "POST" && path.starts_with("/3,") && path.contains('_') {
        (
            "500 Internal Server Error",
            r#"{"error":"volume 3 is read only"}"#.to_string(),
        )
    } else if method == "POST" {
        ("201 Created", format!(r#"{{"size":{length}}}"#))
    } else {
        ("404 Not Found", String::new())
    }
}

/// A blob API on a fake started with `master`, and what the fake sees.
async fn fake(master: Master) -> (moon_storage::seaweedfs::SeaweedBlobs, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let fake_seen = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, port, fake_seen.clone(), master));
        }
    });
    let server = Server {
        host: "127.0.0.1".to_string(),
        port,
        userinfo: None,
    };
    let options = SeaweedOptions {
        master: Some(server.clone()),
        collection: Some("tenant-a".to_string()),
        ..SeaweedOptions::default()
    };
    let blobs = SeaweedStore::new(server, "/", options)
        .unwrap()
        .blobs()
        .unwrap();
    (blobs, seen)
}

#[tokio::test]
async fn spare_ids_of_a_volume_that_refuses_writes_are_dropped_for_fresh_ones() {
    let (blobs, seen) = fake(Master::Assigns).await;
    let put = |text: &'static str| {
        let blobs = blobs.clone();
        async move {
            blobs
                .put_blob(Bytes::from_static(text.as_bytes()), &BlobOptions::default())
                .await
                .unwrap()
                .to_string()
        }
    };

    // The first write takes the assignment's own id and keeps 15 spares of volume 3.
    assert_eq!(put("one").await, "3,03637037d6");
    assert_eq!(blobs.assignments(), 1);
    // Volume 3 refuses the spare: the write gets a fresh id on volume 4 instead of failing.
    assert_eq!(put("two").await, "4,04637037d6");
    assert_eq!(blobs.assignments(), 2);
    // Volume 3's other spares are gone; volume 4's are used.
    assert_eq!(put("three").await, "4,04637037d6_1");
    assert_eq!(put("four").await, "4,04637037d6_2");
    assert_eq!(blobs.assignments(), 2);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "GET /dir/assign",
            "POST /3,03637037d6",
            "POST /3,03637037d6_1",
            "GET /dir/assign",
            "POST /4,04637037d6",
            "POST /4,04637037d6_1",
            "POST /4,04637037d6_2",
        ]
    );
}

#[tokio::test]
async fn an_assignment_waits_while_the_master_grows_volumes() {
    let (blobs, seen) = fake(Master::GrowsFirst(3)).await;
    let fid = blobs
        .put_blob(Bytes::from_static(b"first"), &BlobOptions::default())
        .await
        .unwrap();
    // The fourth assignment is the first answered with ids (the volume counts them).
    assert_eq!(fid.to_string(), "6,06637037d6");
    assert_eq!(blobs.assignments(), 1, "one assignment, asked four times");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "{seen:?}");
}

#[tokio::test]
async fn other_assignment_failures_are_not_repeated() {
    let (blobs, seen) = fake(Master::Fails).await;
    let started = std::time::Instant::now();
    let error = blobs
        .put_blob(Bytes::from_static(b"x"), &BlobOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, moon_storage::Error::Unavailable { message, .. } if message.contains("not the leader")),
        "{error:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}
