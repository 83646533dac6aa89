"""Service specs from Python: the dataclass, its round trip through moon's parser, refusals
that name the field, and the Kubernetes objects it renders to (no backend serves services
yet, so nothing here needs one)."""

from __future__ import annotations

import json

import pytest
import yaml

import moon

MNIST = moon.Service(
    name="mnist",
    tenant="vision",
    command=["python", "serve.py"],
    port=9000,
    replicas=2,
    readiness={"httpPath": "/healthz"},
    autoscale={"minReplicas": 0, "maxReplicas": 8, "targetInFlight": 4},
    expose={"path": "/v1/models/mnist", "rpc": "mnist"},
    labels={"team": "cv"},
)


def test_a_service_round_trips_through_the_parser_with_its_defaults_filled_in() -> None:
    parsed = moon.Service.from_dict(MNIST.to_dict())
    assert parsed.port == 9000
    assert parsed.command == ["python", "serve.py"]
    assert parsed.cpus == 1
    assert parsed.memory == "512Mi"
    # The parser fills the defaults of the nested mappings in.
    assert parsed.readiness == {
        "httpPath": "/healthz",
        "periodSeconds": 1,
        "timeoutSeconds": 1,
        "failureThreshold": 3,
    }
    assert parsed.autoscale is not None
    assert parsed.autoscale["scaleDownStabilizationSeconds"] == 300
    assert parsed.expose == {"path": "/v1/models/mnist", "rpc": "mnist"}
    assert parsed.validate() is parsed


def test_load_spec_reads_a_service_by_its_kind() -> None:
    text = json.dumps(MNIST.to_dict())
    loaded = moon.load_spec(text)
    assert isinstance(loaded, moon.Service)
    assert loaded.name == "mnist"
    assert loaded.labels == {"team": "cv"}
    assert isinstance(moon.load_spec(text, kind="service"), moon.Service)


def test_a_broken_service_is_refused_with_every_field_path() -> None:
    broken = moon.Service(
        name="Bad_Name",
        tenant="vision",
        port=0,
        autoscale={"minReplicas": 3, "maxReplicas": 2, "targetInFlight": 1},
        readiness={"httpPath": "healthz"},
    )
    with pytest.raises(moon.InvalidSpec) as caught:
        broken.validate()
    paths = [error.split(": ", 1)[0] for error in caught.value.errors]
    assert paths == [
        "name",
        "command",
        "port",
        "readiness.httpPath",
        "autoscale.minReplicas",
    ]
    assert caught.value.kind == "service"


def test_an_unknown_key_is_refused_not_dropped() -> None:
    with pytest.raises(moon.InvalidSpec) as caught:
        moon.Service.from_dict({**MNIST.to_dict(), "autoscale": {"maxReplicas": 2, "surge": 1}})
    assert caught.value.errors[0].startswith("autoscale.surge: unknown field `surge`")


def test_nested_settings_must_be_mappings() -> None:
    with pytest.raises(TypeError, match="readiness must be a mapping"):
        moon.Service(name="mnist", tenant="vision", readiness="/healthz")  # type: ignore[arg-type]


def test_a_service_renders_to_a_deployment_and_what_its_spec_asks_for() -> None:
    stream = moon.render(MNIST, image="registry.example/mnist:3")
    docs = [doc for doc in yaml.safe_load_all(stream) if doc]
    assert [(doc["kind"], doc["metadata"]["name"]) for doc in docs] == [
        ("Deployment", "mnist"),
        ("Service", "mnist"),
        ("PodDisruptionBudget", "mnist"),
        ("ScaledObject", "mnist"),
        ("Ingress", "mnist"),
    ]
    container = docs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/mnist:3"
    assert {"name": "PORT", "value": "9000"} in container["env"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # Scaled from zero by KEDA: the Deployment leaves its replica count to it.
    assert "replicas" not in docs[0]["spec"]
    assert docs[3]["spec"]["minReplicaCount"] == 0
