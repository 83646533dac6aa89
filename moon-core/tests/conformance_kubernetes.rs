//! The conformance suite (`conformance/mod.rs`) against the Kubernetes
//! backend, on the test cluster of `scripts/k8s/up.sh` (its `env.sh` sets
//! `MOON_TEST_KUBECONFIG_ADMIN`): `scripts/test.sh --only kubernetes` runs
//! it. Without that cluster every test fails, saying how to start one.
//!
//! Each test has a tenant of its own, so that they run in parallel; a
//! tenant left by an earlier run on the same cluster is deleted first.

mod conformance;

use std::path::PathBuf;

use moon_core::Error;
use moon_core::backend::Backend;
use moon_core::kubernetes::{KubernetesBackend, KubernetesConfig, parse_tolerations};

use conformance::Profile;

/// The taint every fake node of the test cluster carries.
const KWOK_TAINT: &str = "kwok.x-k8s.io/node:NoSchedule";

/// The test cluster as its administrator; never `KUBECONFIG`, which may
/// name a real cluster.
fn test_cluster() -> KubernetesBackend {
    let kubeconfig = std::env::var_os("MOON_TEST_KUBECONFIG_ADMIN")
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "MOON_TEST_KUBECONFIG_ADMIN is not set: start the test cluster \
                 (scripts/k8s/up.sh --dir DIR, then `source DIR/env.sh`) or run \
                 ./scripts/test.sh --only kubernetes"
            )
        });
    KubernetesBackend::new(KubernetesConfig {
        kubeconfig: Some(PathBuf::from(kubeconfig)),
        tolerations: parse_tolerations(KWOK_TAINT).expect("the KWOK taint"),
        ..KubernetesConfig::default()
    })
}

/// Makes sure `tenant` does not exist, whatever an earlier run left.
async fn without(backend: &dyn Backend, tenant: &str) {
    match backend.delete_tenant(tenant, true).await {
        Ok(()) | Err(Error::NotFound { .. }) => {}
        Err(error) => panic!("deleting what an earlier run left of tenant {tenant}: {error}"),
    }
}

/// One test per case, `test_name: case in "tenant",`, and the list of the
/// cases they run.
macro_rules! cases {
    ($($test:ident: $case:ident in $tenant:literal,)*) => {
        /// The tests that need the cluster, apart: the rust tier of
        /// scripts/test.sh skips this module by its name.
        mod on_the_test_cluster {
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    let backend = test_cluster();
                    without(&backend, $tenant).await;
                    conformance::$case(&backend, &Profile::KUBERNETES, $tenant).await;
                }
            )*
        }

        const CASES: &[&str] = &[$(stringify!($case)),*];
    };
}

cases! {
    kubernetes_tenant_apply_is_idempotent: tenant_apply_is_idempotent in "conf-tenant",
    kubernetes_an_unknown_tenant_is_not_found: an_unknown_tenant_is_not_found in "conf-absent",
    kubernetes_a_tenant_is_deleted_with_its_jobs_only_by_force: a_tenant_is_deleted_with_its_jobs_only_by_force in "conf-tenant-gone",
    kubernetes_apply_submits_a_job: apply_submits_a_job in "conf-apply",
    kubernetes_jobs_are_listed_oldest_first: jobs_are_listed_oldest_first in "conf-listed",
    kubernetes_a_job_that_succeeds_ends_succeeded: a_job_that_succeeds_ends_succeeded in "conf-succeeds",
    kubernetes_events_come_in_order: events_come_in_order in "conf-events",
    kubernetes_a_failing_job_ends_failed: a_failing_job_ends_failed in "conf-fails",
    kubernetes_wait_with_a_short_timeout_times_out: wait_with_a_short_timeout_times_out in "conf-timeout",
    kubernetes_an_invalid_job_is_refused: an_invalid_job_is_refused in "conf-invalid",
    kubernetes_an_unknown_job_is_not_found: an_unknown_job_is_not_found in "conf-unknown",
    kubernetes_a_duplicate_submit_is_already_exists: a_duplicate_submit_is_already_exists in "conf-duplicate",
    kubernetes_cancel_ends_a_job_cancelled: cancel_ends_a_job_cancelled in "conf-cancel",
    kubernetes_cancel_after_the_end_is_conflict: cancel_after_the_end_is_conflict in "conf-cancel-late",
    kubernetes_delete_of_an_unfinished_job_needs_force: delete_of_an_unfinished_job_needs_force in "conf-delete-force",
    kubernetes_a_finished_job_is_deleted: a_finished_job_is_deleted in "conf-delete",
    kubernetes_a_full_jobs_quota_holds_the_next_job: a_full_jobs_quota_holds_the_next_job in "conf-quota",
    kubernetes_secrets_are_applied_listed_and_deleted: secrets_are_applied_listed_and_deleted in "conf-secrets",
    kubernetes_deleting_a_missing_secret_is_not_found: deleting_a_missing_secret_is_not_found in "conf-no-secret",
    kubernetes_logs_follow_a_job_to_its_end: logs_follow_a_job_to_its_end in "conf-logs",
    kubernetes_logs_of_one_replica: logs_of_one_replica in "conf-replica-logs",
    kubernetes_a_service_is_served_scaled_and_deleted: a_service_is_served_scaled_and_deleted in "conf-service",
    kubernetes_an_unknown_service_is_not_found: an_unknown_service_is_not_found in "conf-no-service",
}

/// A client of the test cluster as its administrator, for reading back
/// what a backend applied.
async fn admin() -> kube::Client {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let path = std::env::var("MOON_TEST_KUBECONFIG_ADMIN").expect("test_cluster() checked it");
    let file = Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[test]
fn every_case_runs_on_the_cluster() {
    assert_eq!(CASES, conformance::cases());
}

/// A tenant with every storage system becomes volumes, claims and a Fluid
/// Dataset the API server (with Fluid's CRDs) accepts, as rendered; applying
/// it again changes nothing; deleting the tenant removes its volumes too.
mod storage_on_the_test_cluster {
    use super::*;

    use k8s_openapi::api::core::v1 as core;
    use kube::api::{Api, DynamicObject};
    use kube::core::ApiResource;
    use moon_core::Client;
    use moon_core::backend::ApplyOutcome;
    use moon_core::kubernetes::StorageEndpoints;
    use moon_core::spec::{job_from_yaml, tenant_from_yaml};
    use moon_core::storage::StorageServers;
    use serde_json::Value;

    const TENANT: &str = "conf-storage";

    fn fluid(client: &kube::Client, kind: &str, plural: &str) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: "data.fluid.io".into(),
            version: "v1alpha1".into(),
            api_version: "data.fluid.io/v1alpha1".into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        Api::namespaced_with(client.clone(), TENANT, &resource)
    }

    #[tokio::test]
    async fn kubernetes_tenant_storage_is_applied_once() {
        let mut config = test_cluster().config().clone();
        config.storage = StorageEndpoints {
            hdfs_namenode: Some("namenode.storage:8020".into()),
            gluster_servers: Some("gluster-0.storage".into()),
        };
        let backend = KubernetesBackend::new(config);
        without(&backend, TENANT).await;
        let tenant = tenant_from_yaml(&format!(
            r#"
name: {TENANT}
storage:
  seaweedfs: {{replication: "001"}}
  hdfs:
    kerberos: {{principal: {TENANT}@EXAMPLE.COM, keytabSecret: {TENANT}-keytab}}
    cache: {{memory: 2Gi, disk: 50Gi}}
  gluster: {{size: 10Gi}}
"#
        ))
        .unwrap();
        assert_eq!(
            backend.apply_tenant(&tenant).await.unwrap(),
            ApplyOutcome::Created
        );

        let client = admin().await;
        let volumes = Api::<core::PersistentVolume>::all(client.clone());
        let seaweedfs = volumes
            .get(&format!("moon-{TENANT}-seaweedfs"))
            .await
            .unwrap();
        let spec = seaweedfs.spec.unwrap();
        let csi = spec.csi.unwrap();
        assert_eq!(csi.driver, "seaweedfs-csi-driver");
        let attributes = csi.volume_attributes.unwrap();
        assert_eq!(attributes["collection"], format!("moon-{TENANT}"));
        assert_eq!(attributes["path"], format!("/tenants/{TENANT}"));
        assert_eq!(attributes["replication"], "001");
        let claim_ref = spec.claim_ref.unwrap();
        assert_eq!(claim_ref.namespace.as_deref(), Some(TENANT));
        assert_eq!(claim_ref.name.as_deref(), Some("moon-seaweedfs"));

        let gluster = volumes
            .get(&format!("moon-{TENANT}-gluster"))
            .await
            .unwrap()
            .spec
            .unwrap();
        assert_eq!(gluster.capacity.unwrap()["storage"].0, "10Gi");
        let attributes = gluster.csi.unwrap().volume_attributes.unwrap();
        assert_eq!(attributes["gluster_hosts"], "gluster-0.storage");
        assert_eq!(attributes["gluster_volname"], format!("moon-{TENANT}"));

        let claims = Api::<core::PersistentVolumeClaim>::namespaced(client.clone(), TENANT);
        for (claim, system) in [("moon-seaweedfs", "seaweedfs"), ("moon-gluster", "gluster")] {
            let spec = claims.get(claim).await.unwrap().spec.unwrap();
            assert_eq!(
                spec.volume_name,
                Some(format!("moon-{TENANT}-{system}")),
                "{claim}"
            );
        }

        let dataset = fluid(&client, "Dataset", "datasets")
            .get("moon-hdfs")
            .await
            .unwrap();
        let mount = &dataset.data["spec"]["mounts"][0];
        assert_eq!(
            mount["mountPoint"],
            format!("hdfs://namenode.storage:8020/tenants/{TENANT}")
        );
        assert_eq!(
            mount["options"]["alluxio.security.underfs.hdfs.kerberos.client.principal"],
            format!("{TENANT}@EXAMPLE.COM")
        );
        let runtime = fluid(&client, "AlluxioRuntime", "alluxioruntimes")
            .get("moon-hdfs")
            .await
            .unwrap();
        let levels = &runtime.data["spec"]["tieredstore"]["levels"];
        assert_eq!(levels[0]["mediumtype"], "MEM");
        assert_eq!(levels[0]["quota"], "2Gi");
        assert_eq!(levels[1]["quota"], "50Gi");
        assert_eq!(
            runtime.data["spec"]["volumes"][0]["secret"]["secretName"],
            Value::from(format!("{TENANT}-keytab"))
        );

        // The cluster's volume controller binds each claim to the volume
        // named for it (which changes both); once it has, applying again
        // must change nothing.
        let bound = |phase: Option<String>| phase.as_deref() == Some("Bound");
        let mut waited = 0;
        loop {
            let mut all_bound = true;
            for claim in ["moon-seaweedfs", "moon-gluster"] {
                let claim = claims.get(claim).await.unwrap();
                all_bound &= bound(claim.status.and_then(|status| status.phase));
            }
            for system in ["seaweedfs", "gluster"] {
                let volume = volumes
                    .get(&format!("moon-{TENANT}-{system}"))
                    .await
                    .unwrap();
                all_bound &= bound(volume.status.and_then(|status| status.phase));
            }
            if all_bound {
                break;
            }
            waited += 1;
            assert!(
                waited < 120,
                "the claims were not bound to their volumes in 60 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        assert_eq!(
            backend.apply_tenant(&tenant).await.unwrap(),
            ApplyOutcome::Unchanged
        );

        backend.delete_tenant(TENANT, true).await.unwrap();
        let left = volumes
            .list(&kube::api::ListParams::default().labels(&format!("moon.dev/tenant={TENANT}")))
            .await
            .unwrap();
        // A volume still bound ends once its claim has gone; none is left alive.
        assert!(
            left.items
                .iter()
                .all(|volume| volume.metadata.deletion_timestamp.is_some()),
            "{:?}",
            left.items
                .iter()
                .map(|volume| volume.metadata.name.clone())
                .collect::<Vec<_>>()
        );
    }
    const JOB_TENANT: &str = "conf-volumes";

    /// A job with a volume on each system, submitted through the client (which resolves
    /// them): the API server accepts its replicas' Jobs, and the Job controller makes pods
    /// that mount the tenant's claims at the volumes' directories.
    #[tokio::test]
    async fn kubernetes_job_volumes_become_pods_the_cluster_accepts() {
        let mut config = test_cluster().config().clone();
        config.storage = StorageEndpoints {
            hdfs_namenode: Some("namenode.storage:8020".into()),
            gluster_servers: Some("gluster-0.storage".into()),
        };
        let backend = KubernetesBackend::new(config);
        without(&backend, JOB_TENANT).await;
        let tenant = tenant_from_yaml(&format!(
            "name: {JOB_TENANT}\nstorage:\n  seaweedfs: {{}}\n  hdfs: {{cache: {{memory: 1Gi}}}}\n  \
             gluster: {{size: 1Gi}}\n"
        ))
        .unwrap();
        backend.apply_tenant(&tenant).await.unwrap();
        let servers = StorageServers::default()
            .with_seaweedfs("seaweedfs://filer.storage:8888")
            .unwrap()
            .with_hdfs("hdfs://namenode.storage:8020", Default::default())
            .unwrap()
            .with_gluster("gluster://gluster-0.storage", Default::default())
            .unwrap();
        let client = Client::from_backend(std::sync::Arc::new(backend)).with_storage(servers);
        let job = job_from_yaml(&format!(
            r#"
name: train
tenant: {JOB_TENANT}
framework: custom
roles: [{{name: main, command: [python3, train.py], cpus: 100m, memory: 64Mi}}]
volumes:
  - {{name: train-data, store: seaweedfs, path: datasets/mnist, mountPath: /data, readOnly: true}}
  - {{name: shared, url: "gluster://gluster-0.storage/moon-{JOB_TENANT}/shared", mountPath: /shared}}
  - {{name: features, store: hdfs, path: features, mountPath: /features, readOnly: true, cached: true}}
  - {{name: raw, store: hdfs, path: raw, mountPath: /raw}}
"#
        ))
        .unwrap();
        client.submit(&job).await.unwrap();

        let pods = Api::<core::Pod>::namespaced(admin().await, JOB_TENANT);
        let mut waited = 0;
        let pod = loop {
            let listed = pods
                .list(&kube::api::ListParams::default().labels("moon.dev/job=train"))
                .await
                .unwrap();
            if let Some(pod) = listed.items.into_iter().next() {
                break pod;
            }
            waited += 1;
            assert!(waited < 120, "the Job controller made no pod in 60 s");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        let spec = pod.spec.unwrap();
        let claims: Vec<(String, String, Option<bool>)> = spec
            .volumes
            .unwrap()
            .into_iter()
            .filter_map(|volume| {
                let claim = volume.persistent_volume_claim?;
                Some((volume.name, claim.claim_name, claim.read_only))
            })
            .collect();
        assert_eq!(
            claims,
            [
                (
                    "volume-train-data".into(),
                    "moon-seaweedfs".into(),
                    Some(true)
                ),
                ("volume-shared".into(), "moon-gluster".into(), None),
                ("volume-features".into(), "moon-hdfs".into(), Some(true)),
            ]
        );
        let container = &spec.containers[0];
        let mounts: Vec<(String, Option<String>)> = container
            .volume_mounts
            .clone()
            .unwrap()
            .into_iter()
            .filter(|mount| mount.name.starts_with("volume-"))
            .map(|mount| (mount.mount_path, mount.sub_path))
            .collect();
        assert_eq!(
            mounts,
            [
                ("/data".into(), Some("datasets/mnist".into())),
                ("/shared".into(), Some("shared".into())),
                ("/features".into(), Some("hdfs/features".into())),
            ]
        );
        let env: std::collections::BTreeMap<String, String> = container
            .env
            .clone()
            .unwrap()
            .into_iter()
            .filter(|var| var.name.starts_with("MOON_VOLUME_"))
            .map(|var| (var.name, var.value.unwrap_or_default()))
            .collect();
        assert_eq!(
            env["MOON_VOLUME_RAW"],
            format!("hdfs://namenode.storage:8020/tenants/{JOB_TENANT}/raw")
        );
        assert!(!env.contains_key("MOON_VOLUME_RAW_PATH"), "{env:?}");
        assert_eq!(env["MOON_VOLUME_TRAIN_DATA_PATH"], "/data");
        assert_eq!(
            env["MOON_VOLUME_SHARED"],
            format!("gluster://gluster-0.storage:24007/moon-{JOB_TENANT}/shared")
        );
        client.delete_tenant(JOB_TENANT, true).await.unwrap();
    }
}

/// Client-side balancing over a service's EndpointSlices: a balancer fed by
/// the registry holds the service's ready pods, at the addresses the
/// cluster gives them, and follows the service as it scales and goes.
mod registry_on_the_test_cluster {
    use super::*;

    use std::time::{Duration, Instant};

    use moon_core::spec::{Tenant, service_from_yaml};
    use moon_net::{Balancer, BalancerConfig, Registry, ReplicaState};

    const TENANT: &str = "conf-registry";

    /// The balancer's ready replicas' addresses, once they are `count`.
    async fn ready_in(balancer: &Balancer, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut ready: Vec<String> = balancer
                .status()
                .iter()
                .filter(|replica| replica.state == ReplicaState::Ready)
                .map(|replica| replica.addr.to_string())
                .collect();
            ready.sort();
            if ready.len() == count {
                return ready;
            }
            assert!(
                Instant::now() < deadline,
                "the balancer has {ready:?}, not {count} ready replicas"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    #[tokio::test]
    async fn kubernetes_endpoint_slices_feed_a_balancer_as_the_service_scales() {
        let backend = test_cluster();
        without(&backend, TENANT).await;
        backend
            .apply_tenant(&Tenant {
                name: TENANT.into(),
                ..Tenant::default()
            })
            .await
            .unwrap();
        let spec = service_from_yaml(&format!(
            "kind: Service\nname: web\ntenant: {TENANT}\ncommand: [python3, -m, http.server]\n\
             replicas: 2\ncpus: 100m\nmemory: 64Mi\n"
        ))
        .unwrap();
        backend.apply_service(&spec).await.unwrap();

        let balancer = Balancer::new("web", BalancerConfig::default());
        let registry = backend.registry().await.unwrap();
        balancer.follow(registry.watch(&format!("{TENANT}/web")).unwrap());
        let seen = ready_in(&balancer, 2).await;
        let status = backend.get_service(TENANT, "web").await.unwrap();
        let mut listed: Vec<String> = status
            .replicas
            .iter()
            .filter(|replica| replica.ready)
            .filter_map(|replica| replica.address.clone())
            .collect();
        listed.sort();
        assert_eq!(seen, listed, "the balancer and the status agree");

        backend.scale_service(TENANT, "web", 3).await.unwrap();
        ready_in(&balancer, 3).await;
        backend.delete_service(TENANT, "web").await.unwrap();
        ready_in(&balancer, 0).await;
        assert!(
            registry.watch("web").is_err(),
            "a service is named with its tenant"
        );
        without(&backend, TENANT).await;
    }
}

/// A tenant's network as the API server (with Calico's and Multus' CRDs)
/// takes it: the Calico isolation's tier, guard rails and isolation policy,
/// and the underlays' attachments, with every field the rendering wrote
/// kept (a CRD's schema prunes fields it does not know); applying it again
/// changes nothing.
mod network_on_the_test_cluster {
    use super::*;

    use kube::api::{Api, DynamicObject};
    use kube::core::ApiResource;
    use moon_core::backend::ApplyOutcome;
    use moon_core::kubernetes::{CALICO_ISOLATION_POLICY, CALICO_TIER, GUARD_RAILS_POLICY, Object};
    use moon_core::spec::tenant_from_yaml;
    use serde_json::Value;

    const TENANT: &str = "conf-network";

    /// Every key `rendered` has, `stored` has with the same value (the
    /// server may add defaults of its own).
    fn kept(rendered: &Value, stored: &Value, at: &str) {
        match (rendered, stored) {
            (Value::Object(r), Value::Object(s)) => {
                for (key, value) in r {
                    let inner = s.get(key).unwrap_or_else(|| {
                        panic!("{at}.{key} was dropped by the server: {stored}")
                    });
                    kept(value, inner, &format!("{at}.{key}"));
                }
            }
            (Value::Array(r), Value::Array(s)) => {
                assert_eq!(r.len(), s.len(), "{at}: {stored}");
                for (i, (r, s)) in r.iter().zip(s).enumerate() {
                    kept(r, s, &format!("{at}[{i}]"));
                }
            }
            (Value::Number(r), Value::Number(s)) => {
                assert_eq!(r.as_f64(), s.as_f64(), "{at}");
            }
            _ => assert_eq!(rendered, stored, "{at}"),
        }
    }

    #[tokio::test]
    async fn kubernetes_a_calico_tenant_with_underlays_is_accepted_as_rendered() {
        let backend = test_cluster();
        without(&backend, TENANT).await;
        let tenant = tenant_from_yaml(&format!(
            r#"
name: {TENANT}
network:
  isolation: calico
  egress:
  - cidr: 10.20.0.0/16
    except: [10.20.99.0/24]
    ports: [5432, "8000:8080"]
  expose:
  - service: predict
    ports: [8080]
    tenants: [web]
    ingress: true
  underlays:
  - name: storage-vlan
    kind: vlan
    master: eth1
    vlan: 120
    subnet: 192.168.120.0/24
  - name: fast
    kind: macvlan
    master: ens5
    mode: bridge
"#
        ))
        .unwrap();
        assert_eq!(
            backend.apply_tenant(&tenant).await.unwrap(),
            ApplyOutcome::Created
        );
        let client = admin().await;
        let rendered = moon_core::kubernetes::render_tenant(&tenant).unwrap();
        let mut checked = Vec::new();
        for object in &rendered {
            if !matches!(
                object,
                Object::CalicoTier(_)
                    | Object::CalicoGlobalNetworkPolicy(_)
                    | Object::CalicoNetworkPolicy(_)
                    | Object::NetworkAttachmentDefinition(_)
            ) {
                continue;
            }
            let resource = ApiResource {
                group: object.group().into(),
                version: object.version().into(),
                api_version: object.api_version().into(),
                kind: object.kind().into(),
                plural: object.plural().into(),
            };
            let api: Api<DynamicObject> = match object.namespace() {
                Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
                None => Api::all_with(client.clone(), &resource),
            };
            let stored = api
                .get(object.name())
                .await
                .unwrap_or_else(|e| panic!("{} {}: {e}", object.kind(), object.name()));
            let rendered_spec = serde_json::to_value(object).unwrap()["spec"].clone();
            kept(
                &rendered_spec,
                &stored.data["spec"],
                &format!("{} {}", object.kind(), object.name()),
            );
            checked.push(format!("{} {}", object.kind(), object.name()));
        }
        assert_eq!(
            checked,
            [
                format!("Tier {CALICO_TIER}"),
                format!("GlobalNetworkPolicy {GUARD_RAILS_POLICY}"),
                format!("NetworkPolicy {CALICO_ISOLATION_POLICY}"),
                "NetworkAttachmentDefinition storage-vlan".to_owned(),
                "NetworkAttachmentDefinition fast".to_owned(),
            ]
        );
        // No Kubernetes NetworkPolicy: Calico isolates this tenant.
        let policies = Api::<k8s_openapi::api::networking::v1::NetworkPolicy>::namespaced(
            client.clone(),
            TENANT,
        );
        assert!(
            policies
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert_eq!(
            backend.apply_tenant(&tenant).await.unwrap(),
            ApplyOutcome::Unchanged
        );

        // Kubernetes isolation, one underlay dropped: Calico's isolation
        // policy and the dropped attachment go, NetworkPolicies come.
        let names = |kind: &str, resource: ApiResource| {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), TENANT, &resource);
            let kind = kind.to_owned();
            async move {
                let mut names: Vec<String> = api
                    .list(&Default::default())
                    .await
                    .unwrap_or_else(|e| panic!("{kind}: {e}"))
                    .items
                    .into_iter()
                    .map(|o| o.metadata.name.unwrap_or_default())
                    .collect();
                names.sort();
                names
            }
        };
        let calico = || ApiResource {
            group: "projectcalico.org".into(),
            version: "v3".into(),
            api_version: "projectcalico.org/v3".into(),
            kind: "NetworkPolicy".into(),
            plural: "networkpolicies".into(),
        };
        let attachments = || ApiResource {
            group: "k8s.cni.cncf.io".into(),
            version: "v1".into(),
            api_version: "k8s.cni.cncf.io/v1".into(),
            kind: "NetworkAttachmentDefinition".into(),
            plural: "network-attachment-definitions".into(),
        };
        let kubernetes =
            || ApiResource::erase::<k8s_openapi::api::networking::v1::NetworkPolicy>(&());
        let mut changed = tenant.clone();
        changed.network.isolation = moon_core::spec::Isolation::Kubernetes;
        changed.network.underlays.truncate(1);
        assert_eq!(
            backend.apply_tenant(&changed).await.unwrap(),
            ApplyOutcome::Updated
        );
        assert_eq!(names("Calico", calico()).await, Vec::<String>::new());
        assert_eq!(names("Multus", attachments()).await, ["storage-vlan"]);
        assert_eq!(
            names("NetworkPolicy", kubernetes()).await,
            [
                "moon-allow-egress-dns",
                "moon-allow-egress-listed",
                "moon-allow-egress-same-namespace",
                "moon-default-deny-ingress-from-other-namespaces",
                "moon-expose-predict",
            ]
        );
        // The exposure dropped: its policy must not keep the service open.
        changed.network.expose.clear();
        assert_eq!(
            backend.apply_tenant(&changed).await.unwrap(),
            ApplyOutcome::Updated
        );
        assert!(
            !names("NetworkPolicy", kubernetes())
                .await
                .contains(&"moon-expose-predict".to_owned())
        );
        without(&backend, TENANT).await;
    }
}
