//! GPU selectors: what a replica asks for, as a string (`"H100:2"`,
//! `"80GB+:1"`, `"A100|H100:4"`, `"H100,cc9.0+:8"`, `"2"`) or built in code.
//!
//! ```text
//! selector    = [ constraint *( "," constraint ) ":" ] count
//! constraint  = models / memory / capability
//! models      = model *( "|" model )        ; H100, A100-SXM4, RTX4090
//! memory      = number ( "GB" / "GiB" ) "+"  ; at least this much memory
//! capability  = ( "cc" / "sm" ) digits [ "." digits ] "+"   ; cc8.0+, sm90+
//! count       = 1*DIGIT                      ; at least 1
//! ```
//!
//! A model matches a device whose name, split into words at anything that is
//! not a letter or digit, has a run of consecutive words that spells the model
//! (case ignored): `H100` matches `NVIDIA H100 80GB HBM3` and the GPU Feature
//! Discovery label `NVIDIA-H100-80GB-HBM3`, `RTX4090` matches `NVIDIA GeForce
//! RTX 4090`, and `A100` does not match `NVIDIA RTX A1000`.
//!
//! Memory in `GB` is decimal, as GPUs are sold: an "80 GB" H100 reports
//! 81,559 MiB, which is 85.5 GB but only 79.6 GiB, so `80GB+` matches it and
//! `80GiB+` does not.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A CUDA compute capability (`9.0` for Hopper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ComputeCapability {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl fmt::Display for ComputeCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What a replica asks of its GPUs: how many, and what each must be.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct GpuSelector {
    /// How many devices.
    pub count: u32,
    /// Models any of which will do; empty means any model.
    pub models: Vec<String>,
    /// The least memory per device, in MiB.
    pub min_memory_mib: Option<u64>,
    /// The least compute capability.
    pub min_compute_capability: Option<ComputeCapability>,
}

const MIB: u64 = 1024 * 1024;
/// MiB in a decimal gigabyte, the unit GPUs are sold in (exact in an f64).
const GB_IN_MIB: f64 = 1_000_000_000.0 / MIB as f64;
/// The most memory a selector can ask for: as much as 64 bits count in
/// bytes, so that every size it holds prints and converts without overflow.
const MAX_MEMORY_MIB: u64 = u64::MAX / MIB;

/// `amount` of a unit `unit_mib` MiB large, rounded up to whole MiB. The
/// parser and `Display` both use it, so a size prints as text that parses
/// back to the same MiB.
fn whole_mib(amount: f64, unit_mib: f64) -> f64 {
    (amount * unit_mib).ceil()
}

impl GpuSelector {
    /// `count` devices of any model.
    pub fn any(count: u32) -> GpuSelector {
        GpuSelector {
            count,
            ..GpuSelector::default()
        }
    }

    /// Only these models.
    pub fn models<I, S>(mut self, models: I) -> GpuSelector
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }

    /// Only devices with at least `gb` decimal gigabytes of memory.
    pub fn min_memory_gb(mut self, gb: u64) -> GpuSelector {
        let mib = (u128::from(gb) * 1_000_000_000).div_ceil(u128::from(MIB));
        self.min_memory_mib = Some(u64::try_from(mib).unwrap_or(u64::MAX));
        self
    }

    /// Only devices of at least this compute capability.
    pub fn min_compute_capability(mut self, major: u32, minor: u32) -> GpuSelector {
        self.min_compute_capability = Some(ComputeCapability { major, minor });
        self
    }

    /// Whether a device of this model, memory and capability qualifies.
    pub fn accepts(
        &self,
        model: &str,
        memory_mib: u64,
        capability: Option<ComputeCapability>,
    ) -> bool {
        self.accepts_model(model)
            && self.min_memory_mib.is_none_or(|least| memory_mib >= least)
            && self
                .min_compute_capability
                .is_none_or(|least| capability.is_some_and(|cc| cc >= least))
    }

    /// Whether a device named `model` is one of the models asked for.
    pub fn accepts_model(&self, model: &str) -> bool {
        self.models.is_empty()
            || self
                .models
                .iter()
                .any(|wanted| model_matches(wanted, model))
    }
}

/// Whether `name` has a run of consecutive words that spells `wanted`.
pub fn model_matches(wanted: &str, name: &str) -> bool {
    let wanted: String = wanted
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if wanted.is_empty() {
        return false;
    }
    let words: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    (0..words.len()).any(|start| {
        let mut run = String::new();
        for word in &words[start..] {
            run.push_str(word);
            if run.len() >= wanted.len() {
                return run == wanted;
            }
        }
        false
    })
}

impl fmt::Display for GpuSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut constraints = Vec::new();
        if !self.models.is_empty() {
            constraints.push(self.models.join("|"));
        }
        if let Some(mib) = self.min_memory_mib {
            constraints.push(memory_text(mib));
        }
        if let Some(cc) = self.min_compute_capability {
            constraints.push(format!("cc{cc}+"));
        }
        if constraints.is_empty() {
            write!(f, "{}", self.count)
        } else {
            write!(f, "{}:{}", constraints.join(","), self.count)
        }
    }
}

/// A memory size as a selector writes it: whole GiB when it is that, else
/// the whole GB it was most likely written as, else GiB with a fraction
/// (exact, as MiB / 1024 is in an f64), so that it always parses back to
/// the same MiB: `0.5GB+` is 477 MiB, which no whole number of GB is.
fn memory_text(mib: u64) -> String {
    if mib % 1024 == 0 {
        return format!("{}GiB+", mib / 1024);
    }
    let gb = u128::from(mib) * u128::from(MIB) / 1_000_000_000;
    if gb > 0 && whole_mib(gb as f64, GB_IN_MIB) == mib as f64 {
        return format!("{gb}GB+");
    }
    format!("{}GiB+", mib as f64 / 1024.0)
}

impl FromStr for GpuSelector {
    type Err = Error;

    fn from_str(input: &str) -> Result<GpuSelector> {
        Parser { input }.parse()
    }
}

impl Serialize for GpuSelector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GpuSelector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

struct Parser<'a> {
    input: &'a str,
}

impl Parser<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> Error {
        Error::InvalidSelector {
            input: self.input.to_string(),
            column: self.input[..offset.min(self.input.len())].chars().count() + 1,
            message: message.into(),
        }
    }

    fn parse(&self) -> Result<GpuSelector> {
        let (constraints, count_at) = match self.input.rfind(':') {
            Some(colon) => (Some(&self.input[..colon]), colon + 1),
            None => (None, 0),
        };
        let mut selector = GpuSelector {
            count: self.count(count_at)?,
            ..GpuSelector::default()
        };
        let Some(constraints) = constraints else {
            return Ok(selector);
        };
        let mut offset = 0;
        for term in constraints.split(',') {
            self.constraint(term, offset, &mut selector)?;
            offset += term.len() + 1;
        }
        Ok(selector)
    }

    fn count(&self, at: usize) -> Result<u32> {
        let text = &self.input[at..];
        let trimmed = text.trim();
        let start = at + (text.len() - text.trim_start().len());
        if trimmed.is_empty() {
            return Err(self.error(start, "expected a count of GPUs (a whole number)"));
        }
        match trimmed.parse::<u32>() {
            Ok(0) => Err(self.error(start, "the count must be at least 1")),
            Ok(count) => Ok(count),
            Err(_) => Err(self.error(
                start,
                format!("expected a count of GPUs (a whole number), got {trimmed:?}"),
            )),
        }
    }

    fn constraint(&self, term: &str, offset: usize, selector: &mut GpuSelector) -> Result<()> {
        let start = offset + (term.len() - term.trim_start().len());
        let text = term.trim();
        if text.is_empty() {
            return Err(self.error(
                start,
                "expected a model, a memory size (80GB+) or a compute capability (cc8.0+)",
            ));
        }
        let lower = text.to_ascii_lowercase();
        if let Some(body) = lower.strip_suffix('+') {
            if let Some(digits) = body.strip_prefix("cc").or_else(|| body.strip_prefix("sm")) {
                return self.capability(digits, start, selector);
            }
            return self.memory(body, start, selector);
        }
        if selector.models.is_empty() {
            let mut at = start;
            for model in text.split('|') {
                let trimmed = model.trim();
                if trimmed.is_empty()
                    || !trimmed
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_ ".contains(c))
                {
                    return Err(self.error(
                        at,
                        format!(
                            "expected a model name of letters, digits and '-', got {trimmed:?}"
                        ),
                    ));
                }
                selector.models.push(trimmed.to_string());
                at += model.len() + 1;
            }
            return Ok(());
        }
        Err(self.error(
            start,
            format!("models are given once, as A100|H100; {text:?} would be a second list (a memory size or capability ends with '+')"),
        ))
    }

    fn memory(&self, body: &str, start: usize, selector: &mut GpuSelector) -> Result<()> {
        let (number, unit_mib) = if let Some(number) = body.strip_suffix("gib") {
            (number, 1024.0)
        } else if let Some(number) = body.strip_suffix("gb") {
            (number, GB_IN_MIB)
        } else {
            return Err(self.error(
                start,
                format!("expected a memory size such as 80GB+ or 40GiB+, got {body:?}+"),
            ));
        };
        let amount: f64 = number
            .trim()
            .parse()
            .ok()
            .filter(|amount: &f64| amount.is_finite() && *amount > 0.0)
            .ok_or_else(|| {
                self.error(
                    start,
                    format!("expected a positive number of GB, got {number:?}"),
                )
            })?;
        let mib = whole_mib(amount, unit_mib);
        if mib > MAX_MEMORY_MIB as f64 {
            return Err(self.error(
                start,
                format!("expected a memory size below 16 EiB, got {number:?}"),
            ));
        }
        if selector.min_memory_mib.is_some() {
            return Err(self.error(start, "memory is given once"));
        }
        selector.min_memory_mib = Some(mib as u64);
        Ok(())
    }

    fn capability(&self, digits: &str, start: usize, selector: &mut GpuSelector) -> Result<()> {
        let parsed = match digits.split_once('.') {
            Some((major, minor)) => major.parse().ok().zip(minor.parse().ok()),
            // sm90 / cc90: the last digit is the minor version.
            None if digits.len() >= 2 && digits.chars().all(|c| c.is_ascii_digit()) => {
                let (major, minor) = digits.split_at(digits.len() - 1);
                major.parse().ok().zip(minor.parse().ok())
            }
            None => digits.parse().ok().map(|major| (major, 0)),
        };
        let (major, minor) = parsed.ok_or_else(|| {
            self.error(
                start,
                format!("expected a compute capability such as cc8.0+ or sm90+, got {digits:?}"),
            )
        })?;
        if selector.min_compute_capability.is_some() {
            return Err(self.error(start, "the compute capability is given once"));
        }
        selector.min_compute_capability = Some(ComputeCapability { major, minor });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> GpuSelector {
        text.parse()
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    fn error(text: &str) -> String {
        text.parse::<GpuSelector>().unwrap_err().to_string()
    }

    #[test]
    fn the_documented_forms_parse() {
        assert_eq!(parse("2"), GpuSelector::any(2));
        assert_eq!(parse("H100:2"), GpuSelector::any(2).models(["H100"]));
        assert_eq!(
            parse("A100|H100:4"),
            GpuSelector::any(4).models(["A100", "H100"])
        );
        assert_eq!(parse("80GB+:1"), GpuSelector::any(1).min_memory_gb(80));
        assert_eq!(
            parse("H100, 80GB+, cc9.0+ : 8"),
            GpuSelector::any(8)
                .models(["H100"])
                .min_memory_gb(80)
                .min_compute_capability(9, 0)
        );
        assert_eq!(
            parse("sm90+:1"),
            GpuSelector::any(1).min_compute_capability(9, 0)
        );
        assert_eq!(parse("40GiB+:1").min_memory_mib, Some(40 * 1024));
    }

    #[test]
    fn selectors_print_as_they_parse() {
        for text in [
            "2",
            "H100:2",
            "A100|H100:4",
            "80GB+:1",
            "40GiB+:1",
            "H100,80GB+,cc9.0+:8",
        ] {
            assert_eq!(parse(text).to_string(), text);
            assert_eq!(parse(&parse(text).to_string()), parse(text));
        }
    }

    #[test]
    fn memory_not_in_whole_gb_prints_as_exact_gib() {
        // 0.5 GB is 476.8 MiB, asked for as 477, which no whole GB is.
        let half = parse("0.5GB+:1");
        assert_eq!(half.min_memory_mib, Some(477));
        assert_eq!(half.to_string(), "0.4658203125GiB+:1");
        assert_eq!(parse(&half.to_string()), half);
        assert_eq!(parse("1.5GiB+:1").to_string(), "1.5GiB+:1");
    }

    #[test]
    fn memory_beyond_64_bits_of_bytes_is_refused() {
        assert_eq!(
            error("1e300GB+:1"),
            "gpu selector \"1e300GB+:1\", column 1: expected a memory size below 16 EiB, got \"1e300\""
        );
        assert_eq!(
            parse("17179869183GiB+:1").min_memory_mib,
            Some(17_179_869_183 * 1024)
        );
        assert!(error("17179869184GiB+:1").contains("below 16 EiB"));
        let huge = GpuSelector::any(1).min_memory_gb(u64::MAX);
        assert_eq!(huge.min_memory_mib, Some(u64::MAX));
        // Set in code beyond what parsing allows, it still prints.
        assert!(huge.to_string().ends_with("+:1"));
    }

    #[test]
    fn errors_say_where_the_string_went_wrong() {
        assert_eq!(
            error("H100:x"),
            "gpu selector \"H100:x\", column 6: expected a count of GPUs (a whole number), got \"x\""
        );
        assert_eq!(
            error("H100:"),
            "gpu selector \"H100:\", column 6: expected a count of GPUs (a whole number)"
        );
        assert_eq!(
            error("H100:0"),
            "gpu selector \"H100:0\", column 6: the count must be at least 1"
        );
        assert_eq!(
            error("H100,80TB+:1"),
            "gpu selector \"H100,80TB+:1\", column 6: expected a memory size such as 80GB+ or 40GiB+, got \"80tb\"+"
        );
        assert_eq!(
            error("A100|:2"),
            "gpu selector \"A100|:2\", column 6: expected a model name of letters, digits and '-', got \"\""
        );
        assert_eq!(
            error("ccX+:1"),
            "gpu selector \"ccX+:1\", column 1: expected a compute capability such as cc8.0+ or sm90+, got \"x\""
        );
        assert_eq!(
            error("H100,,80GB+:1"),
            "gpu selector \"H100,,80GB+:1\", column 6: expected a model, a memory size (80GB+) or a compute capability (cc8.0+)"
        );
        assert!(error("H100,A100:1").contains("models are given once"));
    }

    #[test]
    fn models_match_whole_words_of_the_name() {
        let h100 = "NVIDIA H100 80GB HBM3";
        assert!(model_matches("H100", h100));
        assert!(model_matches("h100", "NVIDIA-H100-80GB-HBM3"));
        assert!(model_matches("RTX4090", "NVIDIA GeForce RTX 4090"));
        assert!(model_matches("A100-SXM4", "NVIDIA A100-SXM4-40GB"));
        assert!(!model_matches("A100", "NVIDIA RTX A1000"));
        assert!(!model_matches("H10", h100));
        assert!(!model_matches("", h100));
    }

    #[test]
    fn memory_is_decimal_in_gb_and_binary_in_gib() {
        let h100_mib = 81_559;
        assert!(parse("80GB+:1").accepts("H100", h100_mib, None));
        assert!(!parse("80GiB+:1").accepts("H100", h100_mib, None));
        assert!(parse("40GB+:1").accepts("A100", 40_960, None));
        let hopper = Some(ComputeCapability { major: 9, minor: 0 });
        assert!(parse("cc8.0+:1").accepts("H100", h100_mib, hopper));
        assert!(!parse("cc9.0+:1").accepts(
            "A100",
            40_960,
            Some(ComputeCapability { major: 8, minor: 0 })
        ));
        assert!(!parse("cc9.0+:1").accepts("mystery", 1, None));
    }
}
