//! Tenant secrets: named sets of variables that replicas get through
//! `envFrom` without their values ever appearing in a spec, the state
//! database, a plan, a log, an event or an error.
//!
//! [`SecretData`] holds the values and never shows them: its `Debug` and
//! `Display` print the keys only, and it has no `Serialize`, so a value can
//! reach a file or a message only through [`SecretData::expose`], called
//! where a backend stores the secret (a 0600 file, a Kubernetes Secret).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, rule};

/// A secret's keys and values. Shows its keys, never its values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretData(BTreeMap<String, String>);

impl SecretData {
    /// Data from keys and values; [`validate_secret`](crate::spec::validate_secret)
    /// checks it before a backend stores it.
    pub fn new(data: BTreeMap<String, String>) -> SecretData {
        SecretData(data)
    }

    /// Reads `KEY=VALUE` lines, as `docker --env-file` and
    /// `kubectl create secret --from-env-file` do: blank lines and lines
    /// starting with `#` are skipped, and the value is the rest of the line,
    /// quotes included. Errors give the line number, never its text.
    pub fn from_env_file(text: &str) -> Result<SecretData> {
        let mut data = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(Error::invalid(
                    "secret",
                    format!("line {}", number + 1),
                    rule::SYNTAX,
                    "must be KEY=VALUE",
                ));
            };
            data.insert(key.trim_end().to_string(), value.to_string());
        }
        Ok(SecretData(data))
    }

    /// The keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// Whether it has no key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values themselves, for the one place that stores or uses them.
    pub fn expose(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The values, by value, for the one place that stores or uses them.
    pub fn into_exposed(self) -> BTreeMap<String, String> {
        self.0
    }
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|key| (key, Redacted)))
            .finish()
    }
}

impl fmt::Display for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.0.keys().map(String::as_str).collect();
        write!(f, "secret with keys {}", keys.join(", "))
    }
}

struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A secret as listed: where it is and which keys it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    /// Its tenant.
    pub tenant: String,
    /// Its name.
    pub name: String,
    /// Its keys, sorted: the variables a role that names it gets.
    pub keys: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> SecretData {
        SecretData::new(BTreeMap::from([
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                "hunter2-s3cr3t".to_string(),
            ),
            ("AWS_ACCESS_KEY_ID".to_string(), "AKIA-visible".to_string()),
        ]))
    }

    #[test]
    fn debug_and_display_show_keys_not_values() {
        let debug = format!("{:?}", data());
        let display = data().to_string();
        for shown in [&debug, &display] {
            assert!(shown.contains("AWS_SECRET_ACCESS_KEY"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("AKIA"), "{shown}");
        }
        assert_eq!(
            debug,
            r#"{"AWS_ACCESS_KEY_ID": <redacted>, "AWS_SECRET_ACCESS_KEY": <redacted>}"#
        );
    }

    #[test]
    fn env_files_read_as_kubectl_reads_them() {
        let text = "# comment\n\nTOKEN=a=b \"c\"\n  EMPTY=\n";
        let data = SecretData::from_env_file(text).unwrap();
        assert_eq!(data.expose()["TOKEN"], "a=b \"c\"");
        assert_eq!(data.expose()["EMPTY"], "");
        assert_eq!(data.keys(), ["EMPTY", "TOKEN"]);
    }

    #[test]
    fn a_bad_env_file_line_is_named_by_number_not_text() {
        let error = SecretData::from_env_file("A=1\nhunter2\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid secret: line 2: must be KEY=VALUE"
        );
    }
}
