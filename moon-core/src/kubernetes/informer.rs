//! One set of watches per namespace, shared by every wait, event stream and
//! log reader of one backend: following a thousand jobs costs four watches,
//! not four thousand, and the API server never lists a namespace once per job.
//!
//! Each kind of moon object (anchors, replica Jobs, pods, the Job
//! controller's `FailedCreate` warnings) is kept in a kube-runtime
//! [reflector] store, fed by kube-runtime's watcher with its default backoff,
//! so a broken watch resumes from its last resourceVersion, or lists again
//! when that is too old: an API server restart costs a pause. Initial lists
//! may be served from the API server's watch cache (`resourceVersion=0`);
//! the watch that follows brings the stores up to date.
//!
//! Every event the stores apply bumps a version of the job it touches; a
//! [`Subscription`] wakes on its job's version and reads the job from the
//! stores. Errors that retrying cannot cure ([`lasting`]) are handed to every
//! subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use futures::stream::{BoxStream, select_all};
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use kube::api::Api;
use kube::core::Status;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::watcher::{self, watcher};
use tokio::sync::watch;

use super::api::{Target, api_error, lasting};
use super::observe::{WARNINGS_FIELDS, is_anchor, job_of};
use crate::error::{ClusterError, Error, Result};
use moon_spec::kubernetes::status::Observed;
use moon_spec::kubernetes::{JOB_LABEL, MANAGED_BY_LABEL, MANAGER};

/// The informers of one backend, one per namespace, started on first use and
/// stopped [`LINGER`] after the last subscription to them ends.
#[derive(Default)]
pub(super) struct Informers {
    by_namespace: Mutex<HashMap<String, Weak<Informer>>>,
}

impl Informers {
    /// A subscription to one job of `namespace`.
    pub(super) fn subscribe(
        &self,
        client: &kube::Client,
        namespace: &str,
        job: &str,
    ) -> Subscription {
        let informer = {
            let mut all = self
                .by_namespace
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match all.get(namespace).and_then(Weak::upgrade) {
                Some(informer) => informer,
                None => {
                    let informer = Informer::start(client, namespace);
                    all.insert(namespace.to_string(), Arc::downgrade(&informer));
                    all.retain(|_, informer| informer.strong_count() > 0);
                    informer
                }
            }
        };
        let changes = informer.changes_of(job);
        Subscription {
            informer,
            job: job.to_string(),
            changes,
            first: true,
        }
    }
}

/// One namespace's stores and the task that keeps them.
pub(super) struct Informer {
    client: kube::Client,
    namespace: String,
    stores: Stores,
    wakeups: Arc<Mutex<Wakeups>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Informer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the namespace's watches have seen, one reflector store per kind.
#[derive(Clone)]
struct Stores {
    anchors: Store<core::ConfigMap>,
    jobs: Store<batch::Job>,
    pods: Store<core::Pod>,
    /// The Job controller's warnings, which name a replica's Job rather
    /// than carry the job's label.
    warnings: Store<core::Event>,
}

impl Stores {
    /// Whether every store has been listed once. Nothing awaits a store's
    /// readiness, so polling it once, with no waker to keep, only asks.
    fn ready(&self) -> bool {
        fn listed<K: reflector::Lookup + Clone + 'static>(store: &Store<K>) -> bool
        where
            K::DynamicType: Eq + std::hash::Hash + Clone,
        {
            matches!(store.wait_until_ready().now_or_never(), Some(Ok(())))
        }
        listed(&self.anchors) && listed(&self.jobs) && listed(&self.pods) && listed(&self.warnings)
    }

    /// The job a replica Job of this namespace belongs to, if it is known.
    fn owner_of(&self, namespace: &str, replica: &str) -> Option<String> {
        let replica = self.jobs.get(&ObjectRef::new(replica).within(namespace))?;
        job_of(&*replica).map(str::to_string)
    }

    /// What the stores hold of one job; `None` without its anchor.
    fn job(&self, namespace: &str, job: &str) -> Option<Observed> {
        let anchor = self
            .anchors
            .get(&ObjectRef::new(job).within(namespace))
            .filter(|anchor| is_anchor(anchor, job))?;
        let mut jobs: Vec<batch::Job> = self
            .jobs
            .state_filter(|replica| job_of(replica) == Some(job))
            .iter()
            .map(|replica| (**replica).clone())
            .collect();
        jobs.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let mut pods: Vec<core::Pod> = self
            .pods
            .state_filter(|pod| job_of(pod) == Some(job))
            .iter()
            .map(|pod| (**pod).clone())
            .collect();
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let replicas: Vec<&str> = jobs
            .iter()
            .filter_map(|replica| replica.metadata.name.as_deref())
            .collect();
        let mut warnings: Vec<core::Event> = self
            .warnings
            .state_filter(|warning| {
                warning
                    .involved_object
                    .name
                    .as_deref()
                    .is_some_and(|replica| replicas.contains(&replica))
            })
            .iter()
            .map(|warning| (**warning).clone())
            .collect();
        warnings.sort_by(|a, b| {
            (&a.involved_object.name, &a.metadata.name)
                .cmp(&(&b.involved_object.name, &b.metadata.name))
        });
        Some(Observed {
            anchor: (*anchor).clone(),
            jobs,
            pods,
            warnings,
        })
    }
}

/// A job's change counter; `u64::MAX` is never reached.
type Changes = watch::Sender<u64>;

#[derive(Default)]
struct Wakeups {
    /// Per job, who waits on it.
    by_job: HashMap<String, Changes>,
    /// The server's answer to a watch that retrying cannot cure: every
    /// subscriber gets it.
    failure: Option<Status>,
}

impl Wakeups {
    /// A receiver of `job`'s changes.
    fn subscribe(&mut self, job: &str) -> watch::Receiver<u64> {
        self.by_job
            .entry(job.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn wake(&self, touched: Touched) {
        let bump = |changes: &Changes| changes.send_modify(|version| *version += 1);
        match touched {
            Touched::Nothing => {}
            Touched::Job(job) => self.by_job.get(&job).into_iter().for_each(bump),
            Touched::All => self.by_job.values().for_each(bump),
        }
    }
}

/// Which jobs a watch event changed.
enum Touched {
    /// None yet: a relist in progress replaces the store only at its end.
    Nothing,
    Job(String),
    /// A relist ended, or an object of a job that is not known.
    All,
}

impl Touched {
    fn by<K>(event: &watcher::Event<K>, job_of: impl Fn(&K) -> Option<String>) -> Touched {
        match event {
            watcher::Event::Init | watcher::Event::InitApply(_) => Touched::Nothing,
            watcher::Event::InitDone => Touched::All,
            watcher::Event::Apply(object) | watcher::Event::Delete(object) => {
                job_of(object).map_or(Touched::All, Touched::Job)
            }
        }
    }
}

/// Server-side apply's bookkeeping is most of a stored object's size and
/// nothing status is derived from.
fn forget_managed_fields<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

type Updates = BoxStream<'static, Result<Touched, watcher::Error>>;

/// One kind's watch, kept in `writer`'s store; each event says which job it touched.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    job_of: impl Fn(&K) -> Option<String> + Send + 'static,
) -> Updates
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let events = watcher(api, config)
        .default_backoff()
        .modify(forget_managed_fields);
    reflector(writer, events)
        .map_ok(move |event| Touched::by(&event, &job_of))
        .boxed()
}

impl Informer {
    fn start(client: &kube::Client, namespace: &str) -> Arc<Informer> {
        let moon_objects = || {
            watcher::Config::default()
                .labels(&format!("{MANAGED_BY_LABEL}={MANAGER},{JOB_LABEL}"))
                .any_semantic()
        };
        let (anchors, anchors_writer) = reflector::store();
        let (jobs, jobs_writer) = reflector::store();
        let (pods, pods_writer) = reflector::store();
        let (warnings, warnings_writer) = reflector::store();
        let stores = Stores {
            anchors,
            jobs,
            pods,
            warnings,
        };
        let owners = stores.clone();
        let warnings_namespace = namespace.to_string();
        let updates: Vec<Updates> = vec![
            reflect(
                Api::<core::ConfigMap>::namespaced(client.clone(), namespace),
                moon_objects(),
                anchors_writer,
                |anchor| job_of(anchor).map(str::to_string),
            ),
            reflect(
                Api::<batch::Job>::namespaced(client.clone(), namespace),
                moon_objects(),
                jobs_writer,
                |replica| job_of(replica).map(str::to_string),
            ),
            // Pods carry the job's labels through the Job's template.
            reflect(
                Api::<core::Pod>::namespaced(client.clone(), namespace),
                moon_objects(),
                pods_writer,
                |pod| job_of(pod).map(str::to_string),
            ),
            // A warning names a replica's Job, which may not be stored yet:
            // the job to wake is that Job's, or every job when it is unknown.
            reflect(
                Api::<core::Event>::namespaced(client.clone(), namespace),
                watcher::Config::default()
                    .fields(WARNINGS_FIELDS)
                    .any_semantic(),
                warnings_writer,
                move |warning: &core::Event| {
                    let replica = warning.involved_object.name.as_deref()?;
                    owners.owner_of(&warnings_namespace, replica)
                },
            ),
        ];
        let wakeups = Arc::new(Mutex::new(Wakeups::default()));
        let task = tokio::spawn(run(select_all(updates), wakeups.clone()));
        Arc::new(Informer {
            client: client.clone(),
            namespace: namespace.to_string(),
            stores,
            wakeups,
            task,
        })
    }

    fn changes_of(&self, job: &str) -> watch::Receiver<u64> {
        let mut wakeups = self.wakeups.lock().unwrap_or_else(PoisonError::into_inner);
        wakeups.subscribe(job)
    }
}

/// Keeps the stores (the reflectors apply each event as it passes), then
/// wakes the jobs each event touched.
async fn run(mut updates: futures::stream::SelectAll<Updates>, wakeups: Arc<Mutex<Wakeups>>) {
    while let Some(update) = updates.next().await {
        let mut wakeups = wakeups.lock().unwrap_or_else(PoisonError::into_inner);
        match update {
            Ok(touched) => wakeups.wake(touched),
            Err(error) => {
                if let Some(status) = lasting(&error) {
                    wakeups.failure = Some(status.clone());
                    wakeups.wake(Touched::All);
                }
            }
        }
    }
}

/// One job followed through its namespace's informer.
pub(super) struct Subscription {
    informer: Arc<Informer>,
    job: String,
    changes: watch::Receiver<u64>,
    first: bool,
}

impl Subscription {
    /// What the cluster holds of the job: at once the first time (once the
    /// informer has listed everything), after the job's next change later.
    pub(super) async fn next(&mut self) -> Result<Observed> {
        loop {
            if !std::mem::take(&mut self.first) {
                self.changes.changed().await.map_err(|_| {
                    Error::Cluster(ClusterError::moon(
                        "WatchEnded",
                        format!(
                            "the watches of namespace {} stopped",
                            self.informer.namespace
                        ),
                        true,
                    ))
                })?;
            }
            self.changes.borrow_and_update();
            if let Some(failure) = self.failure() {
                return Err(failure);
            }
            if !self.informer.stores.ready() {
                continue;
            }
            match self
                .informer
                .stores
                .job(&self.informer.namespace, &self.job)
            {
                Some(observed) => return Ok(observed),
                None => self.confirm_anchor().await?,
            }
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.informer.namespace, self.job)
    }

    /// The lasting watch error, as this job's.
    fn failure(&self) -> Option<Error> {
        let wakeups = self
            .informer
            .wakeups
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let status = wakeups.failure.clone()?;
        drop(wakeups);
        let key = self.key();
        let target = Target {
            kind: "job",
            name: &key,
        };
        Some(api_error(kube::Error::Api(Box::new(status)), target))
    }

    /// An anchor the store lacks may be one created after the informer's
    /// list, not yet seen on its watch: the API server says which.
    async fn confirm_anchor(&self) -> Result<()> {
        let key = self.key();
        let target = Target {
            kind: "job",
            name: &key,
        };
        let anchor = Api::<core::ConfigMap>::namespaced(
            self.informer.client.clone(),
            &self.informer.namespace,
        )
        .get_opt(&self.job)
        .await
        .map_err(|error| api_error(error, target))?;
        match anchor {
            Some(anchor) if is_anchor(&anchor, &self.job) => Ok(()),
            _ => Err(Error::NotFound {
                kind: "job",
                name: key,
            }),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut wakeups = self
            .informer
            .wakeups
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // This subscription's receiver is the last one: nobody waits on the job.
        if wakeups
            .by_job
            .get(&self.job)
            .is_some_and(|changes| changes.receiver_count() <= 1)
        {
            wakeups.by_job.remove(&self.job);
        }
        drop(wakeups);
        // Waits one after another (`for job in jobs: job.wait()`) would each
        // list the namespace again if the informer stopped between them: it
        // lingers a while after its last subscription.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let informer = self.informer.clone();
            runtime.spawn(async move {
                tokio::time::sleep(LINGER).await;
                drop(informer);
            });
        }
    }
}

/// How long an informer outlives its last subscription.
const LINGER: std::time::Duration = std::time::Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Writers {
        anchors: reflector::store::Writer<core::ConfigMap>,
        jobs: reflector::store::Writer<batch::Job>,
        pods: reflector::store::Writer<core::Pod>,
        warnings: reflector::store::Writer<core::Event>,
    }

    fn stores() -> (Stores, Writers) {
        let (anchors, anchors_writer) = reflector::store();
        let (jobs, jobs_writer) = reflector::store();
        let (pods, pods_writer) = reflector::store();
        let (warnings, warnings_writer) = reflector::store();
        let stores = Stores {
            anchors,
            jobs,
            pods,
            warnings,
        };
        let writers = Writers {
            anchors: anchors_writer,
            jobs: jobs_writer,
            pods: pods_writer,
            warnings: warnings_writer,
        };
        (stores, writers)
    }

    fn object<K: serde::de::DeserializeOwned>(name: &str, job: &str, managed: bool) -> K {
        let mut labels = json!({ JOB_LABEL: job });
        if managed {
            labels[MANAGED_BY_LABEL] = json!(MANAGER);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "vision", "labels": labels},
        }))
        .unwrap()
    }

    fn warning(name: &str, replica: &str) -> core::Event {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "vision"},
            "involvedObject": {"kind": "Job", "name": replica, "namespace": "vision"},
            "reason": "FailedCreate",
        }))
        .unwrap()
    }

    fn names<K: kube::Resource>(objects: &[K]) -> Vec<&str> {
        objects
            .iter()
            .map(|object| object.meta().name.as_deref().unwrap())
            .collect()
    }

    /// A list that brings `objects` into a store, as the watcher reports one.
    fn listed<K: reflector::Lookup + Clone>(
        writer: &mut reflector::store::Writer<K>,
        objects: Vec<K>,
    ) where
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        writer.apply_watcher_event(&watcher::Event::Init);
        for object in objects {
            writer.apply_watcher_event(&watcher::Event::InitApply(object));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
    }

    #[test]
    fn a_job_is_read_from_the_stores_once_every_kind_is_listed() {
        let (stores, mut writers) = stores();
        listed(
            &mut writers.anchors,
            vec![
                object("mnist", "mnist", true),
                object("other", "other", true),
            ],
        );
        listed(
            &mut writers.jobs,
            vec![
                object("mnist-worker-1", "mnist", true),
                object("mnist-master-0", "mnist", true),
                object("other-master-0", "other", true),
            ],
        );
        assert!(!stores.ready(), "pods and warnings are not listed yet");
        listed(
            &mut writers.pods,
            vec![
                object("mnist-master-0-x1", "mnist", true),
                object("other-master-0-y1", "other", true),
            ],
        );
        listed(
            &mut writers.warnings,
            vec![
                warning("quota.2", "mnist-worker-1"),
                warning("quota.1", "mnist-master-0"),
                warning("quota.3", "other-master-0"),
            ],
        );
        assert!(stores.ready());

        let mnist = stores.job("vision", "mnist").unwrap();
        assert_eq!(mnist.anchor.metadata.name.as_deref(), Some("mnist"));
        assert_eq!(names(&mnist.jobs), ["mnist-master-0", "mnist-worker-1"]);
        assert_eq!(names(&mnist.pods), ["mnist-master-0-x1"]);
        assert_eq!(names(&mnist.warnings), ["quota.1", "quota.2"]);
        assert_eq!(
            stores.owner_of("vision", "other-master-0").as_deref(),
            Some("other")
        );
        assert_eq!(stores.owner_of("vision", "gone-master-0"), None);
        assert!(stores.job("vision", "gone").is_none());
    }

    #[test]
    fn a_configmap_moon_did_not_make_is_no_job() {
        let (stores, mut writers) = stores();
        listed(&mut writers.anchors, vec![object("mnist", "mnist", false)]);
        assert!(stores.job("vision", "mnist").is_none());
    }

    #[test]
    fn an_event_wakes_the_waiters_of_its_job_and_a_relist_wakes_all() {
        let mut wakeups = Wakeups::default();
        let mut mnist = wakeups.subscribe("mnist");
        let mut other = wakeups.subscribe("other");
        let label = |pod: &core::Pod| job_of(pod).map(str::to_string);

        let applied =
            watcher::Event::Apply(object::<core::Pod>("mnist-master-0-x1", "mnist", true));
        wakeups.wake(Touched::by(&applied, label));
        assert!(mnist.has_changed().unwrap());
        assert!(!other.has_changed().unwrap());
        mnist.borrow_and_update();

        let relisting = watcher::Event::InitApply(object::<core::Pod>("x", "other", true));
        wakeups.wake(Touched::by(&relisting, label));
        assert!(!mnist.has_changed().unwrap() && !other.has_changed().unwrap());

        wakeups.wake(Touched::by(&watcher::Event::<core::Pod>::InitDone, label));
        assert!(mnist.has_changed().unwrap() && other.has_changed().unwrap());
        other.borrow_and_update();

        // An object whose job is unknown (a warning about a replica not
        // stored yet) wakes every waiter rather than none.
        let unknown = watcher::Event::Apply(warning("quota.9", "new-master-0"));
        wakeups.wake(Touched::by(&unknown, |_: &core::Event| None));
        assert!(other.has_changed().unwrap());
    }
}
