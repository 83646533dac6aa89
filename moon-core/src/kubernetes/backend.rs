//! The Kubernetes backend: tenants and jobs on a real cluster, through the
//! same [`Backend`] trait as the local backend.
//!
//! Nothing of moon runs in the cluster. A submission applies what
//! [`render_job`] gives (server-side apply, field manager `moon`), and every
//! status is derived from the cluster's own objects by
//! [`status::derive`](moon_spec::kubernetes::status); the first reader that sees a job end
//! records the outcome (see [`record`](super::record)), as far as its rights
//! allow: reads need only the cluster's `view` role. Waiting and watching
//! follow the cluster's watches (see [`watch`](super::watch)), never a
//! polling loop.
//!
//! moon's own admission, the tenant's `jobs` quota, is checked when a job is
//! submitted: over the limit, the submission is refused with the numbers.
//! CPU, memory and GPU quotas are the cluster's: a replica that the
//! ResourceQuota refuses holds its job Pending with the quota's own message.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::future::try_join_all;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use kube::runtime::wait::{self, await_condition, conditions};
use tokio::sync::OnceCell;

use super::api::{self, Target, api_error, is_not_found, watch_error};
use super::config::KubernetesConfig;
use super::informer::Informers;
use super::observe::{WARNINGS_FIELDS, is_anchor, job_of, observe};
use super::record::{Recorder, write_conclusion};
use super::services;
use crate::backend::{
    ApplyOutcome, Backend, Event, JobStatus, LogLine, LogOptions, Phase, ServiceStatus, Stream,
    TenantStatus, end_before_delete, end_tenant_jobs_before_delete, waiting_at_most,
};
use crate::error::{Error, QuotaRefusal, Result};
use crate::secret::{SecretData, SecretInfo};
use crate::spec::{
    Job, Quantity, Service, Tenant, validate_job, validate_secret, validate_secret_name,
};
use crate::volumes::ResolvedVolume;
use moon_spec::kubernetes::TENANT_SPEC_ANNOTATION;
use moon_spec::kubernetes::status::{self, Conclusion, Derived, Observed};
use moon_spec::kubernetes::{
    JOB_LABEL, MANAGED_BY_LABEL, MANAGER, Object, QUOTA, RenderOptions, SUBMITTED_ANNOTATION,
    TENANT_LABEL, render_job, render_tenant, render_tenant_storage,
};

/// The Kubernetes backend. Cheap to share; connects on first use.
pub struct KubernetesBackend {
    config: KubernetesConfig,
    client: OnceCell<kube::Client>,
    informers: Arc<Informers>,
    /// Tenant specs read lately, so that a burst of submissions reads each
    /// tenant's `jobs` quota once rather than once per job.
    tenants: Mutex<HashMap<String, (Instant, Tenant)>>,
}

/// How long a tenant's spec read for admission is trusted.
const TENANT_SPEC_TTL: Duration = Duration::from_secs(5);

impl KubernetesBackend {
    /// A backend for the cluster the settings name. Connecting waits for the
    /// first request, which needs a running async runtime.
    pub fn new(config: KubernetesConfig) -> KubernetesBackend {
        KubernetesBackend {
            config,
            client: OnceCell::new(),
            informers: Arc::new(Informers::default()),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &KubernetesConfig {
        &self.config
    }

    /// The objects a job becomes with this backend's image, tolerations
    /// and node selector.
    pub fn render_options(&self) -> RenderOptions {
        RenderOptions {
            image: self.config.image.clone(),
            anchor_uid: None,
            tolerations: self.config.tolerations.clone(),
            node_selector: self.config.node_selector.clone(),
            volumes: Vec::new(),
        }
    }

    /// A registry of the services' EndpointSlices, with this backend's
    /// connection and rights, for client-side balancing inside the cluster.
    pub async fn registry(&self) -> Result<super::EndpointSliceRegistry> {
        Ok(super::EndpointSliceRegistry::new(self.client().await?))
    }

    async fn client(&self) -> Result<kube::Client> {
        self.client
            .get_or_try_init(|| api::connect(&self.config))
            .await
            .cloned()
    }

    /// The tenant's spec, as recorded on its Namespace.
    async fn tenant_spec(&self, client: &kube::Client, name: &str) -> Result<Tenant> {
        let target = Target {
            kind: "tenant",
            name,
        };
        let namespace = Api::<core::Namespace>::all(client.clone())
            .get(name)
            .await
            .map_err(|error| api_error(error, target))?;
        tenant_of(&namespace).ok_or_else(|| Error::NotFound {
            kind: "tenant",
            name: name.to_string(),
        })
    }

    async fn tenant_status(&self, client: &kube::Client, spec: Tenant) -> Result<TenantStatus> {
        let target = Target {
            kind: "tenant",
            name: &spec.name,
        };
        let quota = Api::<core::ResourceQuota>::namespaced(client.clone(), &spec.name)
            .get_opt(QUOTA)
            .await
            .map_err(|error| api_error(error, target))?;
        let used = quota
            .and_then(|quota| quota.status)
            .and_then(|status| status.used)
            .unwrap_or_default();
        let amount = |key: &str| used.get(key).map(|q| Quantity::from(q.0.as_str()));
        let jobs = self.list_jobs(Some(&spec.name)).await?;
        Ok(TenantStatus {
            running_jobs: count(&jobs, Phase::Running),
            pending_jobs: count(&jobs, Phase::Pending),
            used_millicores: amount("requests.cpu")
                .and_then(|q| q.millicores().ok())
                .unwrap_or(0),
            used_bytes: amount("requests.memory")
                .and_then(|q| q.bytes().ok())
                .unwrap_or(0),
            used_gpus: amount("requests.nvidia.com/gpu")
                .and_then(|q| q.millicores().ok())
                .map_or(0, |millis| millis / 1000),
            spec,
        })
    }

    /// The tenant's spec as read at most [`TENANT_SPEC_TTL`] ago.
    async fn recent_tenant_spec(&self, client: &kube::Client, name: &str) -> Result<Tenant> {
        let cached = self
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .filter(|(read, _)| read.elapsed() < TENANT_SPEC_TTL)
            .map(|(_, spec)| spec.clone());
        if let Some(spec) = cached {
            return Ok(spec);
        }
        let spec = self.tenant_spec(client, name).await?;
        self.tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), (Instant::now(), spec.clone()));
        Ok(spec)
    }

    /// Refuses a job when the tenant's `jobs` quota is full.
    async fn admit(&self, client: &kube::Client, job: &Job) -> Result<()> {
        let tenant = self.recent_tenant_spec(client, &job.tenant).await?;
        let Some(limit) = tenant.quota.jobs else {
            return Ok(());
        };
        let active = self
            .list_jobs(Some(&job.tenant))
            .await?
            .iter()
            .filter(|status| !status.phase.is_terminal())
            .count() as u64;
        if active >= limit {
            return Err(Error::QuotaExceeded(Box::new(QuotaRefusal::new(
                format!("tenant {}", job.tenant),
                "jobs",
                active.to_string(),
                "1",
                limit.to_string(),
                format!(
                    "tenant {}: jobs {active} of {limit} in use, job asks 1",
                    job.tenant
                ),
            ))));
        }
        Ok(())
    }
}

/// Reads a job, derives its status and records what it concluded as
/// `recorder` records: for a read as far as the reader may (a read needs
/// no write rights), for a write or fail.
async fn settle(
    client: &kube::Client,
    tenant: &str,
    name: &str,
    mut recorder: Recorder,
) -> Result<(Observed, Derived)> {
    let observed = observe(client, tenant, name).await?;
    let derived = status::derive(&observed)?;
    recorder.record(client, &observed, &derived).await?;
    Ok((observed, derived))
}

/// How long a delete waits for the cluster to remove what it deletes: a
/// job's anchor after its replicas' Jobs, pods and Services (foreground
/// propagation), or a tenant's Namespace after everything in it.
const DELETED_WAIT: Duration = Duration::from_secs(120);

/// Deletes `name` with `params` and waits until it is gone, so that the
/// name can be used again at once. `Timeout` when it takes longer than
/// [`DELETED_WAIT`].
async fn delete_and_wait<K>(
    api: Api<K>,
    name: &str,
    uid: &str,
    params: &DeleteParams,
    target: Target<'_>,
) -> Result<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let params = DeleteParams {
        // Only the object that was checked, never one made since under its name.
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..params.clone()
    };
    match api.delete(name, &params).await {
        Ok(_) => {}
        Err(error) if is_not_found(&error) => return Ok(()),
        Err(error) => return Err(api_error(error, target)),
    }
    let gone = await_condition(api, name, conditions::is_deleted(uid));
    match tokio::time::timeout(DELETED_WAIT, gone).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(wait::Error::ProbeFailed(error))) => Err(watch_error(error, target)),
        Err(_) => Err(Error::Timeout {
            what: format!("{} {} to be deleted", target.kind, target.name),
            seconds: DELETED_WAIT.as_secs_f64(),
        }),
    }
}

fn tenant_of(namespace: &core::Namespace) -> Option<Tenant> {
    let metadata = &namespace.metadata;
    let managed = metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(MANAGED_BY_LABEL))
        .is_some_and(|manager| manager == MANAGER);
    let spec = metadata.annotations.as_ref()?.get(TENANT_SPEC_ANNOTATION)?;
    if !managed {
        return None;
    }
    serde_json::from_str(spec).ok()
}

fn count(jobs: &[JobStatus], phase: Phase) -> u64 {
    jobs.iter().filter(|job| job.phase == phase).count() as u64
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

#[async_trait]
impl Backend for KubernetesBackend {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    async fn apply_tenant(&self, tenant: &Tenant) -> Result<ApplyOutcome> {
        let mut objects = render_tenant(tenant)?;
        objects.extend(render_tenant_storage(tenant, &self.config.storage)?);
        let client = self.client().await?;
        let target = Target {
            kind: "tenant",
            name: &tenant.name,
        };
        let mut existed = true;
        let mut changed = false;
        // In order: the Namespace must exist before what lives in it.
        for object in &objects {
            let before = api::resource_version(&client, object, target).await?;
            if before.is_none() && matches!(object, Object::Namespace(_)) {
                existed = false;
            }
            let after = api::apply(&client, object, target).await?;
            changed |= before != after;
        }
        // What the spec no longer renders (an exposure dropped, the other
        // isolation's policies) must not keep allowing anything.
        if existed {
            changed |= super::tenant_network::prune(&client, &tenant.name, &objects).await?;
        }
        // This client's next submission reads the new quota.
        self.tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&tenant.name);
        Ok(match (existed, changed) {
            (false, _) => ApplyOutcome::Created,
            (true, true) => ApplyOutcome::Updated,
            (true, false) => ApplyOutcome::Unchanged,
        })
    }

    async fn get_tenant(&self, name: &str) -> Result<TenantStatus> {
        let client = self.client().await?;
        let spec = self.tenant_spec(&client, name).await?;
        self.tenant_status(&client, spec).await
    }

    async fn list_tenants(&self) -> Result<Vec<TenantStatus>> {
        let client = self.client().await?;
        let namespaces = Api::<core::Namespace>::all(client.clone())
            .list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}")))
            .await
            .map_err(|error| {
                api_error(
                    error,
                    Target {
                        kind: "tenant",
                        name: "*",
                    },
                )
            })?;
        let mut specs: Vec<Tenant> = namespaces.items.iter().filter_map(tenant_of).collect();
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut tenants = Vec::with_capacity(specs.len());
        for spec in specs {
            tenants.push(self.tenant_status(&client, spec).await?);
        }
        Ok(tenants)
    }

    async fn submit(&self, job: &Job) -> Result<JobStatus> {
        self.submit_with_volumes(job, &[]).await
    }

    async fn submit_with_volumes(
        &self,
        job: &Job,
        volumes: &[ResolvedVolume],
    ) -> Result<JobStatus> {
        validate_job(job)?;
        let key = format!("{}/{}", job.tenant, job.name);
        let target = Target {
            kind: "job",
            name: &key,
        };
        let mut options = self.render_options();
        options.volumes = volumes.to_vec();
        let rendered = render_job(job, &options)?;
        let client = self.client().await?;
        self.admit(&client, job).await?;
        super::secret::check_referenced(&client, job).await?;

        let Some(Object::ConfigMap(anchor)) = rendered.first() else {
            unreachable!("render_job puts the anchor first");
        };
        let mut anchor = anchor.clone();
        anchor
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(SUBMITTED_ANNOTATION.to_string(), now_ms().to_string());
        let anchors = Api::<core::ConfigMap>::namespaced(client.clone(), &job.tenant);
        let post = PostParams {
            field_manager: Some(MANAGER.to_string()),
            ..PostParams::default()
        };
        // Created, not applied: a second job of the same name is refused
        // rather than taking over the first one's objects.
        let anchor = anchors
            .create(&post, &anchor)
            .await
            .map_err(|error| api_error(error, target))?;

        options.anchor_uid = anchor.metadata.uid.clone();
        let owned = render_job(job, &options)?;
        let applied = try_join_all(
            owned[1..]
                .iter()
                .map(|object| api::apply(&client, object, target)),
        )
        .await;
        if let Err(error) = applied {
            // Deleting the anchor deletes whatever of the job was applied.
            let _ = anchors.delete(&job.name, &DeleteParams::background()).await;
            return Err(error);
        }
        let observed = Observed {
            anchor,
            ..Observed::default()
        };
        Ok(status::derive(&observed)?.status)
    }

    async fn get_job(&self, tenant: &str, name: &str) -> Result<JobStatus> {
        let client = self.client().await?;
        Ok(settle(&client, tenant, name, Recorder::reading())
            .await?
            .1
            .status)
    }

    async fn list_jobs(&self, tenant: Option<&str>) -> Result<Vec<JobStatus>> {
        let client = self.client().await?;
        let target = Target {
            kind: "job",
            name: tenant.unwrap_or("*"),
        };
        fn api<K>(client: &kube::Client, tenant: Option<&str>) -> Api<K>
        where
            K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
            K::DynamicType: Default,
        {
            match tenant {
                Some(namespace) => Api::namespaced(client.clone(), namespace),
                None => Api::all(client.clone()),
            }
        }
        let moon_jobs =
            ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER},{JOB_LABEL}"));
        let (anchors, jobs, pods, warnings) = futures::try_join!(
            async {
                api::<core::ConfigMap>(&client, tenant)
                    .list(&moon_jobs)
                    .await
                    .map_err(|error| api_error(error, target))
            },
            async {
                api::<batch::Job>(&client, tenant)
                    .list(&moon_jobs)
                    .await
                    .map_err(|error| api_error(error, target))
            },
            async {
                api::<core::Pod>(&client, tenant)
                    .list(&ListParams::default().labels(JOB_LABEL))
                    .await
                    .map_err(|error| api_error(error, target))
            },
            async {
                api::<core::Event>(&client, tenant)
                    .list(&ListParams::default().fields(WARNINGS_FIELDS))
                    .await
                    .map_err(|error| api_error(error, target))
            },
        )?;

        type Key = (String, String);
        fn key_of<K: kube::Resource>(object: &K) -> Option<Key> {
            Some((
                object.meta().namespace.clone()?,
                job_of(object)?.to_string(),
            ))
        }
        let mut by_job: BTreeMap<Key, Observed> = BTreeMap::new();
        for anchor in anchors.items {
            if let Some(key) = key_of(&anchor)
                && is_anchor(&anchor, &key.1)
            {
                by_job.entry(key).or_default().anchor = anchor;
            }
        }
        // A replica's Job name to its job, for the warnings about it.
        let mut owner_of: BTreeMap<(String, String), Key> = BTreeMap::new();
        for replica in jobs.items {
            if let Some(key) = key_of(&replica)
                && let Some(observed) = by_job.get_mut(&key)
            {
                let name = replica.metadata.name.clone().unwrap_or_default();
                owner_of.insert((key.0.clone(), name), key);
                observed.jobs.push(replica);
            }
        }
        for pod in pods.items {
            if let Some(observed) = key_of(&pod).and_then(|key| by_job.get_mut(&key)) {
                observed.pods.push(pod);
            }
        }
        for warning in warnings.items {
            let object = &warning.involved_object;
            let replica = (
                object.namespace.clone().unwrap_or_default(),
                object.name.clone().unwrap_or_default(),
            );
            if let Some(observed) = owner_of.get(&replica).and_then(|key| by_job.get_mut(key)) {
                observed.warnings.push(warning);
            }
        }

        let mut recorder = Recorder::reading();
        let mut statuses = Vec::with_capacity(by_job.len());
        for observed in by_job.values() {
            let derived = status::derive(observed)?;
            recorder.record(&client, observed, &derived).await?;
            statuses.push(derived.status);
        }
        // Oldest first by the time each reports, which is to the
        // millisecond (see `status::derive`).
        statuses.sort_by(|a, b| {
            (a.created_ms, &a.tenant, &a.name).cmp(&(b.created_ms, &b.tenant, &b.name))
        });
        Ok(statuses)
    }

    async fn cancel(&self, tenant: &str, name: &str) -> Result<JobStatus> {
        let client = self.client().await?;
        let (observed, derived) = settle(&client, tenant, name, Recorder::writing()).await?;
        match derived.status.phase {
            Phase::Succeeded | Phase::Failed => {
                return Err(Error::Conflict(format!(
                    "job {tenant}/{name} already ended {}",
                    derived.status.phase
                )));
            }
            Phase::Cancelled => return Ok(derived.status),
            Phase::Pending | Phase::Running => {}
        }
        let conclusion = Conclusion {
            phase: Phase::Cancelled,
            reason: "Cancelled".to_string(),
            message: "cancelled by a user".to_string(),
            finished_ms: now_ms(),
        };
        let key = format!("{tenant}/{name}");
        write_conclusion(&client, &observed.anchor, &conclusion)
            .await
            .map_err(|error| {
                api_error(
                    error,
                    Target {
                        kind: "job",
                        name: &key,
                    },
                )
            })?;
        // Read again: the recorded phase makes every running replica one to stop.
        Ok(settle(&client, tenant, name, Recorder::writing())
            .await?
            .1
            .status)
    }

    async fn events(&self, tenant: &str, name: &str, after: Option<u64>) -> Result<Vec<Event>> {
        let client = self.client().await?;
        let (_, derived) = settle(&client, tenant, name, Recorder::reading()).await?;
        let after = after.unwrap_or(0);
        Ok(derived
            .events
            .into_iter()
            .filter(|event| event.seq > after)
            .collect())
    }

    async fn watch(&self, tenant: &str, name: &str, after: Option<u64>) -> Result<Stream<Event>> {
        let client = self.client().await?;
        // Read once first, so that a missing job or a refusal is this call's error.
        settle(&client, tenant, name, Recorder::reading()).await?;
        Ok(super::watch::events(
            client,
            self.informers.clone(),
            tenant,
            name,
            after,
        ))
    }

    async fn wait(&self, tenant: &str, name: &str, timeout: Option<Duration>) -> Result<JobStatus> {
        let client = self.client().await?;
        // No read of its own: the namespace's informer lists once for every
        // wait, and a missing job or a refusal is its first answer.
        let watching = super::watch::until_ended(&client, &self.informers, tenant, name);
        waiting_at_most(timeout, tenant, name, watching).await
    }

    async fn delete_job(&self, tenant: &str, name: &str, force: bool) -> Result<()> {
        end_before_delete(self, tenant, name, force).await?;
        let client = self.client().await?;
        let key = format!("{tenant}/{name}");
        let target = Target {
            kind: "job",
            name: &key,
        };
        let anchors = Api::<core::ConfigMap>::namespaced(client.clone(), tenant);
        let anchor = anchors
            .get(name)
            .await
            .map_err(|error| api_error(error, target))?;
        if !is_anchor(&anchor, name) {
            return Err(Error::NotFound {
                kind: "job",
                name: key,
            });
        }
        let uid = anchor.metadata.uid.clone().unwrap_or_default();
        // Foreground: the anchor goes last, after the replicas' Jobs (and
        // their pods) and the Services it owns, so that once it is gone a new
        // job of the same name finds none of the old one's objects.
        delete_and_wait(anchors, name, &uid, &DeleteParams::foreground(), target).await
    }

    async fn delete_tenant(&self, name: &str, force: bool) -> Result<()> {
        let client = self.client().await?;
        let target = Target {
            kind: "tenant",
            name,
        };
        let namespaces = Api::<core::Namespace>::all(client.clone());
        let namespace = namespaces
            .get(name)
            .await
            .map_err(|error| api_error(error, target))?;
        if tenant_of(&namespace).is_none() {
            return Err(Error::NotFound {
                kind: "tenant",
                name: name.to_string(),
            });
        }
        end_tenant_jobs_before_delete(self, name, force).await?;
        let uid = namespace.metadata.uid.clone().unwrap_or_default();
        // The namespace controller deletes everything in it, jobs included.
        let deleted =
            delete_and_wait(namespaces, name, &uid, &DeleteParams::background(), target).await;
        // Volumes are cluster-wide, so the namespace's end leaves the tenant's
        // behind; their data stays on the storage servers (`Retain`).
        let deleted = match deleted {
            Ok(()) => Api::<core::PersistentVolume>::all(client.clone())
                .delete_collection(
                    &DeleteParams::background(),
                    &ListParams::default().labels(&format!("{TENANT_LABEL}={name}")),
                )
                .await
                .map(drop)
                .map_err(|error| api_error(error, target)),
            Err(error) => Err(error),
        };
        self.tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        deleted
    }

    async fn logs(&self, tenant: &str, name: &str, options: LogOptions) -> Result<Stream<LogLine>> {
        let client = self.client().await?;
        let (observed, derived) = settle(&client, tenant, name, Recorder::reading()).await?;
        if let Some(wanted) = &options.replica
            && !derived.status.replicas.iter().any(|r| &r.name() == wanted)
        {
            return Err(Error::NotFound {
                kind: "replica",
                name: format!("{tenant}/{name}/{wanted}"),
            });
        }
        Ok(super::watch::logs(
            client,
            self.informers.clone(),
            observed,
            derived,
            options,
        ))
    }

    async fn apply_service(&self, service: &Service) -> Result<ApplyOutcome> {
        let client = self.client().await?;
        services::apply(&client, &self.render_options(), service).await
    }

    async fn get_service(&self, tenant: &str, name: &str) -> Result<ServiceStatus> {
        services::get(&self.client().await?, tenant, name).await
    }

    async fn list_services(&self, tenant: Option<&str>) -> Result<Vec<ServiceStatus>> {
        services::list(&self.client().await?, tenant).await
    }

    async fn scale_service(
        &self,
        tenant: &str,
        name: &str,
        replicas: u32,
    ) -> Result<ServiceStatus> {
        let client = self.client().await?;
        services::scale(&client, tenant, name, replicas).await?;
        services::get(&client, tenant, name).await
    }

    async fn delete_service(&self, tenant: &str, name: &str) -> Result<()> {
        services::delete(&self.client().await?, tenant, name).await
    }

    async fn apply_secret(
        &self,
        tenant: &str,
        name: &str,
        data: &SecretData,
    ) -> Result<ApplyOutcome> {
        validate_secret(name, data)?;
        let client = self.client().await?;
        self.tenant_spec(&client, tenant).await?;
        super::secret::apply(&client, tenant, name, data).await
    }

    async fn list_secrets(&self, tenant: &str) -> Result<Vec<SecretInfo>> {
        let client = self.client().await?;
        self.tenant_spec(&client, tenant).await?;
        super::secret::list(&client, tenant).await
    }

    async fn delete_secret(&self, tenant: &str, name: &str) -> Result<()> {
        validate_secret_name(name)?;
        let client = self.client().await?;
        self.tenant_spec(&client, tenant).await?;
        super::secret::delete(&client, tenant, name).await
    }
}
