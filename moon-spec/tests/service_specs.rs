//! Service specs: what a written spec becomes, and every rule's refusal with its field path.

use moon_spec::Error;
use moon_spec::spec::{
    DEFAULT_SCALE_DOWN_WINDOW, DEFAULT_SERVICE_PORT, Kind, Quantity, Spec, service_from_yaml,
    spec_from_yaml, spec_kind,
};

const MINIMAL: &str = "kind: Service\nname: mnist\ntenant: vision\ncommand: [python, serve.py]\n";

/// The errors reported for `text`, one `path: message` line each.
fn refused(text: &str) -> Vec<String> {
    match service_from_yaml(text) {
        Err(Error::InvalidSpec {
            kind: "service",
            errors,
        }) => errors.0.iter().map(ToString::to_string).collect(),
        other => panic!("not an invalid service: {other:?}\n{text}"),
    }
}

#[test]
fn a_minimal_service_gets_the_documented_defaults() {
    let service = service_from_yaml(MINIMAL).unwrap();
    assert_eq!(service.port, DEFAULT_SERVICE_PORT);
    assert_eq!(service.replicas, 1);
    assert_eq!(service.cpus, Quantity::Int(1));
    assert_eq!(service.memory, Quantity::Text("512Mi".into()));
    assert_eq!(service.readiness, None);
    let readiness = service.readiness_or_default();
    assert!(readiness.tcp && readiness.http_path.is_none());
    assert_eq!(
        (
            readiness.period_seconds,
            readiness.timeout_seconds,
            readiness.failure_threshold
        ),
        (1, 1, 3)
    );
    let role = service.replica_role();
    assert_eq!(role.argv(), ["python", "serve.py"]);
    assert_eq!(role.replicas, 1);
}

#[test]
fn a_full_service_round_trips_through_json() {
    let text = "\
kind: Service
name: mnist
tenant: vision
command: [python, serve.py]
args: [--model, /models/mnist.json]
env: {LOG_LEVEL: info}
envFrom: [{secret: registry}]
port: 9000
replicas: 2
cpus: 500m
memory: 1Gi
gpus: H100:1
readiness: {httpPath: /healthz, periodSeconds: 2}
autoscale: {minReplicas: 0, maxReplicas: 8, targetInFlight: 4, scaleUpStabilizationSeconds: 10}
expose: {host: models.example.com, path: /v1/models/mnist, rpc: mnist}
volumes:
  - {name: models, store: seaweedfs, path: models, mountPath: /models, readOnly: true}
labels: {team: cv}
";
    let service = service_from_yaml(text).unwrap();
    assert_eq!(service.port, 9000);
    let autoscale = service.autoscale.as_ref().unwrap();
    assert_eq!(autoscale.min_replicas, 0);
    assert_eq!(autoscale.target_in_flight, Some(4.0));
    assert_eq!(
        autoscale.scale_down_stabilization_seconds,
        DEFAULT_SCALE_DOWN_WINDOW
    );
    let readiness = service.readiness.as_ref().unwrap();
    assert_eq!(readiness.http_path.as_deref(), Some("/healthz"));
    assert_eq!(readiness.timeout_seconds, 1);
    assert_eq!(
        service.expose.as_ref().unwrap().rpc.as_deref(),
        Some("mnist")
    );

    // Written out as JSON (what programs and Python send) and read back: the same spec.
    let json = Spec::Service(service.clone()).to_json();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["kind"], "Service");
    assert_eq!(value["readiness"]["httpPath"], "/healthz");
    assert_eq!(service_from_yaml(&json).unwrap(), service);
}

#[test]
fn a_service_names_its_kind_and_is_read_as_one() {
    assert_eq!(spec_kind(MINIMAL).unwrap(), Kind::Service);
    let spec = spec_from_yaml(MINIMAL, None).unwrap();
    assert_eq!((spec.kind(), spec.name()), (Kind::Service, "mnist"));
    // Without `kind`, the same keys are not a service (it must name itself).
    let unnamed = MINIMAL.trim_start_matches("kind: Service\n");
    let errors = refused(unnamed);
    assert_eq!(errors, ["missing field `kind`"]);
}

#[test]
fn an_image_stands_in_for_the_command() {
    let text = "kind: Service\nname: mnist\ntenant: vision\nimage: registry.local/mnist:1\n";
    assert!(service_from_yaml(text).unwrap().command.is_empty());
    let without_either = "kind: Service\nname: mnist\ntenant: vision\n";
    assert_eq!(refused(without_either), ["command: must name a program"]);
}

#[test]
fn every_broken_rule_is_reported_with_its_path() {
    let cases: &[(&str, &[&str])] = &[
        ("port: 0", &["port: must be between 1 and 65535, got 0"]),
        (
            "port: 70000",
            &["port: invalid value: integer `70000`, expected u16"],
        ),
        (
            "replicas: 10001",
            &["replicas: must be at most 10000, got 10001"],
        ),
        (
            "readiness: {httpPath: /healthz, tcp: true}",
            &["readiness: give httpPath or tcp: true, not both"],
        ),
        (
            "readiness: {periodSeconds: 0}",
            &[
                "readiness: must give httpPath (an HTTP GET) or tcp: true (a TCP connect)",
                "readiness.periodSeconds: must be at least 1, got 0",
            ],
        ),
        (
            "readiness: {httpPath: healthz}",
            &["readiness.httpPath: must start with '/', got \"healthz\""],
        ),
        (
            "autoscale: {maxReplicas: 0, targetInFlight: 2}",
            &["autoscale.maxReplicas: must be between 1 and 10000, got 0"],
        ),
        (
            "autoscale: {minReplicas: 5, maxReplicas: 2, targetInFlight: 2}",
            &["autoscale.minReplicas: must be at most maxReplicas (2), got 5"],
        ),
        (
            "autoscale: {maxReplicas: 4}",
            &[
                "autoscale: must give exactly one target, targetRequestsPerSecond or \
                 targetInFlight; got none",
            ],
        ),
        (
            "autoscale: {maxReplicas: 4, targetInFlight: 2, targetRequestsPerSecond: 100}",
            &[
                "autoscale: must give exactly one target, targetRequestsPerSecond or \
                 targetInFlight; got targetRequestsPerSecond and targetInFlight",
            ],
        ),
        (
            "autoscale: {maxReplicas: 4, targetRequestsPerSecond: -1}",
            &["autoscale.targetRequestsPerSecond: must be a number above 0, got -1"],
        ),
        (
            "autoscale: {maxReplicas: 4, targetInFlight: 1, scaleDownStabilizationSeconds: 7200}",
            &[
                "autoscale.scaleDownStabilizationSeconds: must be at most 3600 (as in \
                 Kubernetes), got 7200",
            ],
        ),
        (
            "expose: {host: Models.Example.com, path: v1}",
            &[
                "expose.host: must be a DNS name (lowercase letters, digits, '-' and '.'), got \
                 \"Models.Example.com\"",
                "expose.path: must start with '/', got \"v1\"",
            ],
        ),
        (
            "autoscale: {maxReplicas: 2, targetInFlight: 1, surge: 3}",
            &[
                "autoscale.surge: unknown field `surge`, expected one of `minReplicas`, \
               `maxReplicas`, `targetRequestsPerSecond`, `targetInFlight`, \
               `scaleUpStabilizationSeconds`, `scaleDownStabilizationSeconds`",
            ],
        ),
        (
            "env: {1BAD: x}\ncpus: 0",
            &[
                "env.1BAD: must be a variable name of letters, digits and '_', not starting \
                 with a digit, got \"1BAD\"",
                "cpus: must be more than 0, got 0",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (extra, expected) in cases {
        let text = format!("{MINIMAL}{extra}\n");
        let got = refused(&text);
        if got != *expected {
            failures.push(format!(
                "{extra}:\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_job_that_runs_a_service_locally_is_a_valid_job_of_its_replicas() {
    let service = service_from_yaml(
        "kind: Service\nname: mnist\ntenant: vision\ncommand: [python, serve.py]\n\
         env: {LOG: info}\ncpus: 2\nlabels: {team: cv}\n",
    )
    .unwrap();
    let job = service.replica_job(3);
    moon_spec::spec::validate_job(&job).expect("a valid job");
    assert_eq!(
        (job.name.as_str(), job.tenant.as_str()),
        ("mnist", "vision")
    );
    assert_eq!(job.roles.len(), 1);
    let role = &job.roles[0];
    assert_eq!((role.name.as_str(), role.replicas), ("replica", 3));
    assert_eq!(role.argv(), ["python", "serve.py"]);
    assert_eq!(role.env.get("LOG").map(String::as_str), Some("info"));
    assert_eq!(role.cpus, Quantity::Int(2));
    assert_eq!(job.labels.get("team").map(String::as_str), Some("cv"));
}
