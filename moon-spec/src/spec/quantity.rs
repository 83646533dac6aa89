//! Resource quantities as users write them: `2`, `0.5`, `"500m"` for CPUs and
//! `"8Gi"`, `"512Mi"`, `1073741824` for memory, in the notation Kubernetes uses.
//!
//! A quantity is kept as written so that validation can report every bad value
//! at once, and is converted to whole units (millicores, bytes) on demand.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A quantity exactly as it appeared in a spec: a number or a string.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Quantity {
    /// A whole number (`2`).
    Int(u64),
    /// A fractional number (`0.5`).
    Float(f64),
    /// A string with an optional suffix (`"500m"`, `"8Gi"`).
    Text(String),
}

const CPU_FORM: &str = "must be a number of CPUs or millicores, such as 2, 0.5 or \"500m\"";
const MEMORY_FORM: &str =
    "must be a number of bytes, optionally with a unit Ki, Mi, Gi, Ti, Pi, k, M, G, T or P";

impl Quantity {
    /// CPUs in thousandths of a core; `"500m"` and `0.5` are both 500.
    pub fn millicores(&self) -> Result<u64, String> {
        let value = match self {
            Quantity::Int(n) => match n.checked_mul(1000) {
                Some(millicores) => return Ok(millicores),
                None => return Err(self.too_large("millicores")),
            },
            Quantity::Float(f) => f * 1000.0,
            Quantity::Text(text) => {
                let text = text.trim();
                let parsed = match text.strip_suffix('m') {
                    Some(milli) => milli.parse::<f64>(),
                    None => text.parse::<f64>().map(|cpus| cpus * 1000.0),
                };
                parsed.map_err(|_| self.problem(CPU_FORM))?
            }
        };
        self.whole(value, "millicores")
    }

    /// Memory in bytes; accepts the binary (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`) and
    /// decimal (`k`, `M`, `G`, `T`, `P`) suffixes of Kubernetes, and plain or
    /// exponent notation (`1073741824`, `"1e9"`).
    pub fn bytes(&self) -> Result<u64, String> {
        let value = match self {
            Quantity::Int(n) => return Ok(*n),
            Quantity::Float(f) => *f,
            Quantity::Text(text) => {
                let text = text.trim();
                // Checked first so that the `e` of an exponent is not taken for a unit.
                if let Ok(value) = text.parse::<f64>() {
                    value
                } else {
                    let split = text
                        .find(|c: char| c.is_ascii_alphabetic())
                        .unwrap_or(text.len());
                    let (number, suffix) = text.split_at(split);
                    let factor = match suffix {
                        "Ki" => 1024.0,
                        "Mi" => 1024f64.powi(2),
                        "Gi" => 1024f64.powi(3),
                        "Ti" => 1024f64.powi(4),
                        "Pi" => 1024f64.powi(5),
                        "k" => 1e3,
                        "M" => 1e6,
                        "G" => 1e9,
                        "T" => 1e12,
                        "P" => 1e15,
                        _ => return Err(self.problem(MEMORY_FORM)),
                    };
                    let number: f64 = number.parse().map_err(|_| self.problem(MEMORY_FORM))?;
                    number * factor
                }
            }
        };
        self.whole(value, "bytes")
    }

    /// The quantity as the user wrote it, quoted when it was a string, for
    /// messages of the form "must be ..., got X".
    pub(crate) fn written(&self) -> String {
        match self {
            Quantity::Text(text) => format!("{text:?}"),
            other => other.to_string(),
        }
    }

    fn problem(&self, rule: &str) -> String {
        format!("{rule}, got {}", self.written())
    }

    /// Rounds an already scaled value to whole units.
    fn whole(&self, value: f64, unit: &str) -> Result<u64, String> {
        if value.is_nan() || value < 0.0 {
            return Err(self.problem("must be a non-negative number"));
        }
        let rounded = value.round();
        // u64::MAX is not representable: as f64 it rounds up to 2^64, which
        // must itself be refused rather than saturated, as must infinity (an
        // exponent such as 1e400 beyond what an f64 holds).
        if rounded >= u64::MAX as f64 {
            return Err(self.too_large(unit));
        }
        Ok(rounded as u64)
    }

    fn too_large(&self, unit: &str) -> String {
        self.problem(&format!("must be less than {} {unit}", u64::MAX))
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// Hand-written rather than derived with `untagged`, whose error for a value
/// of the wrong type ("data did not match any variant") names neither the
/// value nor what is expected.
struct QuantityVisitor;

impl Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a string such as \"500m\" or \"8Gi\"")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Quantity, E> {
        Ok(Quantity::Int(value))
    }

    // Negative and oversized numbers are kept rather than refused here, so
    // that validation reports them together with every other broken rule.
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Quantity, E> {
        Ok(match u64::try_from(value) {
            Ok(value) => Quantity::Int(value),
            Err(_) => Quantity::Float(value as f64),
        })
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Quantity, E> {
        Ok(match u64::try_from(value) {
            Ok(value) => Quantity::Int(value),
            Err(_) => Quantity::Float(value as f64),
        })
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Quantity, E> {
        Ok(match u64::try_from(value) {
            Ok(value) => Quantity::Int(value),
            Err(_) => Quantity::Float(value as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Quantity, E> {
        Ok(Quantity::Float(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Quantity, E> {
        Ok(Quantity::Text(value.to_string()))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Int(n) => write!(f, "{n}"),
            Quantity::Float(x) => write!(f, "{x}"),
            Quantity::Text(s) => f.write_str(s),
        }
    }
}

impl From<u64> for Quantity {
    fn from(value: u64) -> Self {
        Quantity::Int(value)
    }
}

impl From<&str> for Quantity {
    fn from(value: &str) -> Self {
        Quantity::Text(value.to_string())
    }
}

/// Millicores as a person reads them: `2`, `0.5`.
pub fn format_cpus(millicores: u64) -> String {
    if millicores % 1000 == 0 {
        format!("{}", millicores / 1000)
    } else {
        let text = format!("{:.3}", millicores as f64 / 1000.0);
        text.trim_end_matches('0').to_string()
    }
}

/// Bytes in the largest binary unit that divides them: `8Gi`, `1536Mi`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_accept_numbers_and_millicores() {
        assert_eq!(Quantity::Int(2).millicores(), Ok(2000));
        assert_eq!(Quantity::Float(0.5).millicores(), Ok(500));
        assert_eq!(Quantity::from("250m").millicores(), Ok(250));
        assert_eq!(Quantity::from("1.5").millicores(), Ok(1500));
        assert_eq!(
            Quantity::from("two").millicores(),
            Err(
                r#"must be a number of CPUs or millicores, such as 2, 0.5 or "500m", got "two""#
                    .into()
            )
        );
        assert_eq!(
            Quantity::Float(-1.0).millicores(),
            Err("must be a non-negative number, got -1".into())
        );
        assert_eq!(
            Quantity::from("-500m").millicores(),
            Err(r#"must be a non-negative number, got "-500m""#.into())
        );
    }

    #[test]
    fn memory_accepts_kubernetes_suffixes() {
        assert_eq!(Quantity::from("1Gi").bytes(), Ok(1 << 30));
        assert_eq!(Quantity::from("512Mi").bytes(), Ok(512 << 20));
        assert_eq!(Quantity::from("2G").bytes(), Ok(2_000_000_000));
        assert_eq!(Quantity::from("1e3").bytes(), Ok(1000));
        assert_eq!(Quantity::Int(4096).bytes(), Ok(4096));
        assert_eq!(
            Quantity::from("3GB").bytes(),
            Err(r#"must be a number of bytes, optionally with a unit Ki, Mi, Gi, Ti, Pi, k, M, G, T or P, got "3GB""#.into())
        );
        assert_eq!(
            Quantity::from("-1Gi").bytes(),
            Err(r#"must be a non-negative number, got "-1Gi""#.into())
        );
    }

    #[test]
    fn values_beyond_64_bits_are_refused_not_saturated() {
        assert_eq!(
            Quantity::from("16384Pi").bytes(),
            Err(r#"must be less than 18446744073709551615 bytes, got "16384Pi""#.into())
        );
        assert!(Quantity::Int(u64::MAX).millicores().is_err());
        assert_eq!(Quantity::Int(u64::MAX).bytes(), Ok(u64::MAX));
    }

    #[test]
    fn wrong_types_name_what_is_expected() {
        let error = serde_yaml_ng::from_str::<Quantity>("true")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(r#"invalid type: boolean `true`, expected a number or a string such as "500m" or "8Gi""#),
            "{error}"
        );
        let parse = |text: &str| serde_yaml_ng::from_str::<Quantity>(text).unwrap();
        assert_eq!(parse("2"), Quantity::Int(2));
        assert_eq!(parse("0.5"), Quantity::Float(0.5));
        assert_eq!(parse("8Gi"), Quantity::from("8Gi"));
        // Kept so that validation can say "must be a non-negative number, got -3".
        assert_eq!(parse("-3"), Quantity::Float(-3.0));
    }

    #[test]
    fn formatting_is_compact() {
        assert_eq!(format_cpus(2000), "2");
        assert_eq!(format_cpus(500), "0.5");
        assert_eq!(format_bytes(8 << 30), "8Gi");
        assert_eq!(format_bytes(1536 << 20), "1536Mi");
        assert_eq!(format_bytes(1000), "1000");
    }
}
