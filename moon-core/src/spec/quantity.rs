//! Resource quantities as users write them: `2`, `0.5`, `"500m"` for CPUs and
//! `"8Gi"`, `"512Mi"`, `1073741824` for memory, in the notation Kubernetes uses.
//!
//! A quantity is kept as written so that validation can report every bad value
//! at once, and is converted to whole units (millicores, bytes) on demand.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A quantity exactly as it appeared in a spec: a number or a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Quantity {
    /// A whole number (`2`).
    Int(u64),
    /// A fractional number (`0.5`).
    Float(f64),
    /// A string with an optional suffix (`"500m"`, `"8Gi"`).
    Text(String),
}

impl Quantity {
    /// CPUs in thousandths of a core; `"500m"` and `0.5` are both 500.
    pub fn millicores(&self) -> Result<u64, String> {
        let scaled = match self {
            Quantity::Int(n) => n.checked_mul(1000).ok_or("is too large")?,
            Quantity::Float(f) => scale_float(*f, 1000.0)?,
            Quantity::Text(text) => {
                let text = text.trim();
                match text.strip_suffix('m') {
                    Some(milli) => parse_decimal(milli, 1.0)?,
                    None => parse_decimal(text, 1000.0)?,
                }
            }
        };
        Ok(scaled)
    }

    /// Memory in bytes; accepts the binary (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`) and
    /// decimal (`k`, `M`, `G`, `T`, `P`) suffixes of Kubernetes.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            Quantity::Int(n) => Ok(*n),
            Quantity::Float(f) => scale_float(*f, 1.0),
            Quantity::Text(text) => {
                let text = text.trim();
                let split = text
                    .find(|c: char| c.is_ascii_alphabetic())
                    .unwrap_or(text.len());
                let (number, suffix) = text.split_at(split);
                let factor = match suffix {
                    "" => 1.0,
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
                    other => {
                        return Err(format!(
                            "unknown unit {other:?} (use Ki, Mi, Gi, Ti, Pi, k, M, G, T or P)"
                        ));
                    }
                };
                parse_decimal(number, factor)
            }
        }
    }
}

fn parse_decimal(number: &str, factor: f64) -> Result<u64, String> {
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    scale_float(value, factor)
}

fn scale_float(value: f64, factor: f64) -> Result<u64, String> {
    if !value.is_finite() || value < 0.0 {
        return Err(format!("must be a non-negative number, got {value}"));
    }
    let scaled = (value * factor).round();
    if scaled > u64::MAX as f64 {
        return Err("is too large".into());
    }
    Ok(scaled as u64)
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
        assert!(Quantity::from("two").millicores().is_err());
        assert!(Quantity::Float(-1.0).millicores().is_err());
    }

    #[test]
    fn memory_accepts_kubernetes_suffixes() {
        assert_eq!(Quantity::from("1Gi").bytes(), Ok(1 << 30));
        assert_eq!(Quantity::from("512Mi").bytes(), Ok(512 << 20));
        assert_eq!(Quantity::from("2G").bytes(), Ok(2_000_000_000));
        assert_eq!(Quantity::Int(4096).bytes(), Ok(4096));
        let err = Quantity::from("3GB").bytes().unwrap_err();
        assert!(err.contains("unknown unit \"GB\""), "{err}");
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
