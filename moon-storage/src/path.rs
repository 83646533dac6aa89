//! Object paths that cannot leave their store.
//!
//! A [`StorePath`] is relative and made of `/`-separated segments. Every rule that keeps a path
//! inside its store's root is checked once, when the path is built, so backends can join it onto
//! their root without checking again.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The longest segment accepted, in bytes: the common filesystem limit for one name.
pub const MAX_SEGMENT_BYTES: usize = 255;
/// The longest path accepted, in bytes: the common filesystem limit for a whole path.
pub const MAX_PATH_BYTES: usize = 4096;

/// A validated, relative, `/`-separated object path.
///
/// Refused: an empty path, a leading `/` (absolute), a trailing `/` or `a//b` (empty segments),
/// `.` and `..` segments, NUL and every other control character, a segment over
/// [`MAX_SEGMENT_BYTES`] and a path over [`MAX_PATH_BYTES`]. Spaces and any Unicode are
/// accepted as they are; no normalisation is applied, so two paths are equal exactly when their
/// bytes are.
///
/// ```
/// use moon_storage::StorePath;
///
/// let p = StorePath::parse("runs/42/model weights.bin").unwrap();
/// assert_eq!(p.filename(), "model weights.bin");
/// assert_eq!(p.parent().unwrap().as_str(), "runs/42");
/// assert!(StorePath::parse("runs/../etc/passwd").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePath {
    raw: String,
}

impl StorePath {
    /// Validates `raw` as a path.
    pub fn parse(raw: &str) -> Result<Self> {
        if raw.is_empty() {
            return Err(invalid(raw, "the path is empty"));
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(invalid(
                raw,
                &format!(
                    "the path is {} bytes, over the limit of {MAX_PATH_BYTES}",
                    raw.len()
                ),
            ));
        }
        if raw.starts_with('/') {
            return Err(invalid(
                raw,
                "absolute paths are not allowed; paths are relative to the store",
            ));
        }
        for segment in raw.split('/') {
            check_segment(raw, segment)?;
        }
        Ok(StorePath {
            raw: raw.to_string(),
        })
    }

    /// The path as text, exactly as parsed.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The segments, first to last.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.raw.split('/')
    }

    /// The path with `child` appended; `child` may hold several segments (`"a/b"`).
    pub fn join(&self, child: &str) -> Result<StorePath> {
        StorePath::parse(&format!("{}/{child}", self.raw))
    }

    /// The path without its last segment, or `None` for a one-segment path.
    pub fn parent(&self) -> Option<StorePath> {
        self.raw.rsplit_once('/').map(|(parent, _)| StorePath {
            raw: parent.to_string(),
        })
    }

    /// The last segment.
    pub fn filename(&self) -> &str {
        self.raw.rsplit('/').next().unwrap_or(&self.raw)
    }

    /// Whether `self` is `other` or one of its ancestors, segment by segment: `a` is a prefix of
    /// `a/b` but not of `ab/c`.
    pub fn prefix_of(&self, other: &StorePath) -> bool {
        other.raw == self.raw
            || (other.raw.starts_with(&self.raw) && other.raw.as_bytes()[self.raw.len()] == b'/')
    }

    /// The segments of `other` below `self`, or `None` when `self` is not a strict ancestor of
    /// `other`.
    pub fn strip_prefix<'a>(&self, other: &'a StorePath) -> Option<&'a str> {
        other
            .raw
            .strip_prefix(&self.raw)
            .and_then(|rest| rest.strip_prefix('/'))
    }
}

fn check_segment(raw: &str, segment: &str) -> Result<()> {
    match segment {
        "" => Err(invalid(
            raw,
            "empty segment (a trailing '/' or '//' in the path)",
        )),
        "." => Err(invalid(raw, "'.' segments are not allowed")),
        ".." => Err(invalid(raw, "'..' segments are not allowed")),
        _ if segment.len() > MAX_SEGMENT_BYTES => Err(invalid(
            raw,
            &format!(
                "a segment is {} bytes, over the limit of {MAX_SEGMENT_BYTES}",
                segment.len()
            ),
        )),
        _ => match segment.chars().find(|c| c.is_control()) {
            Some(c) => Err(invalid(
                raw,
                &format!("control character {c:?} is not allowed"),
            )),
            None => Ok(()),
        },
    }
}

fn invalid(raw: &str, reason: &str) -> Error {
    // Escaped so a refused path cannot inject control characters into logs; long paths are cut.
    let mut shown: String = raw
        .chars()
        .take(200)
        .flat_map(char::escape_default)
        .collect();
    if raw.chars().count() > 200 {
        shown.push_str("...");
    }
    Error::InvalidPath {
        path: shown,
        reason: reason.to_string(),
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for StorePath {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        StorePath::parse(s)
    }
}

impl TryFrom<&str> for StorePath {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self> {
        StorePath::parse(s)
    }
}

impl AsRef<str> for StorePath {
    fn as_ref(&self) -> &str {
        &self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reason(raw: &str) -> String {
        match StorePath::parse(raw) {
            Err(Error::InvalidPath { reason, .. }) => reason,
            other => panic!("{raw:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn refuses_escapes_and_malformed_paths_naming_the_rule() {
        assert!(reason("").contains("empty"));
        assert!(reason("/etc/passwd").contains("absolute"));
        assert!(reason("a/../../etc").contains("'..'"));
        assert!(reason("..").contains("'..'"));
        assert!(reason("a/./b").contains("'.'"));
        assert!(reason("a//b").contains("empty segment"));
        assert!(reason("a/").contains("empty segment"));
        assert!(reason("a\0b").contains("control character"));
        assert!(reason("a\nb").contains("control character"));
        assert!(reason("a\u{7f}").contains("control character"));
        assert!(reason(&"x".repeat(256)).contains("255"));
        let long = vec!["y".repeat(200); 21].join("/");
        assert!(long.len() > MAX_PATH_BYTES);
        assert!(reason(&long).contains("4096"));
    }

    #[test]
    fn accepts_spaces_unicode_and_dots_inside_names() {
        for ok in [
            "model weights.bin",
            "données/été/ファイル.txt",
            "..hidden",
            "a..b/.c/...",
            "emoji 🚀/x",
            &"x".repeat(255),
        ] {
            assert_eq!(StorePath::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refused_path_is_escaped_in_the_error() {
        let err = StorePath::parse("a\nb/..").unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn join_parent_filename() {
        let p = StorePath::parse("a/b").unwrap();
        let q = p.join("c d/e").unwrap();
        assert_eq!(q.as_str(), "a/b/c d/e");
        assert_eq!(q.filename(), "e");
        assert_eq!(q.parent().unwrap().as_str(), "a/b/c d");
        assert_eq!(StorePath::parse("top").unwrap().parent(), None);
        assert_eq!(StorePath::parse("top").unwrap().filename(), "top");
        assert!(p.join("../x").is_err());
        assert!(p.join("").is_err());
        assert!(p.join("/x").is_err());
    }

    #[test]
    fn prefixes_are_whole_segments() {
        let a = StorePath::parse("a").unwrap();
        let ab = StorePath::parse("ab/c").unwrap();
        let a_c = StorePath::parse("a/c").unwrap();
        assert!(a.prefix_of(&a_c));
        assert!(a.prefix_of(&a));
        assert!(!a.prefix_of(&ab));
        assert!(!a_c.prefix_of(&a));
        assert_eq!(a.strip_prefix(&a_c), Some("c"));
        assert_eq!(a.strip_prefix(&ab), None);
        assert_eq!(a.strip_prefix(&a), None);
    }

    fn segment() -> impl Strategy<Value = String> {
        // Any characters, dots and slashes included, so the parser sees hostile input too.
        prop_oneof![
            Just(".".to_string()),
            Just("..".to_string()),
            Just(String::new()),
            "[a-z. ]{1,6}",
            "\\PC{1,8}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn accepted_paths_stay_inside_and_round_trip(segments in prop::collection::vec(segment(), 1..6), lead in any::<bool>()) {
            let raw = format!("{}{}", if lead { "/" } else { "" }, segments.join("/"));
            if let Ok(path) = StorePath::parse(&raw) {
                prop_assert!(!path.as_str().starts_with('/'));
                for seg in path.segments() {
                    prop_assert!(!seg.is_empty() && seg != "." && seg != "..");
                    prop_assert!(!seg.chars().any(char::is_control));
                    prop_assert!(seg.len() <= MAX_SEGMENT_BYTES);
                }
                let shown = path.to_string();
                prop_assert_eq!(&shown, &raw);
                prop_assert_eq!(StorePath::parse(&shown).unwrap(), path);
            }
        }

        #[test]
        fn printable_segments_are_always_accepted(segments in prop::collection::vec("[^/\\p{Cc}]{1,20}", 1..6)) {
            prop_assume!(segments.iter().all(|s| s != "." && s != ".." && s.len() <= MAX_SEGMENT_BYTES));
            let raw = segments.join("/");
            let path = StorePath::parse(&raw).unwrap();
            prop_assert_eq!(path.segments().count(), segments.len());
        }
    }
}
