//! moon-spec's one error type: what can be wrong with a spec or with an
//! object moon reads back, found without any IO. moon-core's error converts
//! from it, so callers of the facade see one enum.

use std::fmt;

/// A `Result` whose error is moon-spec's.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One broken rule at one place in a spec: `roles[1].replicas: must be at least 1, got 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where, as a path into the spec (`roles[1].replicas`); empty for the whole spec.
    pub path: String,
    /// Which kind of rule, for programs: one of [`rule`]'s names, or the
    /// Kubernetes API server's cause (`FieldValueInvalid`) for an object it
    /// refused.
    pub rule: String,
    /// The rule and what was found, for people.
    pub message: String,
}

impl FieldError {
    /// An error at `path` against `rule`.
    pub fn new(
        path: impl Into<String>,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldError {
            path: path.into(),
            rule: rule.into(),
            message: message.into(),
        }
    }

    /// The path as its parts: keys as strings, indexes as numbers
    /// (`roles[1].replicas` is `roles`, `1`, `replicas`), as Python's
    /// `InvalidSpec.details` gives them in `loc`. A key that contains a dot
    /// (`labels.app.kubernetes.io/name`) is kept whole after the first part
    /// that names a mapping of free keys (`env`, `labels`, `data`).
    pub fn location(&self) -> Vec<PathPart<'_>> {
        let mut parts = Vec::new();
        let mut rest = self.path.as_str();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let (index, tail) = after.split_once(']').unwrap_or((after, ""));
                match index.parse() {
                    Ok(index) => parts.push(PathPart::Index(index)),
                    Err(_) => parts.push(PathPart::Key(index)),
                }
                rest = tail.strip_prefix('.').unwrap_or(tail);
                continue;
            }
            let free_keys =
                matches!(parts.last(), Some(PathPart::Key(key)) if FREE_KEYS.contains(key));
            let end = if free_keys {
                rest.len()
            } else {
                rest.find(['.', '[']).unwrap_or(rest.len())
            };
            parts.push(PathPart::Key(&rest[..end]));
            rest = &rest[end..];
            rest = rest.strip_prefix('.').unwrap_or(rest);
        }
        parts
    }
}

/// Mappings whose keys are the user's, so a dot in one is no path separator.
const FREE_KEYS: [&str; 3] = ["env", "labels", "data"];

/// One step of a [`FieldError`]'s path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPart<'a> {
    /// A key of a mapping.
    Key(&'a str),
    /// An index into a list.
    Index(usize),
}

/// The kinds of rule a spec can break, as [`FieldError::rule`] names them.
pub mod rule {
    /// A value that must be there is missing or empty.
    pub const REQUIRED: &str = "required";
    /// A key the schema does not have.
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    /// A value of the wrong type or an unknown choice (a number for a
    /// string, a framework moon does not know).
    pub const TYPE: &str = "type";
    /// A value in the wrong form (a name, a quantity, a label, an image).
    pub const FORMAT: &str = "format";
    /// A number or length out of its bounds.
    pub const RANGE: &str = "range";
    /// Something that must be unique appears twice.
    pub const UNIQUE: &str = "unique";
    /// The framework's rules for roles (PyTorch needs one master).
    pub const FRAMEWORK: &str = "framework";
    /// Meaningful elsewhere, but not where the spec is going (a field the
    /// Kubernetes rendering cannot express).
    pub const UNSUPPORTED: &str = "unsupported";
    /// Text that does not parse at all.
    pub const SYNTAX: &str = "syntax";
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// All broken rules of one spec, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// What can go wrong in moon-spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A spec broke one or more rules.
    #[error("invalid {kind}: {errors}")]
    InvalidSpec {
        /// `job`, `tenant` or `config`.
        kind: &'static str,
        /// Every broken rule.
        errors: FieldErrors,
    },
    /// A spec asks for something the chosen rendering cannot express; the
    /// message says what and why.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// An object read back does not hold what moon wrote into it (an
    /// anchor without its spec, say).
    #[error("malformed object: {0}")]
    Malformed(String),
    /// A job ended Failed or Cancelled ([`JobStatus::into_result`](crate::status::JobStatus::into_result)).
    #[error("job {job} {phase}: {reason}")]
    JobFailed {
        /// `tenant/name`.
        job: String,
        /// `failed` or `cancelled`.
        phase: String,
        /// Why, as recorded.
        reason: String,
    },
}

impl Error {
    /// A one-error `InvalidSpec`.
    pub fn invalid(
        kind: &'static str,
        path: impl Into<String>,
        rule: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Error::InvalidSpec {
            kind,
            errors: FieldErrors(vec![FieldError::new(path, rule, message)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::job_from_yaml;

    fn first_error(yaml: &str) -> FieldError {
        match job_from_yaml(yaml) {
            Err(Error::InvalidSpec { errors, .. }) => errors.0[0].clone(),
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
    }

    #[test]
    fn each_error_names_its_rule() {
        let job = "name: a\ntenant: t\nframework: custom\nroles: [{name: main, command: [x]";
        let cases = [
            (
                format!("{job}, bogus: 1}}]"),
                "roles[0].bogus",
                rule::UNKNOWN_FIELD,
            ),
            ("name: a\nroles: []".to_string(), "", rule::REQUIRED),
            (
                format!("{job}, replicas: x}}]"),
                "roles[0].replicas",
                rule::TYPE,
            ),
            (
                format!("{job}, replicas: 0}}]"),
                "roles[0].replicas",
                rule::RANGE,
            ),
            (
                format!("{job}, cpus: lots}}]"),
                "roles[0].cpus",
                rule::FORMAT,
            ),
            (
                "name: a\ntenant: t\nframework: pytorch\nroles: [{name: worker, command: [x]}]"
                    .to_string(),
                "roles",
                rule::FRAMEWORK,
            ),
            ("{name: a".to_string(), "", rule::SYNTAX),
        ];
        for (yaml, path, rule) in cases {
            let error = first_error(&yaml);
            assert_eq!(
                (error.path.as_str(), error.rule.as_str()),
                (path, rule),
                "{yaml}"
            );
        }
    }

    #[test]
    fn a_path_splits_into_keys_and_indexes() {
        let at = |path: &str| FieldError::new(path, rule::FORMAT, "x").location().len();
        let error = FieldError::new("roles[1].env.MY_VAR", rule::FORMAT, "x");
        assert_eq!(
            error.location(),
            [
                PathPart::Key("roles"),
                PathPart::Index(1),
                PathPart::Key("env"),
                PathPart::Key("MY_VAR")
            ]
        );
        let label = FieldError::new("labels.app.kubernetes.io/name", rule::FORMAT, "x");
        assert_eq!(
            label.location(),
            [
                PathPart::Key("labels"),
                PathPart::Key("app.kubernetes.io/name")
            ]
        );
        assert_eq!(at(""), 0);
        assert_eq!(at("name"), 1);
        assert_eq!(at("[0]"), 1);
    }
}
