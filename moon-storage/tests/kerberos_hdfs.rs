//! HDFS with Kerberos, against the secure MiniDFSCluster of the storage test bed
//! (`scripts/storage/up.sh --only hdfs`, whose `env.sh` sets `MOON_TEST_HDFS_KERBEROS_URL` and
//! `MOON_TEST_KERBEROS_DIR`: its `krb5.conf` and the keytabs of `hdfs/localhost` (the
//! superuser), `alice` and `bob`). `scripts/test.sh --only storage` runs it. Without that
//! server every test fails, saying how to start one.
//!
//! What a user would notice: a principal logged in from its keytab reads and writes (which
//! takes Kerberos on the namenode and SASL with block tokens on the datanode); the server's
//! permissions apply to the principal's short name; no credentials, or the wrong keytab, is a
//! typed `PermissionDenied` that says why and never hangs.

use std::path::PathBuf;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moon_storage::{Error, HdfsOptions, HdfsStore, Server, Store, StorePath};

/// The secure namenode, `hdfs://127.0.0.1:PORT`.
fn namenode() -> Server {
    let url = env("MOON_TEST_HDFS_KERBEROS_URL");
    Server::parse(url.trim_start_matches("hdfs://"), 8020).expect("the bed's namenode address")
}

/// The realm's files: `krb5.conf` and `NAME.keytab`.
fn realm_dir() -> PathBuf {
    PathBuf::from(env("MOON_TEST_KERBEROS_DIR"))
}

fn env(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not set: start the storage test bed (scripts/storage/up.sh --only \
                 hdfs [--dir DIR], then `source DIR/env.sh`) or run ./scripts/test.sh --only \
                 storage"
            )
        })
}

/// MIT Kerberos reads its configuration from `KRB5_CONFIG` when a context is made. The storage
/// tier sets it for the whole test binary; run by hand, it is set once here, before the first
/// test logs in.
fn use_test_realm() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let conf = realm_dir().join("krb5.conf");
        if std::env::var_os("KRB5_CONFIG").as_deref() != Some(conf.as_os_str()) {
            // SAFETY: every test calls this before any Kerberos or other C code reads the
            // environment, and the Once makes the others wait until it is set.
            unsafe { std::env::set_var("KRB5_CONFIG", conf) };
        }
    });
}

/// What a client of the bed's secure cluster sets (its `hdfs-site.xml` would): SASL on data
/// transfer.
fn secure() -> HdfsOptions {
    use_test_realm();
    HdfsOptions::default().with_config("dfs.data.transfer.protection", "authentication")
}

/// A store at `root` logged in as `principal` with the keytab of `keytab_of`, tickets in a
/// memory cache of its own (nothing written to disk).
fn store_as(principal: &str, keytab_of: &str, root: &str) -> HdfsStore {
    let options = secure()
        .with_kerberos_keytab(principal, realm_dir().join(format!("{keytab_of}.keytab")))
        .with_kerberos_cache(format!("MEMORY:moon-test-{keytab_of}-{}", unique()));
    HdfsStore::new(namenode(), root, options).expect("a store")
}

fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn p(raw: &str) -> StorePath {
    StorePath::parse(raw).expect("a valid path")
}

/// By this module's name the `rust` tier of `scripts/test.sh` skips these tests and the
/// `storage` tier runs them, with the bed up.
mod on_the_storage_bed {
    use super::*;

    /// A home for `user` made by the superuser: owned by `user`, mode 0770.
    async fn home_of(user: &str) -> String {
        let root = format!("/kerberos-tests/{user}-{}", unique());
        let admin = store_as("hdfs/localhost", "hdfs", &root);
        assert!(
            admin
                .prepare_root(user, user, 0o770)
                .await
                .expect("the superuser makes a home"),
            "a new home is reported as made"
        );
        root
    }

    #[tokio::test]
    async fn a_principal_logged_in_from_its_keytab_writes_lists_and_reads_its_home() {
        let home = home_of("alice").await;
        let alice = store_as("alice", "alice", &home);
        // Larger than a packet, so the datanode's SASL handshake and the block token carry data.
        let data: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        alice
            .put(&p("train/part-0.bin"), data.clone().into())
            .await
            .expect("alice writes");
        let back = alice
            .get(&p("train/part-0.bin"))
            .await
            .expect("alice opens")
            .bytes()
            .await
            .expect("alice reads");
        assert_eq!(back.len(), data.len());
        assert!(
            back == data,
            "the bytes read back differ from those written"
        );
        let listed = alice
            .list_with_delimiter(Some(&p("train")))
            .await
            .expect("alice lists");
        let names: Vec<String> = listed.objects.iter().map(|o| o.path.to_string()).collect();
        assert_eq!(names, ["train/part-0.bin"]);
        alice
            .delete(&p("train/part-0.bin"))
            .await
            .expect("alice deletes");
    }

    #[tokio::test]
    async fn the_servers_permissions_apply_to_the_principals_short_name() {
        let home = home_of("alice").await;
        store_as("alice", "alice", &home)
            .put(&p("private.txt"), b"alice's".to_vec().into())
            .await
            .expect("alice writes in her home");
        let bob = store_as("bob", "bob", &home);
        match bob.get(&p("private.txt")).await.map(|_| ()) {
            Err(Error::PermissionDenied { message, .. }) => assert!(
                message.contains("bob"),
                "the refusal names the user the server saw: {message}"
            ),
            other => panic!("bob read alice's home: {other:?}"),
        }
        match bob.put(&p("planted.txt"), b"bob's".to_vec().into()).await {
            Err(Error::PermissionDenied { .. }) => {}
            other => panic!("bob wrote in alice's home: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_superuser_acting_for_a_user_gets_that_users_permissions() {
        let home = home_of("alice").await;
        let as_user = |user: &str| {
            let options = secure()
                .with_kerberos_keytab("hdfs/localhost", realm_dir().join("hdfs.keytab"))
                .with_kerberos_cache(format!("MEMORY:moon-test-proxy-{}", unique()))
                .with_user(user);
            HdfsStore::new(namenode(), &home, options).expect("a store")
        };
        as_user("alice")
            .put(&p("for-alice.txt"), b"written for alice".to_vec().into())
            .await
            .expect("the superuser writes for alice in her home");
        // Written as alice, not as the superuser: alice's own keytab reads and owns it.
        let alice = store_as("alice", "alice", &home);
        let read = alice
            .get(&p("for-alice.txt"))
            .await
            .expect("alice opens")
            .bytes()
            .await
            .expect("alice reads");
        assert_eq!(&read[..], b"written for alice");
        match as_user("bob").get(&p("for-alice.txt")).await.map(|_| ()) {
            Err(Error::PermissionDenied { message, .. }) => {
                assert!(message.contains("bob"), "refused as bob: {message}")
            }
            other => panic!("acting for bob read alice's home: {other:?}"),
        }
    }

    /// Lists the root of `store`, which must be refused as a failed login within 30 s.
    async fn assert_login_refused(store: HdfsStore, who: &str) {
        let outcome =
            tokio::time::timeout(Duration::from_secs(30), store.list_with_delimiter(None))
                .await
                .expect("the refusal comes within 30 s");
        match outcome {
            Err(Error::PermissionDenied { message, .. }) => assert!(
                message.contains("Kerberos"),
                "the refusal says why: {message}"
            ),
            other => panic!("{who} logged in: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_keytab_without_the_principals_keys_is_refused_without_hanging() {
        let alice_with_bobs_keys = store_as("alice", "bob", "/");
        assert_login_refused(alice_with_bobs_keys, "a keytab without alice's keys").await;
    }

    #[tokio::test]
    async fn no_credentials_is_refused_not_let_in_as_a_simple_user() {
        // alice, with an empty memory cache and no keytab: no Kerberos credentials at all.
        let options = secure()
            .with_kerberos_principal("alice")
            .with_kerberos_cache(format!("MEMORY:moon-test-empty-{}", unique()));
        let anonymous = HdfsStore::new(namenode(), "/", options).expect("a store");
        assert_login_refused(anonymous, "a client without credentials").await;
    }
}
