//! One set of watches per namespace, shared by every wait and event stream
//! of one backend: following a thousand jobs costs four watches, not four
//! thousand, and the API server never lists a namespace once per job.
//!
//! The informer mirrors the namespace's moon objects (anchors, replica Jobs,
//! pods, the Job controller's `FailedCreate` warnings), grouped by job, and
//! bumps a per-job version whenever something of that job changes; a
//! [`Subscription`] wakes on its job's version and derives the job from the
//! mirror. Each watch is kube-runtime's watcher with its default backoff, so
//! a broken watch resumes from its last resourceVersion, or lists again when
//! that is too old: an API server restart costs a pause. Initial lists may be
//! served from the API server's watch cache (`resourceVersion=0`); the watch
//! that follows brings the mirror up to date. Errors that retrying cannot
//! cure (permission refused) are handed to every subscriber.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use futures::stream::{BoxStream, select_all};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use tokio::sync::watch;

use super::api::{Target, api_error, lasting};
use super::observe::{WARNINGS_FIELDS, is_anchor};
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

/// One namespace's mirror and the task that keeps it.
pub(super) struct Informer {
    client: kube::Client,
    namespace: String,
    state: Arc<Mutex<Mirror>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Informer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A job's change counter; `u64::MAX` is never reached.
type Changes = watch::Sender<u64>;

#[derive(Default)]
struct Mirror {
    anchors: Kind<core::ConfigMap>,
    jobs: Kind<batch::Job>,
    pods: Kind<core::Pod>,
    /// Per job, who waits on it.
    changes: HashMap<String, Changes>,
    /// By the replica Job they name, not by job.
    warnings: Kind<core::Event>,
    /// A lasting error: every subscriber gets it.
    failure: Option<Arc<Error>>,
}

impl Mirror {
    /// The job a replica Job belongs to, if it is mirrored.
    fn owner_of(&self, replica: &str) -> Option<String> {
        self.jobs
            .by_job
            .iter()
            .find(|(_, replicas)| replicas.contains_key(replica))
            .map(|(job, _)| job.clone())
    }
}

/// The objects of one kind: by job, then by name.
struct Kind<K> {
    by_job: HashMap<String, BTreeMap<String, K>>,
    relisting: Option<HashMap<String, BTreeMap<String, K>>>,
    ready: bool,
}

impl<K> Default for Kind<K> {
    fn default() -> Self {
        Kind {
            by_job: HashMap::new(),
            relisting: None,
            ready: false,
        }
    }
}

impl<K: kube::Resource + Clone> Kind<K> {
    /// Applies a watcher event; returns the jobs it touched (`None`: all of them).
    fn apply(
        &mut self,
        event: watcher::Event<K>,
        job_of: impl Fn(&K) -> Option<String>,
    ) -> Option<Vec<String>> {
        let name = |object: &K| object.meta().name.clone().unwrap_or_default();
        match event {
            watcher::Event::Init => {
                self.relisting = Some(HashMap::new());
                Some(Vec::new())
            }
            watcher::Event::InitApply(object) => {
                if let Some(job) = job_of(&object) {
                    let relisting = self.relisting.get_or_insert_with(HashMap::new);
                    relisting
                        .entry(job)
                        .or_default()
                        .insert(name(&object), object);
                }
                Some(Vec::new())
            }
            watcher::Event::InitDone => {
                self.by_job = self.relisting.take().unwrap_or_default();
                self.ready = true;
                None
            }
            watcher::Event::Apply(object) => {
                let job = job_of(&object)?;
                self.by_job
                    .entry(job.clone())
                    .or_default()
                    .insert(name(&object), object);
                Some(vec![job])
            }
            watcher::Event::Delete(object) => {
                let job = job_of(&object)?;
                if let Some(objects) = self.by_job.get_mut(&job) {
                    objects.remove(&name(&object));
                    if objects.is_empty() {
                        self.by_job.remove(&job);
                    }
                }
                Some(vec![job])
            }
        }
    }

    fn of(&self, job: &str) -> Vec<K> {
        self.by_job
            .get(job)
            .map(|objects| objects.values().cloned().collect())
            .unwrap_or_default()
    }
}

enum Update {
    Anchor(Box<watcher::Event<core::ConfigMap>>),
    Job(Box<watcher::Event<batch::Job>>),
    Pod(Box<watcher::Event<core::Pod>>),
    Warning(Box<watcher::Event<core::Event>>),
}

/// Server-side apply's bookkeeping is most of a mirrored object's size and
/// nothing status is derived from.
fn forget_managed_fields<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

fn job_label<K: kube::Resource>(object: &K) -> Option<String> {
    object.meta().labels.as_ref()?.get(JOB_LABEL).cloned()
}

impl Informer {
    fn start(client: &kube::Client, namespace: &str) -> Arc<Informer> {
        let state = Arc::new(Mutex::new(Mirror::default()));
        let moon_objects = || {
            watcher::Config::default()
                .labels(&format!("{MANAGED_BY_LABEL}={MANAGER},{JOB_LABEL}"))
                .any_semantic()
        };
        let streams: Vec<BoxStream<'static, Result<Update, watcher::Error>>> = vec![
            watcher(
                Api::<core::ConfigMap>::namespaced(client.clone(), namespace),
                moon_objects(),
            )
            .default_backoff()
            .modify(forget_managed_fields)
            .map_ok(|event| Update::Anchor(Box::new(event)))
            .boxed(),
            watcher(
                Api::<batch::Job>::namespaced(client.clone(), namespace),
                moon_objects(),
            )
            .default_backoff()
            .modify(forget_managed_fields)
            .map_ok(|event| Update::Job(Box::new(event)))
            .boxed(),
            // Pods carry the job's labels through the Job's template.
            watcher(
                Api::<core::Pod>::namespaced(client.clone(), namespace),
                moon_objects(),
            )
            .default_backoff()
            .modify(forget_managed_fields)
            .map_ok(|event| Update::Pod(Box::new(event)))
            .boxed(),
            watcher(
                Api::<core::Event>::namespaced(client.clone(), namespace),
                watcher::Config::default()
                    .fields(WARNINGS_FIELDS)
                    .any_semantic(),
            )
            .default_backoff()
            .modify(forget_managed_fields)
            .map_ok(|event| Update::Warning(Box::new(event)))
            .boxed(),
        ];
        let task = tokio::spawn(run(
            select_all(streams),
            state.clone(),
            namespace.to_string(),
        ));
        Arc::new(Informer {
            client: client.clone(),
            namespace: namespace.to_string(),
            state,
            task,
        })
    }

    fn changes_of(&self, job: &str) -> watch::Receiver<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .changes
            .entry(job.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }
}

/// Keeps the mirror: applies every watch event, then wakes the jobs it touched.
async fn run(
    mut updates: futures::stream::SelectAll<BoxStream<'static, Result<Update, watcher::Error>>>,
    state: Arc<Mutex<Mirror>>,
    namespace: String,
) {
    while let Some(update) = updates.next().await {
        let mut mirror = state.lock().unwrap_or_else(PoisonError::into_inner);
        let touched = match update {
            Ok(Update::Anchor(event)) => mirror.anchors.apply(*event, job_label),
            Ok(Update::Job(event)) => mirror.jobs.apply(*event, job_label),
            Ok(Update::Pod(event)) => mirror.pods.apply(*event, job_label),
            Ok(Update::Warning(event)) => {
                // Kept by the replica Job they name, which may not be mirrored
                // yet; the job to wake is that Job's, or every job when unknown.
                let touched = mirror.warnings.apply(*event, |warning: &core::Event| {
                    warning.involved_object.name.clone()
                });
                touched.and_then(|replicas| {
                    replicas
                        .iter()
                        .map(|replica| mirror.owner_of(replica))
                        .collect::<Option<Vec<String>>>()
                })
            }
            Err(error) => match lasting(&error) {
                Some(status) => {
                    let target = Target {
                        kind: "namespace",
                        name: &namespace,
                    };
                    mirror.failure = Some(Arc::new(api_error(
                        kube::Error::Api(Box::new(status.clone())),
                        target,
                    )));
                    None
                }
                None => continue,
            },
        };
        match touched {
            Some(jobs) => {
                for job in jobs {
                    if let Some(changes) = mirror.changes.get(&job) {
                        changes.send_modify(|version| *version += 1);
                    }
                }
            }
            None => {
                for changes in mirror.changes.values() {
                    changes.send_modify(|version| *version += 1);
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
            match self.snapshot()? {
                Snapshot::Listing => {}
                Snapshot::Job(observed) => return Ok(*observed),
                Snapshot::NoAnchor => self.confirm_anchor().await?,
            }
        }
    }

    /// An anchor the mirror lacks may be one created after the informer's
    /// list, not yet seen on its watch: the API server says which.
    async fn confirm_anchor(&self) -> Result<()> {
        let key = format!("{}/{}", self.informer.namespace, self.job);
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

    fn snapshot(&self) -> Result<Snapshot> {
        let mirror = self
            .informer
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(failure) = &mirror.failure {
            return Err(copy_error(failure));
        }
        let ready =
            mirror.anchors.ready && mirror.jobs.ready && mirror.pods.ready && mirror.warnings.ready;
        if !ready {
            return Ok(Snapshot::Listing);
        }
        let Some(anchor) = mirror
            .anchors
            .of(&self.job)
            .into_iter()
            .find(|anchor| is_anchor(anchor, &self.job))
        else {
            return Ok(Snapshot::NoAnchor);
        };
        let jobs = mirror.jobs.of(&self.job);
        let warnings = jobs
            .iter()
            .filter_map(|replica| replica.metadata.name.as_deref())
            .flat_map(|replica| mirror.warnings.of(replica))
            .collect();
        Ok(Snapshot::Job(Box::new(Observed {
            anchor,
            jobs,
            pods: mirror.pods.of(&self.job),
            warnings,
        })))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut mirror = self
            .informer
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // This subscription's receiver is the last one: nobody waits on the job.
        if mirror
            .changes
            .get(&self.job)
            .is_some_and(|changes| changes.receiver_count() <= 1)
        {
            mirror.changes.remove(&self.job);
        }
        drop(mirror);
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

enum Snapshot {
    /// The informer has not listed everything yet.
    Listing,
    /// The mirror has no anchor of that name.
    NoAnchor,
    Job(Box<Observed>),
}

/// moon's errors are not `Clone` (one holds an `io::Error`); the ones an
/// informer keeps are API refusals, which are.
fn copy_error(error: &Error) -> Error {
    match error {
        Error::PermissionDenied(message) => Error::PermissionDenied(message.clone()),
        Error::NotFound { kind, name } => Error::NotFound {
            kind,
            name: name.clone(),
        },
        Error::Cluster(error) => Error::Cluster(error.clone()),
        other => Error::Cluster(ClusterError::moon("Unknown", other.to_string(), false)),
    }
}
