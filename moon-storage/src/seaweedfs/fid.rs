//! A blob's file id, as SeaweedFS's master assigns it.

use std::fmt;

use crate::error::{Error, Result};

/// A blob's file id: `VOLUME,KEYCOOKIE` (hex), as the master assigns it, or `VOLUME,KEYCOOKIE_N`
/// for the N-th further id of an assignment of several.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fid {
    raw: String,
    volume: u32,
}

impl Fid {
    /// Checks the form `VOLUME,HEX[_N]` (a decimal volume id, then the hex key and 8-digit
    /// cookie, then the optional decimal delta of the further ids of one assignment).
    pub fn parse(raw: &str) -> Result<Fid> {
        let bad = |reason: &str| Error::InvalidPath {
            path: raw
                .chars()
                .take(64)
                .flat_map(char::escape_default)
                .collect(),
            reason: reason.to_string(),
        };
        let (volume, key) = raw
            .split_once(',')
            .ok_or_else(|| bad("a file id is VOLUME,KEYCOOKIE, e.g. 3,01637037d6"))?;
        let volume = volume
            .parse::<u32>()
            .map_err(|_| bad("the volume id is not a number"))?;
        let (key, delta) = match key.split_once('_') {
            Some((key, delta)) => (key, Some(delta)),
            None => (key, None),
        };
        if key.len() <= 8 || key.len() > 24 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the key and cookie are 9 to 24 hex digits"));
        }
        if let Some(delta) = delta {
            let valid = delta.bytes().all(|b| b.is_ascii_digit())
                && delta.parse::<u32>().is_ok_and(|d| d > 0);
            if !valid {
                return Err(bad("the suffix after '_' is a positive decimal number"));
            }
        }
        Ok(Fid {
            raw: raw.to_string(),
            volume,
        })
    }

    /// The volume the blob is in.
    pub fn volume(&self) -> u32 {
        self.volume
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The `delta`-th further id of the assignment that gave this one (`FID_delta`).
    pub(crate) fn with_delta(&self, delta: u32) -> Fid {
        debug_assert!(
            !self.raw.contains('_'),
            "{} is already a further id",
            self.raw
        );
        Fid {
            raw: format!("{}_{delta}", self.raw),
            volume: self.volume,
        }
    }
}

impl fmt::Display for Fid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_are_checked() {
        let fid = Fid::parse("3,01637037d6").unwrap();
        assert_eq!(fid.volume(), 3);
        assert_eq!(fid.to_string(), "3,01637037d6");
        let further = fid.with_delta(15);
        assert_eq!(further.as_str(), "3,01637037d6_15");
        assert_eq!(Fid::parse("3,01637037d6_15").unwrap(), further);
        for bad in [
            "",
            "3",
            "x,01637037d6",
            "3,0163703",
            "3,0163703zz6",
            "3,01637037d6/x",
            "3,01637037d6_",
            "3,01637037d6_0",
            "3,01637037d6_x",
            "3,01637037d6_+1",
            "3,01637037d6_1_2",
            "3,_1",
        ] {
            assert!(
                matches!(Fid::parse(bad), Err(Error::InvalidPath { .. })),
                "{bad}"
            );
        }
    }
}
