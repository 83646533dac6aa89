//! Tolerations written as `kubectl taint` writes taints, for the settings
//! of a backend or a command line: `key[=value]:Effect[,...]`.

use k8s_openapi::api::core::v1::Toleration;

use crate::error::{Error, Result, rule};

/// Parses `key[=value]:Effect[,...]`: the taints to tolerate, as `kubectl
/// taint` writes them. A taint without a value is tolerated whatever its
/// value (`operator: Exists`).
pub fn parse_tolerations(text: &str) -> Result<Vec<Toleration>> {
    const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
    let mut tolerations = Vec::new();
    for (i, item) in text.split(',').map(str::trim).enumerate() {
        let problem = |message: String| {
            Error::invalid("config", format!("tolerations[{i}]"), rule::FORMAT, message)
        };
        let (taint, effect) = item.rsplit_once(':').ok_or_else(|| {
            problem(format!(
                "{item:?} has no effect: write key[=value]:NoSchedule"
            ))
        })?;
        if !EFFECTS.contains(&effect) {
            return Err(problem(format!(
                "effect {effect:?} is not one of {}",
                EFFECTS.join(", ")
            )));
        }
        let (key, value) = match taint.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (taint, None),
        };
        if key.is_empty() {
            return Err(problem(format!("{item:?} has no key")));
        }
        tolerations.push(Toleration {
            key: Some(key.to_string()),
            operator: Some(if value.is_some() { "Equal" } else { "Exists" }.to_string()),
            value: value.map(str::to_string),
            effect: Some(effect.to_string()),
            toleration_seconds: None,
        });
    }
    Ok(tolerations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_are_read_as_kubectl_writes_taints() {
        let parsed =
            parse_tolerations("kwok.x-k8s.io/node:NoSchedule, dedicated=ml:NoExecute").unwrap();
        assert_eq!(parsed[0].key.as_deref(), Some("kwok.x-k8s.io/node"));
        assert_eq!(parsed[0].operator.as_deref(), Some("Exists"));
        assert_eq!(parsed[0].value, None);
        assert_eq!(parsed[1].operator.as_deref(), Some("Equal"));
        assert_eq!(parsed[1].value.as_deref(), Some("ml"));
        assert_eq!(parsed[1].effect.as_deref(), Some("NoExecute"));
    }

    #[test]
    fn a_broken_toleration_names_its_position_and_the_rule() {
        let error = parse_tolerations("a:NoSchedule,b:Sometimes").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid config: tolerations[1]: effect \"Sometimes\" is not one of NoSchedule, PreferNoSchedule, NoExecute"
        );
        let error = parse_tolerations("gpu").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid config: tolerations[0]: \"gpu\" has no effect: write key[=value]:NoSchedule"
        );
    }
}
