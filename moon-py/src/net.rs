//! Network policies for Python (`moon.net`): the evaluator over JSON.

use moon_core::net::policy::{Cluster, Evaluator, Peer, PolicySet, Protocol, Traffic, compile};
use pyo3::prelude::*;

use crate::errors::to_py_err;

/// The evaluator over `policies` (a YAML stream, JSON being YAML: see
/// `PolicySet::push_document`) and
/// `pods` (YAML or JSON: `namespaces`, `pods`, `serviceAccounts`).
fn evaluator(policies: &str, pods: &str) -> Result<Evaluator, moon_core::Error> {
    use serde::Deserialize;
    let invalid = |field: &str, message: String| {
        moon_core::Error::Net(moon_core::net::Error::InvalidPolicy {
            field: field.to_owned(),
            column: None,
            message,
        })
    };
    let mut set = PolicySet::default();
    let mut index = 0;
    for document in serde_yaml_ng::Deserializer::from_str(policies) {
        let value = serde_json::Value::deserialize(document)
            .map_err(|e| invalid("policies", e.to_string()))?;
        set.push_document(value, &mut index)?;
    }
    let cluster: Cluster =
        serde_yaml_ng::from_str(pods).map_err(|e| invalid("pods", e.to_string()))?;
    Ok(Evaluator::new(cluster, compile(&set)?)?)
}

fn traffic(protocol: &str, port: u16) -> Result<Traffic, moon_core::Error> {
    match Protocol::parse(protocol) {
        Some(protocol @ (Protocol::Tcp | Protocol::Udp | Protocol::Sctp)) => {
            Ok(Traffic { protocol, port })
        }
        _ => Err(moon_core::Error::Net(
            moon_core::net::Error::InvalidPolicy {
                field: "protocol".into(),
                column: None,
                message: format!("{protocol:?} is not tcp, udp or sctp"),
            },
        )),
    }
}

/// May `source` reach `destination` (`namespace/pod` or an IP address) on
/// `protocol`/`port`, over the policies and pods of [`evaluator`]: the verdict as JSON, with its explanation under
/// `explanation`. Raises `moon.InvalidPolicy`.
#[pyfunction]
pub(crate) fn net_check(
    py: Python<'_>,
    policies: &str,
    pods: &str,
    source: &str,
    destination: &str,
    port: u16,
    protocol: &str,
) -> PyResult<String> {
    py.detach(|| -> Result<String, moon_core::Error> {
        let evaluator = evaluator(policies, pods)?;
        let (from, to) = (evaluator.peer(source)?, evaluator.peer(destination)?);
        let verdict = evaluator.check(from, to, traffic(protocol, port)?);
        let mut value = serde_json::to_value(&verdict).expect("a verdict serializes");
        value["explanation"] = verdict.explain(source, destination).into();
        Ok(value.to_string())
    })
    .map_err(|error| to_py_err(py, error))
}

/// Who may reach the pods of `tenant`: JSON `{"from": [...], "to": [...],
/// "allowed": [[...]]}`, rows every pod, columns the tenant's.
#[pyfunction]
pub(crate) fn net_matrix(
    py: Python<'_>,
    policies: &str,
    pods: &str,
    tenant: &str,
    port: u16,
    protocol: &str,
) -> PyResult<String> {
    py.detach(|| -> Result<String, moon_core::Error> {
        let evaluator = evaluator(policies, pods)?;
        let pods = &evaluator.cluster().pods;
        let from: Vec<Peer> = (0..pods.len()).map(Peer::Pod).collect();
        let to: Vec<Peer> = (0..pods.len())
            .filter(|&i| pods[i].namespace == tenant)
            .map(Peer::Pod)
            .collect();
        let allowed = evaluator.matrix(&from, &to, traffic(protocol, port)?);
        let names = |peers: &[Peer]| -> Vec<String> {
            peers.iter().map(|&p| evaluator.peer_name(p)).collect()
        };
        Ok(
            serde_json::json!({"from": names(&from), "to": names(&to), "allowed": allowed})
                .to_string(),
        )
    })
    .map_err(|error| to_py_err(py, error))
}
