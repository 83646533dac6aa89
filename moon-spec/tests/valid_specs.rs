//! Specs users write for each framework must parse, validate and get the
//! documented defaults; `Demand::of` is what admission checks against quotas.

use moon_spec::spec::{
    DEFAULT_BACKOFF_LIMIT, Demand, Framework, Job, Quantity, RestartPolicy, job_from_yaml,
    tenant_from_yaml,
};

const GI: u64 = 1 << 30;
const MI: u64 = 1 << 20;

fn parse(text: &str) -> Job {
    job_from_yaml(text).unwrap_or_else(|error| panic!("refused: {error}\n{text}"))
}

#[test]
fn minimal_role_gets_the_documented_defaults() {
    let job = parse(
        "
name: lenet
tenant: vision
framework: caffe
roles:
  - name: worker
    command: [caffe, train, --solver=solver.prototxt]
",
    );
    assert_eq!(job.restart_policy, RestartPolicy::Never);
    assert_eq!(job.backoff_limit, DEFAULT_BACKOFF_LIMIT);
    assert_eq!(job.backoff_limit, 6);
    assert_eq!(job.active_deadline_seconds, None);
    assert!(job.labels.is_empty());

    let role = &job.roles[0];
    assert_eq!(role.replicas, 1);
    assert_eq!(role.cpus, Quantity::Int(1));
    assert_eq!(role.memory, Quantity::from("512Mi"));
    assert_eq!(role.gpus.count(), 0);
    assert_eq!(role.working_dir, None);
    assert_eq!(
        Demand::of(&job),
        Demand {
            millicores: 1000,
            bytes: 512 * MI,
            gpus: 0
        }
    );
}

#[test]
fn pytorch_master_and_workers() {
    let job = parse(
        "
name: resnet
tenant: vision
framework: pytorch
restartPolicy: on-failure
backoffLimit: 2
activeDeadlineSeconds: 3600
labels:
  team: vision
  app.kubernetes.io/part-of: imagenet
roles:
  - name: master
    command: [python, train.py]
    args: [--epochs, '90']
    env:
      NCCL_DEBUG: INFO
    cpus: 4
    memory: 16Gi
    gpus: 1
  - name: worker
    replicas: 3
    command: [python, train.py]
    args: [--epochs, '90']
    cpus: '3500m'
    memory: 8Gi
    gpus: 1
",
    );
    assert_eq!(job.framework, Framework::Pytorch);
    assert_eq!(job.restart_policy, RestartPolicy::OnFailure);
    assert_eq!(job.backoff_limit, 2);
    assert_eq!(job.active_deadline_seconds, Some(3600));
    assert_eq!(job.replica_count(), 4);
    assert_eq!(
        job.roles[0].argv(),
        ["python", "train.py", "--epochs", "90"]
    );
    assert_eq!(
        Demand::of(&job),
        Demand {
            millicores: 4000 + 3 * 3500,
            bytes: 16 * GI + 3 * 8 * GI,
            gpus: 4
        }
    );
}

#[test]
fn pytorch_master_alone() {
    let job = parse(
        "
name: mnist
tenant: vision
framework: pytorch
roles:
  - name: master
    command: [python, mnist.py]
",
    );
    assert_eq!(job.replica_count(), 1);
}

#[test]
fn tensorflow_chief_workers_ps_and_evaluator() {
    let job = parse(
        r#"
{"name": "bert", "tenant": "nlp", "framework": "tensorflow",
 "roles": [
   {"name": "chief", "command": ["python", "train.py"], "cpus": 2, "memory": "4Gi"},
   {"name": "worker", "replicas": 4, "command": ["python", "train.py"], "cpus": 2, "memory": "4Gi"},
   {"name": "ps", "replicas": 2, "command": ["python", "train.py"], "cpus": 0.5, "memory": "1G"},
   {"name": "evaluator", "command": ["python", "eval.py"]}
 ]}
"#,
    );
    assert_eq!(job.replica_count(), 8);
    assert_eq!(
        Demand::of(&job),
        Demand {
            millicores: 5 * 2000 + 2 * 500 + 1000,
            bytes: 5 * 4 * GI + 2 * 1_000_000_000 + 512 * MI,
            gpus: 0
        }
    );
}

#[test]
fn tensorflow_workers_without_chief() {
    let job = parse(
        "
name: bert
tenant: nlp
framework: tensorflow
roles:
  - name: worker
    replicas: 2
    command: [python, train.py]
",
    );
    assert_eq!(job.replica_count(), 2);
}

#[test]
fn xgboost_workers() {
    let job = parse(
        "
name: churn
tenant: ads
framework: xgboost
roles:
  - name: worker
    replicas: 8
    command: [python, xgb.py]
    cpus: 250m
    memory: 1073741824
",
    );
    assert_eq!(
        Demand::of(&job),
        Demand {
            millicores: 8 * 250,
            bytes: 8 * GI,
            gpus: 0
        }
    );
}

#[test]
fn mxnet_scheduler_servers_and_workers() {
    let job = parse(
        "
name: wide-deep
tenant: ads
framework: mxnet
roles:
  - name: scheduler
    command: [python, train.py]
    cpus: 500m
    memory: 256Mi
  - name: server
    replicas: 2
    command: [python, train.py]
  - name: worker
    replicas: 2
    command: [python, train.py]
    gpus: 2
",
    );
    assert_eq!(job.replica_count(), 5);
    assert_eq!(
        Demand::of(&job),
        Demand {
            millicores: 500 + 4 * 1000,
            bytes: 256 * MI + 4 * 512 * MI,
            gpus: 4
        }
    );
}

#[test]
fn spark_driver_with_and_without_executors() {
    for text in [
        "
name: etl
tenant: data
framework: spark
roles:
  - name: driver
    command: [spark-submit, etl.py]
  - name: executor
    replicas: 10
    command: [spark-submit, etl.py]
    memory: 2Gi
",
        "
name: etl
tenant: data
framework: spark
roles:
  - name: driver
    command: [spark-submit, --master, local, etl.py]
",
    ] {
        let job = parse(text);
        assert_eq!(job.framework, Framework::Spark);
        assert_eq!(job.roles[0].name, "driver");
    }
}

#[test]
fn custom_allows_any_role_names() {
    let job = parse(
        "
name: sweep
tenant: research
framework: custom
roles:
  - name: trial
    replicas: 10000
    command: [python, trial.py]
    workingDir: /srv/sweep
    cpus: 0.1
    memory: 64Mi
  - name: reporter
    command: [python, report.py]
",
    );
    assert_eq!(job.roles[0].working_dir.as_deref(), Some("/srv/sweep"));
    assert_eq!(
        Demand::of(&job),
        Demand {
            millicores: 10_000 * 100 + 1000,
            bytes: 10_000 * 64 * MI + 512 * MI,
            gpus: 0
        }
    );
}

#[test]
fn a_demand_beyond_64_bits_saturates_instead_of_wrapping() {
    // Each role is valid on its own; only the total is too large to count.
    let job = parse(
        "
name: huge
tenant: research
framework: custom
roles:
  - name: trial
    replicas: 10000
    command: [python, trial.py]
    memory: 16Pi
",
    );
    assert_eq!(Demand::of(&job).bytes, u64::MAX);
}

#[test]
fn a_parsed_job_dumps_back_to_the_same_job() {
    let job = parse(
        "
name: resnet
tenant: vision
framework: pytorch
activeDeadlineSeconds: 600
labels: {team: vision}
roles:
  - name: master
    command: [python, train.py]
    env: {SEED: '1'}
    cpus: 1.5
  - name: worker
    replicas: 2
    command: [python, train.py]
    memory: 2Gi
",
    );
    let yaml = serde_yaml_ng::to_string(&job).unwrap();
    assert_eq!(job_from_yaml(&yaml).unwrap(), job, "{yaml}");
    let json = serde_json::to_string(&job).unwrap();
    assert_eq!(job_from_yaml(&json).unwrap(), job, "{json}");
    assert!(yaml.contains("activeDeadlineSeconds: 600"), "{yaml}");
    assert!(yaml.contains("restartPolicy: never"), "{yaml}");
}

#[test]
fn tenant_with_quota() {
    let tenant = tenant_from_yaml(
        "
name: vision
quota: {cpus: 16, memory: 64Gi, gpus: 4, jobs: 10}
users: [ada]
groups: [ml-vision]
",
    )
    .unwrap();
    assert_eq!(tenant.quota.cpus.unwrap().millicores(), Ok(16_000));
    assert_eq!(tenant.quota.memory.unwrap().bytes(), Ok(64 * GI));
    assert_eq!(tenant.quota.gpus, Some(4));
    assert_eq!(tenant.quota.jobs, Some(10));

    let open = tenant_from_yaml("name: research").unwrap();
    assert_eq!(open.quota.cpus, None);
    assert_eq!(open.quota.jobs, None);
}

#[test]
fn tenant_with_storage_on_every_system() {
    let tenant = tenant_from_yaml(
        "
name: vision
storage:
  seaweedfs:
  hdfs:
    spaceQuota: 1Ti
    kerberos: {principal: vision/etl@EXAMPLE.COM, keytabSecret: vision-keytab}
    cache: {memory: 2Gi, disk: 20Gi}
  gluster: {size: 10Gi}
",
    )
    .unwrap();
    // A system named with no settings is there, with its defaults.
    let seaweedfs = tenant.storage.seaweedfs.as_ref().expect("seaweedfs");
    assert_eq!(seaweedfs.replication, None);
    let hdfs = tenant.storage.hdfs.as_ref().expect("hdfs");
    assert_eq!(hdfs.space_quota.as_ref().unwrap().bytes(), Ok(1024 * GI));
    assert_eq!(
        hdfs.kerberos.as_ref().unwrap().principal,
        "vision/etl@EXAMPLE.COM"
    );
    let cache = hdfs.cache.as_ref().unwrap();
    assert_eq!(cache.disk.as_ref().unwrap().bytes(), Ok(20 * GI));
    assert_eq!(
        tenant.storage.gluster.as_ref().unwrap().size.bytes(),
        Ok(10 * GI)
    );

    // What is written reads back the same, so a tenant stored and read again keeps its storage.
    let json = serde_json::to_string(&tenant).unwrap();
    assert_eq!(tenant_from_yaml(&json).unwrap(), tenant);

    let none = tenant_from_yaml("name: research").unwrap();
    assert!(none.storage.is_empty());
    assert!(!serde_json::to_string(&none).unwrap().contains("storage"));
}
