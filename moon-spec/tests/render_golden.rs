//! Golden files of what tenants and jobs become on Kubernetes: the YAML that
//! `moon render` prints, checked in under `tests/golden/` so that a change to
//! rendering shows up as a reviewable diff. `MOON_UPDATE_GOLDEN=1 cargo test
//! --test render_golden` rewrites them.

use std::path::PathBuf;

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::autoscaling::v2 as autoscaling;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::api::rbac::v1 as rbac;
use moon_spec::kubernetes::fluid::{AlluxioRuntime, Dataset};
use moon_spec::kubernetes::keda::ScaledObject;
use moon_spec::kubernetes::network_kinds;
use moon_spec::kubernetes::{
    Object, RenderOptions, StorageEndpoints, render_job, render_service, render_tenant,
    render_tenant_storage, to_yaml,
};
use moon_spec::spec::{StorageSystem, job_from_yaml, service_from_yaml, tenant_from_yaml};
use moon_spec::volumes::ResolvedVolume;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Renders the job spec `yaml` and compares it with the golden file `name`.
fn golden_job(name: &str, yaml: &str, options: &RenderOptions) {
    let job = job_from_yaml(yaml).unwrap();
    golden(name, &render_job(&job, options).unwrap());
}

fn golden(name: &str, objects: &[Object]) {
    let rendered = to_yaml(objects);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.yaml"));
    if std::env::var_os("MOON_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &rendered).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; MOON_UPDATE_GOLDEN=1 writes it",
            path.display()
        )
    });
    if rendered != expected {
        let line = rendered
            .lines()
            .zip(expected.lines())
            .position(|(got, want)| got != want)
            .unwrap_or_else(|| rendered.lines().count().min(expected.lines().count()));
        panic!(
            "{} differs from the rendering at line {}; review and rerun with MOON_UPDATE_GOLDEN=1\n--- rendered:\n{rendered}",
            path.display(),
            line + 1,
        );
    }
    assert_documents_read_back(&rendered, objects);
}

/// Every document reads back, as the type its `kind` names, into the object
/// it was written from: the YAML says nothing the types do not.
fn assert_documents_read_back(stream: &str, objects: &[Object]) {
    let documents: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(stream)
        .map(serde_yaml_ng::Value::deserialize)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(documents.len(), objects.len());
    for (document, object) in documents.into_iter().zip(objects) {
        let keys: Vec<_> = document
            .as_mapping()
            .unwrap()
            .keys()
            .take(2)
            .map(|key| key.as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys, ["apiVersion", "kind"]);
        assert_eq!(document["apiVersion"].as_str(), Some(object.api_version()));
        fn read<T: DeserializeOwned + Into<Object>>(document: serde_yaml_ng::Value) -> Object {
            serde_yaml_ng::from_value::<T>(document).unwrap().into()
        }
        let api_version = document["apiVersion"].as_str().unwrap().to_owned();
        let read = match document["kind"].as_str().unwrap() {
            "NetworkPolicy" if api_version == "projectcalico.org/v3" => {
                read::<network_kinds::NetworkPolicy>(document)
            }
            "Tier" => read::<network_kinds::Tier>(document),
            "GlobalNetworkPolicy" => read::<network_kinds::GlobalNetworkPolicy>(document),
            "NetworkAttachmentDefinition" => {
                read::<network_kinds::NetworkAttachmentDefinition>(document)
            }
            "Namespace" => read::<core::Namespace>(document),
            "ResourceQuota" => read::<core::ResourceQuota>(document),
            "LimitRange" => read::<core::LimitRange>(document),
            "ServiceAccount" => read::<core::ServiceAccount>(document),
            "Role" => read::<rbac::Role>(document),
            "RoleBinding" => read::<rbac::RoleBinding>(document),
            "NetworkPolicy" => read::<networking::NetworkPolicy>(document),
            "ConfigMap" => read::<core::ConfigMap>(document),
            "Service" => read::<core::Service>(document),
            "Job" => read::<batch::Job>(document),
            "PersistentVolume" => read::<core::PersistentVolume>(document),
            "PersistentVolumeClaim" => read::<core::PersistentVolumeClaim>(document),
            "Dataset" => read::<Dataset>(document),
            "AlluxioRuntime" => read::<AlluxioRuntime>(document),
            "Deployment" => read::<apps::Deployment>(document),
            "PodDisruptionBudget" => read::<policy::PodDisruptionBudget>(document),
            "HorizontalPodAutoscaler" => read::<autoscaling::HorizontalPodAutoscaler>(document),
            "ScaledObject" => read::<ScaledObject>(document),
            "Ingress" => read::<networking::Ingress>(document),
            other => panic!("unexpected kind {other}"),
        };
        assert_eq!(&read, object);
    }
}

#[test]
fn tenant() {
    let tenant = tenant_from_yaml(
        r#"
name: vision
quota:
  cpus: 64
  memory: 256Gi
  gpus: 8
  jobs: 10
users: [alice@example.com, bob@example.com]
groups: [vision-team]
labels:
  cost-center: cv-42
"#,
    )
    .unwrap();
    golden("tenant", &render_tenant(&tenant).unwrap());
}

const NETWORK: &str = r#"
network:
  egress:
  - cidr: 10.20.0.0/16
    except: [10.20.99.0/24]
    ports: [5432, "8000:8080"]
  - cidr: 0.0.0.0/0
    ports: [53]
    protocol: UDP
  expose:
  - service: predict
    ports: [8080]
    tenants: [web, mobile]
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
"#;

/// The Kubernetes isolation with an egress list, an exposed service and
/// two underlay attachments.
#[test]
fn tenant_network_kubernetes() {
    let tenant = tenant_from_yaml(&format!("name: vision\n{NETWORK}")).unwrap();
    golden(
        "tenant-network-kubernetes",
        &render_tenant(&tenant).unwrap(),
    );
}

/// The same network with Calico's isolation: moon's tier, the guard rails
/// and the tenant's isolation policy instead of NetworkPolicies.
#[test]
fn tenant_network_calico() {
    let tenant =
        tenant_from_yaml(&format!("name: vision\n{NETWORK}  isolation: calico\n")).unwrap();
    golden("tenant-network-calico", &render_tenant(&tenant).unwrap());
}

/// Every storage system: SeaweedFS and Gluster volumes with their claims,
/// HDFS cached in memory and on disk, read as a Kerberos principal.
#[test]
fn tenant_storage() {
    let tenant = tenant_from_yaml(
        r#"
name: vision
labels:
  cost-center: cv-42
storage:
  seaweedfs:
    replication: "001"
    ttl: 30d
  hdfs:
    spaceQuota: 1Ti
    kerberos:
      principal: vision@EXAMPLE.COM
      keytabSecret: vision-keytab
    cache:
      memory: 8Gi
      disk: 100Gi
  gluster:
    size: 10Gi
"#,
    )
    .unwrap();
    let endpoints = StorageEndpoints {
        hdfs_namenode: Some("namenode.storage:8020".into()),
        gluster_servers: Some("gluster-0.storage,gluster-1.storage".into()),
    };
    golden(
        "tenant-storage",
        &render_tenant_storage(&tenant, &endpoints).unwrap(),
    );
}

#[test]
fn tenant_without_limits_or_people() {
    let tenant = tenant_from_yaml("name: sandbox\n").unwrap();
    golden("tenant-minimal", &render_tenant(&tenant).unwrap());
}

#[test]
fn pytorch_master_and_two_workers() {
    golden_job(
        "pytorch",
        r#"
name: mnist
tenant: vision
framework: pytorch
roles:
  - name: master
    command: [python3, train.py]
    args: [--epochs, "3"]
  - name: worker
    replicas: 2
    command: [python3, train.py]
    args: [--epochs, "3"]
    cpus: 2
    memory: 4Gi
"#,
        &RenderOptions::default(),
    );
}

#[test]
fn tensorflow_chief_two_workers_and_a_parameter_server() {
    let job = job_from_yaml(
        r#"
name: resnet
tenant: vision
framework: tensorflow
roles:
  - name: chief
    command: [python3, -m, trainer]
  - name: worker
    replicas: 2
    command: [python3, -m, trainer]
  - name: ps
    command: [python3, -m, trainer]
    cpus: 500m
    memory: 1Gi
"#,
    )
    .unwrap();
    let options = RenderOptions {
        image: "tensorflow/tensorflow:2.20.0".into(),
        ..RenderOptions::default()
    };
    golden("tensorflow", &render_job(&job, &options).unwrap());
}

#[test]
fn xgboost_two_workers_and_the_tracker() {
    golden_job(
        "xgboost",
        r#"
name: churn
tenant: vision
framework: xgboost
roles:
  - name: worker
    replicas: 2
    # The tracker runs the workers' Python, so it takes their image too.
    image: registry.example/churn-train:7
    command: [/opt/venv/bin/python3, train.py]
    env:
      PYTHONUNBUFFERED: "1"
"#,
        &RenderOptions::default(),
    );
}

#[test]
fn mxnet_scheduler_server_and_two_workers() {
    golden_job(
        "mxnet",
        r#"
name: ctr
tenant: vision
framework: mxnet
roles:
  - name: scheduler
    command: [python3, train.py]
  - name: server
    command: [python3, train.py]
  - name: worker
    replicas: 2
    command: [python3, train.py]
"#,
        &RenderOptions::default(),
    );
}

/// GPUs, restarts on failure, a deadline, a working directory, labels, `$`
/// in values, a secret's keys as variables of one role, and owner
/// references to the anchor.
#[test]
fn gpu_job_owned_by_its_anchor() {
    let job = job_from_yaml(
        r#"
name: llm
tenant: vision
framework: pytorch
restartPolicy: on-failure
backoffLimit: 3
activeDeadlineSeconds: 86400
labels:
  project: llm
roles:
  - name: master
    command: [torchrun, /src/train.py]
    args: [--checkpoint-dir, $(CHECKPOINTS)]
    workingDir: /src
    cpus: 8
    memory: 64Gi
    # Eight Hopper GPUs with 80 GB each: a node affinity over GFD's labels.
    gpus: "H100,80GB+,cc9.0+:8"
    env:
      NCCL_DEBUG: INFO
    # Only the master logs to the tracking service: only it gets the key.
    envFrom:
      - secret: wandb
  - name: worker
    replicas: 1
    command: [torchrun, /src/train.py]
    args: [--checkpoint-dir, $(CHECKPOINTS)]
    workingDir: /src
    cpus: 8
    memory: 64Gi
    gpus: 8
    env:
      NCCL_DEBUG: INFO
"#,
    )
    .unwrap();
    let options = RenderOptions {
        image: "nvcr.io/nvidia/pytorch:25.01-py3".into(),
        anchor_uid: Some("3f2c5f1e-8d3b-4c1a-9a57-0e6d2b7c9f10".into()),
        // A cluster whose ML nodes carry a taint of their own.
        tolerations: moon_spec::kubernetes::parse_tolerations("dedicated=ml:NoSchedule").unwrap(),
        // ...and a label that sets them apart.
        node_selector: moon_spec::kubernetes::parse_node_selector("pool=ml").unwrap(),
        volumes: Vec::new(),
    };
    golden("gpu", &render_job(&job, &options).unwrap());
}

/// A job with a volume on each of its tenant's systems: SeaweedFS and Gluster from the
/// tenant's claims (see `tenant-storage.yaml`) at the volume's sub-path, cached HDFS from
/// Fluid's claim of the tenant's Dataset, plain HDFS as variables only.
#[test]
fn volumes_from_the_tenants_claims() {
    let job = job_from_yaml(
        r#"
name: train
tenant: vision
framework: pytorch
roles:
  - {name: master, command: [python3, train.py]}
  - {name: worker, replicas: 1, command: [python3, train.py]}
volumes:
  - {name: train-data, store: seaweedfs, path: datasets/mnist, mountPath: /data, readOnly: true}
  - {name: shared, url: "gluster://gluster-0.storage/moon-vision/shared", mountPath: /shared}
  - {name: features, store: hdfs, path: features, mountPath: /features, readOnly: true, cached: true}
  - {name: raw, store: hdfs, path: raw/2026, mountPath: /raw}
"#,
    )
    .unwrap();
    let resolved = |name: &str, system, url: &str, path: &str, mount_path: &str| {
        let spec = job.volumes.iter().find(|v| v.name == name).unwrap();
        ResolvedVolume {
            name: name.into(),
            system,
            url: url.into(),
            path: path.into(),
            mount_path: mount_path.into(),
            read_only: spec.read_only,
            cached: spec.cached,
        }
    };
    let options = RenderOptions {
        volumes: vec![
            resolved(
                "train-data",
                StorageSystem::Seaweedfs,
                "seaweedfs://filer.storage:8888/tenants/vision/datasets/mnist?collection=moon-vision",
                "datasets/mnist",
                "/data",
            ),
            resolved(
                "shared",
                StorageSystem::Gluster,
                "gluster://gluster-0.storage/moon-vision/shared",
                "shared",
                "/shared",
            ),
            resolved(
                "features",
                StorageSystem::Hdfs,
                "hdfs://namenode.storage:8020/tenants/vision/features",
                "features",
                "/features",
            ),
            resolved(
                "raw",
                StorageSystem::Hdfs,
                "hdfs://namenode.storage:8020/tenants/vision/raw/2026",
                "raw/2026",
                "/raw",
            ),
        ],
        ..RenderOptions::default()
    };
    golden("volumes", &render_job(&job, &options).unwrap());
}

#[test]
fn volumes_not_resolved_are_refused() {
    let job = job_from_yaml(
        "name: train\ntenant: vision\nframework: custom\n\
         roles: [{name: main, command: [python3]}]\n\
         volumes: [{name: data, store: seaweedfs, mountPath: /data}]\n",
    )
    .unwrap();
    let error = render_job(&job, &RenderOptions::default()).unwrap_err();
    assert!(
        error.to_string().contains("its volumes are resolved"),
        "{error}"
    );
}

#[test]
fn inherit_env_is_refused_on_kubernetes_with_its_path() {
    let job = job_from_yaml(
        r#"
name: mnist
tenant: vision
framework: custom
roles:
  - {name: main, command: [python3], inheritEnv: [WANDB_API_KEY]}
"#,
    )
    .unwrap();
    let error = render_job(&job, &RenderOptions::default()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("invalid job: roles[0].inheritEnv: has no meaning on Kubernetes"),
        "{error}"
    );
}

#[test]
fn rendering_is_deterministic() {
    let job = job_from_yaml(
        r#"
name: resnet
tenant: vision
framework: tensorflow
roles:
  - {name: chief, command: [python3]}
  - {name: worker, replicas: 3, command: [python3]}
  - {name: ps, replicas: 2, command: [python3]}
  - {name: evaluator, command: [python3]}
"#,
    )
    .unwrap();
    let first = to_yaml(&render_job(&job, &RenderOptions::default()).unwrap());
    for _ in 0..5 {
        assert_eq!(
            to_yaml(&render_job(&job, &RenderOptions::default()).unwrap()),
            first
        );
    }
}

/// Renders the service spec `yaml` and compares it with the golden file `name`.
fn golden_service(name: &str, yaml: &str) {
    let service = service_from_yaml(yaml).unwrap();
    golden(
        name,
        &render_service(&service, &RenderOptions::default()).unwrap(),
    );
}

/// A fixed number of replicas on GPUs, ready on an HTTP path, exposed on a host: a
/// Deployment, its Service, a PodDisruptionBudget and an Ingress.
#[test]
fn service() {
    golden_service(
        "service",
        r#"
kind: Service
name: mnist
tenant: vision
image: registry.example/mnist:3
command: [python, serve.py]
args: [--model, /models/mnist.json, --log, $HOME/serve.log]
env: {LOG_LEVEL: info}
envFrom: [{secret: registry}]
port: 9000
replicas: 2
cpus: 2
memory: 4Gi
gpus: H100:1
readiness: {httpPath: /healthz, periodSeconds: 2}
expose: {host: models.example.com, path: /v1/models/mnist}
labels: {team: cv}
"#,
    );
}

/// Scaled between 1 and 8 on requests per second: a HorizontalPodAutoscaler, and the
/// Deployment leaves its replica count to it.
#[test]
fn service_autoscaled() {
    golden_service(
        "service-autoscaled",
        r#"
kind: Service
name: ranker
tenant: search
command: [python, -m, ranker]
autoscale:
  maxReplicas: 8
  targetRequestsPerSecond: 50.5
  scaleUpStabilizationSeconds: 15
"#,
    );
}

/// Scaled down to zero when idle: a KEDA ScaledObject instead of the autoscaler, ready on a
/// TCP connect (the default).
#[test]
fn service_scaled_to_zero() {
    golden_service(
        "service-scale-to-zero",
        r#"
kind: Service
name: summarizer
tenant: nlp
command: [python, serve.py]
autoscale: {minReplicas: 0, maxReplicas: 4, targetInFlight: 2}
"#,
    );
}
