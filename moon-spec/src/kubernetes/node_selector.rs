//! Node selectors written as labels are on a command line:
//! `key=value[,key=value...]`.

use std::collections::BTreeMap;

use crate::error::{Error, Result, rule};

/// Parses `key=value[,...]`: the node labels every replica's pod asks for.
/// Keys and values are checked as Kubernetes checks labels.
pub fn parse_node_selector(text: &str) -> Result<BTreeMap<String, String>> {
    let mut selector = BTreeMap::new();
    for (i, item) in text.split(',').map(str::trim).enumerate() {
        let problem = |message: String| {
            Error::invalid(
                "config",
                format!("nodeSelector[{i}]"),
                rule::FORMAT,
                message,
            )
        };
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| problem(format!("{item:?} is not key=value")))?;
        if let Some(message) = crate::spec::label_problem(key, value) {
            return Err(problem(message));
        }
        selector.insert(key.to_string(), value.to_string());
    }
    Ok(selector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_read_as_key_value_pairs() {
        let selector = parse_node_selector("pool=gpu, topology.kubernetes.io/zone=a").unwrap();
        assert_eq!(selector["pool"], "gpu");
        assert_eq!(selector["topology.kubernetes.io/zone"], "a");
    }

    #[test]
    fn a_broken_pair_names_its_position_and_the_rule() {
        let error = parse_node_selector("pool=gpu,zone").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid config: nodeSelector[1]: \"zone\" is not key=value"
        );
        assert!(parse_node_selector("bad key=x").is_err());
    }
}
