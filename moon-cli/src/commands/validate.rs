//! `moon validate -f spec.yaml`.

use std::path::Path;

use moon_core::Error;
use moon_core::spec::{from_yaml, job_from_yaml, spec_kind, tenant_from_yaml};
use serde::Serialize;

use super::{Context, read_spec};
use crate::exit::CliError;

/// What `validate` prints with `-o json|yaml`.
#[derive(Debug, PartialEq, Serialize)]
struct Verdict {
    kind: &'static str,
    valid: bool,
    errors: Vec<FieldErrorOut>,
}

#[derive(Debug, PartialEq, Serialize)]
struct FieldErrorOut {
    path: String,
    message: String,
}

/// Checks the spec without opening any backend. An invalid spec exits 2
/// with its errors on stderr, as any other command would report them.
pub fn run(context: &Context, file: &Path) -> Result<(), CliError> {
    let text = read_spec(file)?;
    let kind = spec_kind(&text);
    let result = check(kind, &text);
    if context.out.is_table() {
        if result.is_ok() {
            context.out.text("valid")?;
        }
    } else {
        context.out.document(&verdict(kind, &result))?;
    }
    result.map_err(CliError::from)
}

fn check(kind: &'static str, text: &str) -> Result<(), Error> {
    let checked = match kind {
        "job" => job_from_yaml(text).map(drop),
        "tenant" => tenant_from_yaml(text).map(drop),
        _ => from_yaml::<serde_yaml_ng::Value>(kind, text).map(drop),
    };
    Ok(checked?)
}

fn verdict(kind: &'static str, result: &Result<(), Error>) -> Verdict {
    let errors = match result {
        Ok(()) => Vec::new(),
        Err(Error::InvalidSpec { errors, .. }) => errors
            .0
            .iter()
            .map(|error| FieldErrorOut {
                path: error.path.clone(),
                message: error.message.clone(),
            })
            .collect(),
        Err(other) => vec![FieldErrorOut {
            path: String::new(),
            message: other.to_string(),
        }],
    };
    Verdict {
        kind,
        valid: result.is_ok(),
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "
name: hello
tenant: demo
framework: custom
roles:
  - name: worker
    replicas: 0
    command: [echo, hi]
";

    #[test]
    fn kinds_are_detected_by_roles() {
        assert_eq!(spec_kind(JOB), "job");
        assert_eq!(spec_kind(r#"{"name": "demo", "roles": []}"#), "job");
        assert_eq!(spec_kind("name: demo\nquota: {gpus: 2}\n"), "tenant");
        assert_eq!(spec_kind("- a list\n"), "tenant");
        assert_eq!(spec_kind("name: [unclosed\n"), "spec");
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_path() {
        let result = check("job", JOB);
        let verdict = verdict("job", &result);
        assert!(!verdict.valid);
        assert_eq!(
            verdict.errors,
            [FieldErrorOut {
                path: "roles[0].replicas".into(),
                message: "must be at least 1, got 0".into(),
            }]
        );
        assert_eq!(
            CliError::from(result.unwrap_err()).message(),
            "invalid job:\n  roles[0].replicas: must be at least 1, got 0"
        );
    }

    #[test]
    fn valid_specs_pass() {
        let result = check("tenant", "name: demo\nquota: {cpus: 2}\n");
        assert!(result.is_ok());
        assert!(verdict("tenant", &result).valid);
    }

    #[test]
    fn unreadable_yaml_is_invalid_input() {
        let error = CliError::from(check("spec", "name: [unclosed\n").unwrap_err());
        assert_eq!(error.code(), crate::exit::INVALID_INPUT);
    }
}
