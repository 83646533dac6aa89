//! `moon validate -f spec.yaml`.

use std::path::Path;

use moon_core::Error;
use moon_core::spec::{Kind, spec_from_yaml, spec_kind};
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
    rule: String,
    message: String,
}

/// Checks the spec without opening any backend. An invalid spec exits 2
/// with its errors on stderr, as any other command would report them.
pub fn run(context: &Context, file: &Path) -> Result<(), CliError> {
    let text = read_spec(file)?;
    // Text that is not YAML, or names a kind moon does not read, is
    // reported as a spec of no kind.
    let kind = spec_kind(&text).ok();
    let result = spec_from_yaml(&text, kind).map(drop).map_err(Error::from);
    if context.out.is_table() {
        if result.is_ok() {
            context.out.text("valid")?;
        }
    } else {
        context.out.document(&verdict(kind, &result))?;
    }
    result.map_err(CliError::from)
}

fn verdict(kind: Option<Kind>, result: &Result<(), Error>) -> Verdict {
    let errors = match result {
        Ok(()) => Vec::new(),
        Err(Error::InvalidSpec { errors, .. }) => errors
            .0
            .iter()
            .map(|error| FieldErrorOut {
                path: error.path.clone(),
                rule: error.rule.clone(),
                message: error.message.clone(),
            })
            .collect(),
        Err(other) => vec![FieldErrorOut {
            path: String::new(),
            rule: String::new(),
            message: other.to_string(),
        }],
    };
    Verdict {
        kind: kind.map_or("spec", Kind::noun),
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

    fn check(text: &str) -> (Option<Kind>, Result<(), Error>) {
        let kind = spec_kind(text).ok();
        (
            kind,
            spec_from_yaml(text, kind).map(drop).map_err(Error::from),
        )
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_path_and_rule() {
        let (kind, result) = check(JOB);
        let verdict = verdict(kind, &result);
        assert!(!verdict.valid);
        assert_eq!(verdict.kind, "job");
        assert_eq!(
            verdict.errors,
            [FieldErrorOut {
                path: "roles[0].replicas".into(),
                rule: "range".into(),
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
        let (kind, result) = check("name: demo\nquota: {cpus: 2}\n");
        assert!(result.is_ok());
        assert_eq!(verdict(kind, &result).kind, "tenant");
        assert!(verdict(kind, &result).valid);
    }

    #[test]
    fn unreadable_yaml_is_invalid_input_of_no_kind() {
        let (kind, result) = check("name: [unclosed\n");
        assert_eq!(verdict(kind, &result).kind, "spec");
        let error = CliError::from(result.unwrap_err());
        assert_eq!(error.code(), crate::exit::INVALID_INPUT);
    }
}
