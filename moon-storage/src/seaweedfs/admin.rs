//! Preparing a filer for one user of it: a directory, and the rule that sends what is written
//! below it to a collection of its own.
//!
//! The filer keeps such rules in its own file `/etc/seaweedfs/filer.conf` (what `weed shell`'s
//! `fs.configure` edits) and reloads it whenever that file changes; every write below a rule's
//! prefix then goes to the rule's collection, replication and TTL, whoever writes it. Rules for
//! other prefixes, and any setting moon does not know, are kept as they are.

use bytes::Bytes;
use reqwest::Body;
use serde_json::{Map, Value};

use super::SeaweedStore;
use super::http::unavailable;
use crate::error::Result;

/// The filer's path-specific configuration.
const FILER_CONF: &str = "/etc/seaweedfs/filer.conf";

/// What the filer applies to every file written below `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocationRule {
    /// A directory, written with a trailing `/` (`/tenants/vision/`).
    pub prefix: String,
    /// The collection the files' data goes to.
    pub collection: Option<String>,
    /// SeaweedFS's replication code (`000`).
    pub replication: Option<String>,
    /// How long the files live (`30d`).
    pub ttl: Option<String>,
}

impl LocationRule {
    /// The rule's settings as the filer writes them, leaving out those not set.
    fn fields(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("locationPrefix", Some(self.prefix.as_str())),
            ("collection", self.collection.as_deref()),
            ("replication", self.replication.as_deref()),
            ("ttl", self.ttl.as_deref()),
        ]
    }

    fn matches(&self, location: &Map<String, Value>) -> bool {
        self.fields().iter().all(|(key, wanted)| {
            let found = location
                .get(*key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            found == *wanted
        })
    }
}

impl SeaweedStore {
    /// Makes the store's root directory (and its parents); an existing one is no error.
    pub async fn create_root(&self) -> Result<()> {
        self.filer.mkdir(&self.root).await
    }

    /// Sets the filer's rule for `rule.prefix`, replacing any other rule for that prefix;
    /// answers whether the filer's configuration changed.
    ///
    /// The configuration is read, changed and written back whole: two processes setting rules
    /// at the same moment can lose one, so provisioning sets them one at a time.
    pub async fn set_location_rule(&self, rule: &LocationRule) -> Result<bool> {
        let mut conf = self.filer_conf().await?;
        let locations = locations(&mut conf)?;
        let same_prefix = |location: &Value| {
            location.get("locationPrefix").and_then(Value::as_str) == Some(rule.prefix.as_str())
        };
        let existing: Vec<&Value> = locations.iter().filter(|l| same_prefix(l)).collect();
        if let [only] = existing.as_slice()
            && only.as_object().is_some_and(|o| rule.matches(o))
        {
            return Ok(false);
        }
        // A rule keeps settings moon does not set (disk type, fsync, ...) across changes.
        let mut location = existing
            .first()
            .and_then(|l| l.as_object().cloned())
            .unwrap_or_default();
        for (key, value) in rule.fields() {
            match value {
                Some(value) => location.insert(key.to_string(), Value::from(value)),
                None => location.remove(key),
            };
        }
        locations.retain(|l| !same_prefix(l));
        locations.push(Value::Object(location));
        self.write_filer_conf(&conf).await?;
        Ok(true)
    }

    /// The filer's rule for exactly `prefix`, if it has one.
    pub async fn location_rule(&self, prefix: &str) -> Result<Option<LocationRule>> {
        let mut conf = self.filer_conf().await?;
        let text = |location: &Map<String, Value>, key: &str| {
            location
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Ok(locations(&mut conf)?
            .iter()
            .filter_map(Value::as_object)
            .find(|l| l.get("locationPrefix").and_then(Value::as_str) == Some(prefix))
            .map(|l| LocationRule {
                prefix: prefix.to_string(),
                collection: text(l, "collection"),
                replication: text(l, "replication"),
                ttl: text(l, "ttl"),
            }))
    }

    /// Removes the filer's rule for `prefix`; answers whether there was one.
    pub async fn remove_location_rule(&self, prefix: &str) -> Result<bool> {
        let mut conf = self.filer_conf().await?;
        let locations = locations(&mut conf)?;
        let before = locations.len();
        locations.retain(|l| l.get("locationPrefix").and_then(Value::as_str) != Some(prefix));
        if locations.len() == before {
            return Ok(false);
        }
        self.write_filer_conf(&conf).await?;
        Ok(true)
    }

    async fn filer_conf(&self) -> Result<Value> {
        // The filer keeps its own files inside their entries, and SeaweedFS 4.48 answers a plain
        // read of such a file with an empty body (its entry says size 0): the content is read
        // from the entry's metadata instead.
        let bytes = match self.filer.entry(FILER_CONF).await? {
            None => return Ok(Value::Object(Map::new())),
            Some(entry) => match entry.inline_content() {
                Some(content) => Bytes::from(content),
                None => self.filer.read_small(FILER_CONF).await?.unwrap_or_default(),
            },
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Map::new()));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            unavailable(format!(
                "{} holds a {FILER_CONF} that is not JSON: {e}",
                self.filer.shown
            ))
        })
    }

    async fn write_filer_conf(&self, conf: &Value) -> Result<()> {
        let text = serde_json::to_vec_pretty(conf).expect("JSON values serialize");
        match self
            .filer
            .upload(FILER_CONF, Body::from(Bytes::from(text)))
            .await?
        {
            Ok(_) => Ok(()),
            Err(failed) => Err(super::http::transport_error(&failed.0, &self.filer.shown)),
        }
    }
}

/// The `locations` list of a filer configuration, made when missing.
fn locations(conf: &mut Value) -> Result<&mut Vec<Value>> {
    let Some(object) = conf.as_object_mut() else {
        return Err(unavailable(format!("{FILER_CONF} is not a JSON object")));
    };
    let list = object
        .entry("locations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if list.is_null() {
        *list = Value::Array(Vec::new());
    }
    list.as_array_mut()
        .ok_or_else(|| unavailable(format!("{FILER_CONF}'s locations are not a list")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_matches_only_the_settings_it_names() {
        let rule = LocationRule {
            prefix: "/tenants/vision/".into(),
            collection: Some("moon-vision".into()),
            replication: None,
            ttl: None,
        };
        let location = |json: &str| serde_json::from_str::<Map<String, Value>>(json).unwrap();
        assert!(rule.matches(&location(
            r#"{"locationPrefix":"/tenants/vision/","collection":"moon-vision","fsync":true}"#
        )));
        // An empty string is how the filer writes a setting that is not set.
        assert!(rule.matches(&location(
            r#"{"locationPrefix":"/tenants/vision/","collection":"moon-vision","ttl":""}"#
        )));
        assert!(!rule.matches(&location(
            r#"{"locationPrefix":"/tenants/vision/","collection":"moon-vision","ttl":"1d"}"#
        )));
        assert!(!rule.matches(&location(
            r#"{"locationPrefix":"/tenants/vision/","collection":"other"}"#
        )));
    }

    #[test]
    fn locations_are_made_when_missing_and_refused_when_malformed() {
        let mut conf = serde_json::json!({"version": 0});
        assert!(locations(&mut conf).unwrap().is_empty());
        let mut conf = serde_json::json!({"locations": null});
        assert!(locations(&mut conf).unwrap().is_empty());
        let mut conf = serde_json::json!({"locations": 3});
        assert!(locations(&mut conf).is_err());
    }
}
