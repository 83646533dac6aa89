//! Single flight: concurrent readers of one missing page wait for one fetch of it.
//!
//! A page is fetched either by a fetch of its own (a ranged read) or by a streamed `get` that
//! claimed it and fills it as the object's bytes pass by. Either way the page has one entry here
//! while it is on its way, and every reader that misses it meanwhile waits on that entry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::sync::oneshot;

use crate::error::Error;
use crate::path::StorePath;

use super::version::Version;

/// One page of one version of one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PageKey {
    pub path: StorePath,
    pub version: Version,
    pub index: u64,
}

/// Why a page did not arrive.
#[derive(Debug, Clone)]
pub(crate) enum Miss {
    /// The object is no longer at the version the page was asked for.
    Replaced,
    /// The streamed read that claimed the page stopped before it got there.
    Abandoned,
    /// The inner store failed.
    Failed(Error),
}

/// What waiting on a page in flight ends with.
pub(crate) type Outcome = Result<Bytes, Miss>;

type SharedOutcome = Shared<BoxFuture<'static, Outcome>>;

#[derive(Debug)]
struct Flight {
    id: u64,
    outcome: SharedOutcome,
}

/// The pages on their way from the inner store.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<PageKey, Flight>>,
    next_id: AtomicU64,
}

/// Where a reader that missed a page stands.
pub(crate) enum Joined {
    /// The page turned up in the cache after all.
    Cached(Bytes),
    /// The page's fetch (this reader's own, or another's).
    Flying(SharedOutcome),
}

impl Flights {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<PageKey, Flight>> {
        self.map.lock().expect("flights lock")
    }

    /// Whether the page is on its way.
    #[cfg(test)]
    pub fn flying(&self, key: &PageKey) -> bool {
        self.map().contains_key(key)
    }

    /// The page's flight: the one under way, or a new one running `fetch`.
    ///
    /// `cached` looks in the cache once more while the flights are locked: a fetch stores its
    /// page before it leaves, so a page missed by the reader's first look cannot slip between
    /// that look and this call and be fetched twice.
    pub fn join(
        self: &Arc<Self>,
        key: &PageKey,
        cached: impl FnOnce() -> Option<Bytes>,
        fetch: impl FnOnce() -> BoxFuture<'static, Outcome>,
    ) -> Joined {
        let mut map = self.map();
        if let Some(flight) = map.get(key) {
            return Joined::Flying(flight.outcome.clone());
        }
        if let Some(page) = cached() {
            return Joined::Cached(page);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (flights, done_key) = (Arc::clone(self), key.clone());
        let fetching = fetch();
        let fetched = async move {
            let outcome = fetching.await;
            flights.land(&done_key, id);
            outcome
        };
        // A task of its own: the fetch finishes (and leaves the map) even when every reader
        // waiting on it gives up, and the map never holds a fetch that holds the cache.
        let outcome = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let task = runtime.spawn(fetched);
                async move {
                    task.await.unwrap_or_else(|e| {
                        Err(Miss::Failed(Error::Unavailable {
                            backend: "page cache".to_string(),
                            message: format!("a page fetch ended abnormally: {e}"),
                        }))
                    })
                }
                .boxed()
                .shared()
            }
            Err(_) => fetched.boxed().shared(),
        };
        map.insert(
            key.clone(),
            Flight {
                id,
                outcome: outcome.clone(),
            },
        );
        Joined::Flying(outcome)
    }

    /// Claims, for a streamed read that will fill them, those of `keys` that are neither on
    /// their way already nor cached (as `cached` says). All at once, so that two readers
    /// starting on one cold object cannot each claim part of it and both read it whole.
    pub fn claim(
        self: &Arc<Self>,
        keys: impl IntoIterator<Item = PageKey>,
        cached: impl Fn(&PageKey) -> bool,
    ) -> Vec<Claim> {
        let mut map = self.map();
        let mut claims = Vec::new();
        for key in keys {
            if map.contains_key(&key) || cached(&key) {
                continue;
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (sender, receiver) = oneshot::channel();
            let outcome = async move { receiver.await.unwrap_or(Err(Miss::Abandoned)) }
                .boxed()
                .shared();
            map.insert(key.clone(), Flight { id, outcome });
            claims.push(Claim {
                flights: Arc::clone(self),
                key,
                id,
                sender: Some(sender),
            });
        }
        claims
    }

    /// Removes the flight `id` of `key`, once its page is in the cache or will not come.
    fn land(&self, key: &PageKey, id: u64) {
        let mut map = self.map();
        if map.get(key).is_some_and(|flight| flight.id == id) {
            map.remove(key);
        }
    }
}

/// A page a streamed read promised to fill. Dropped unfilled, its waiters learn it was
/// abandoned and fetch the page themselves.
#[derive(Debug)]
pub(crate) struct Claim {
    flights: Arc<Flights>,
    key: PageKey,
    id: u64,
    sender: Option<oneshot::Sender<Outcome>>,
}

impl Claim {
    pub fn key(&self) -> &PageKey {
        &self.key
    }

    /// Hands the page to its waiters (the caller has stored it in the cache first).
    pub fn fill(mut self, page: Bytes) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(Ok(page));
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.flights.land(&self.key, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectMeta;
    use std::sync::atomic::AtomicUsize;

    fn key(index: u64) -> PageKey {
        let path = StorePath::parse("a").unwrap();
        let version = Version::of(&ObjectMeta {
            path: path.clone(),
            size: 10,
            etag: Some("1".into()),
            modified: None,
        })
        .unwrap();
        PageKey {
            path,
            version,
            index,
        }
    }

    #[tokio::test]
    async fn concurrent_joins_share_one_fetch_and_the_flight_lands() {
        let flights = Arc::new(Flights::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let (release, released) = oneshot::channel::<()>();
        let mut waiting = Vec::new();
        let mut released = Some(released);
        for _ in 0..5 {
            let joined = flights.join(
                &key(0),
                || None,
                || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let released = released.take().unwrap();
                    async move {
                        released.await.unwrap();
                        Ok(Bytes::from_static(b"page"))
                    }
                    .boxed()
                },
            );
            match joined {
                Joined::Flying(outcome) => waiting.push(tokio::spawn(outcome)),
                Joined::Cached(_) => panic!("nothing is cached"),
            }
        }
        assert!(flights.flying(&key(0)));
        release.send(()).unwrap();
        for waiter in waiting {
            assert_eq!(waiter.await.unwrap().unwrap(), "page");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(!flights.flying(&key(0)));
        // Found in the cache on the second look: no flight at all.
        let again = flights.join(
            &key(0),
            || Some(Bytes::from_static(b"hit")),
            || panic!("fetched a cached page"),
        );
        assert!(matches!(again, Joined::Cached(page) if page == "hit"));
    }

    #[tokio::test]
    async fn a_claim_dropped_unfilled_tells_its_waiters() {
        let flights = Arc::new(Flights::default());
        let mut claims = flights.claim([key(0), key(1)], |k| k.index == 0);
        assert_eq!(claims.len(), 1, "claimed a cached page");
        let claim = claims.pop().unwrap();
        assert_eq!(claim.key().index, 1);
        assert!(
            flights.claim([key(1)], |_| false).is_empty(),
            "claimed twice"
        );
        let Joined::Flying(waiter) = flights.join(&key(1), || None, || panic!("fetched")) else {
            panic!("not in flight")
        };
        drop(claim);
        assert!(matches!(waiter.await, Err(Miss::Abandoned)));
        assert!(!flights.flying(&key(1)));

        let claim = flights.claim([key(2)], |_| false).pop().unwrap();
        let Joined::Flying(waiter) = flights.join(&key(2), || None, || panic!("fetched")) else {
            panic!("not in flight")
        };
        claim.fill(Bytes::from_static(b"filled"));
        assert_eq!(waiter.await.unwrap(), "filled");
        assert!(!flights.flying(&key(2)));
    }
}
