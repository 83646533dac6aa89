//! Runs the shared table of invalid specs (tests/data/invalid_specs.yaml at
//! the repository root): every entry must be refused with exactly the errors
//! it lists, in order. The Python and CLI tests read the same table.

use std::collections::BTreeSet;
use std::path::Path;

use moon_spec::Error;
use moon_spec::spec::{Framework, job_from_yaml, service_from_yaml, tenant_from_yaml};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    kind: String,
    spec: serde_yaml_ng::Value,
    errors: Vec<String>,
}

fn table() -> Vec<Entry> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/invalid_specs.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|error| panic!("parsing {}: {error}", path.display()))
}

/// The errors reported for `text`, or why the outcome is not an invalid spec.
fn reported(kind: &str, text: &str) -> Result<Vec<String>, String> {
    let outcome = match kind {
        "job" => job_from_yaml(text).map(|_| ()),
        "tenant" => tenant_from_yaml(text).map(|_| ()),
        "service" => service_from_yaml(text).map(|_| ()),
        other => return Err(format!("unknown kind {other:?}")),
    };
    match outcome {
        Ok(()) => Err("was accepted".into()),
        Err(Error::InvalidSpec { kind: got, errors }) if got == kind => {
            Ok(errors.0.iter().map(ToString::to_string).collect())
        }
        Err(other) => Err(format!("failed with another error: {other:?}")),
    }
}

fn check(entry: &Entry, form: &str, text: &str, failures: &mut Vec<String>) {
    match reported(&entry.kind, text) {
        Ok(errors) if errors == entry.errors => {}
        Ok(errors) => failures.push(format!(
            "{} ({form}): expected\n    {}\n  got\n    {}",
            entry.name,
            entry.errors.join("\n    "),
            errors.join("\n    ")
        )),
        Err(why) => failures.push(format!("{} ({form}): {why}", entry.name)),
    }
}

#[test]
fn every_invalid_spec_is_refused_with_its_errors() {
    let mut failures = Vec::new();
    for entry in table() {
        let yaml = serde_yaml_ng::to_string(&entry.spec).expect("a spec dumps to YAML");
        check(&entry, "YAML", &yaml, &mut failures);
        // The CLI and Python hand specs over as JSON too; the errors must not
        // depend on which of the two a user wrote.
        let json = serde_json::to_string(&entry.spec).expect("a spec dumps to JSON");
        check(&entry, "JSON", &json, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn table_is_broad_and_well_formed() {
    let entries = table();
    assert!(entries.len() >= 24, "only {} entries", entries.len());
    assert!(
        entries.iter().any(|entry| entry.errors.len() >= 3),
        "no entry shows several errors reported together"
    );

    let mut names = BTreeSet::new();
    for entry in &entries {
        assert!(
            names.insert(entry.name.as_str()),
            "entry name {:?} is used twice",
            entry.name
        );
        assert!(
            matches!(entry.kind.as_str(), "job" | "tenant" | "service"),
            "{}: kind must be job, tenant or service, got {:?}",
            entry.name,
            entry.kind
        );
        assert!(!entry.errors.is_empty(), "{}: lists no errors", entry.name);
        assert!(
            entry.spec.is_mapping(),
            "{}: spec must be a mapping, not text",
            entry.name
        );
    }

    // Each framework with role rules has at least one spec breaking them.
    for framework in Framework::ALL {
        if framework.role_rules().is_none() {
            continue;
        }
        let covered = entries.iter().any(|entry| {
            entry.kind == "job"
                && entry.spec.get("framework").and_then(|value| value.as_str())
                    == Some(framework.as_str())
                && entry
                    .errors
                    .iter()
                    .any(|error| error.contains(framework.as_str()))
        });
        assert!(covered, "no entry breaks a {framework} role rule");
    }
}
