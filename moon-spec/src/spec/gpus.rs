//! A role's GPUs per replica: a count of any model (`gpus: 2`) or a
//! selector string (`gpus: "H100:2"`, `"80GB+:1"`, `"A100|H100:4"`; the
//! syntax is [`moon_gpu::selector`]'s).

use std::fmt;

use moon_gpu::GpuSelector;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// GPUs per replica. `Gpus::default()` is none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gpus(Option<GpuSelector>);

impl Gpus {
    /// `count` GPUs of any model (none for 0).
    pub fn any(count: u32) -> Gpus {
        Gpus((count > 0).then(|| GpuSelector::any(count)))
    }

    /// GPUs as a selector says.
    pub fn selected(selector: GpuSelector) -> Gpus {
        Gpus((selector.count > 0).then_some(selector))
    }

    /// How many, whatever their model.
    pub fn count(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |selector| u64::from(selector.count))
    }

    /// The selector, when there are GPUs at all.
    pub fn selector(&self) -> Option<&GpuSelector> {
        self.0.as_ref()
    }

    /// Whether the replica gets a GPU of any model (no model, memory or
    /// capability asked for).
    pub fn is_any_model(&self) -> bool {
        self.0.as_ref().is_none_or(|selector| {
            selector.models.is_empty()
                && selector.min_memory_mib.is_none()
                && selector.min_compute_capability.is_none()
        })
    }
}

impl fmt::Display for Gpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("0"),
            Some(selector) => write!(f, "{selector}"),
        }
    }
}

/// An integer when the count is all there is, so specs read back as written.
impl Serialize for Gpus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_any_model() {
            serializer.serialize_u64(self.count())
        } else {
            serializer.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for Gpus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Gpus;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of GPUs or a GPU selector such as \"H100:2\"")
            }

            fn visit_u64<E: serde::de::Error>(self, count: u64) -> Result<Gpus, E> {
                u32::try_from(count)
                    .map(Gpus::any)
                    .map_err(|_| E::custom(format!("{count} GPUs is more than any machine has")))
            }

            fn visit_i64<E: serde::de::Error>(self, count: i64) -> Result<Gpus, E> {
                match u64::try_from(count) {
                    Ok(count) => self.visit_u64(count),
                    Err(_) => Err(E::custom(format!("must be at least 0, got {count}"))),
                }
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Gpus, E> {
                // A plain number in quotes is a count too.
                if let Ok(count) = text.trim().parse::<u64>() {
                    return self.visit_u64(count);
                }
                text.parse::<GpuSelector>()
                    .map(Gpus::selected)
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Gpus, String> {
        serde_yaml_ng::from_str(yaml).map_err(|error| error.to_string())
    }

    #[test]
    fn counts_and_selectors_read_and_write_back_as_given() {
        assert_eq!(parse("2").unwrap(), Gpus::any(2));
        assert_eq!(parse("0").unwrap(), Gpus::default());
        assert_eq!(parse("'2'").unwrap(), Gpus::any(2));
        let h100 = parse("H100:2").unwrap();
        assert_eq!(h100.count(), 2);
        assert!(!h100.is_any_model());
        assert_eq!(serde_json::to_string(&h100).unwrap(), "\"H100:2\"");
        assert_eq!(serde_json::to_string(&Gpus::any(2)).unwrap(), "2");
        assert_eq!(serde_json::to_string(&Gpus::default()).unwrap(), "0");
    }

    #[test]
    fn a_broken_selector_says_where() {
        assert_eq!(
            parse("H100:two").unwrap_err(),
            "gpu selector \"H100:two\", column 6: expected a count of GPUs (a whole number), got \"two\""
        );
        assert_eq!(parse("-1").unwrap_err(), "must be at least 0, got -1");
    }
}
