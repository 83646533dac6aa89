//! Calico's selector language: parsed once into a tree, then matched against
//! labels many times.
//!
//! ```text
//! selector := or
//! or       := and ( "||" and )*
//! and      := not ( "&&" not )*
//! not      := "!" not | "(" or ")" | term
//! term     := "all()" | "global()" | "has(" key ")"
//!           | key ( "==" | "!=" ) string
//!           | key ( "in" | "not in" ) "{" [ string ( "," string )* ] "}"
//!           | key ( "contains" | "starts with" | "ends with" ) string
//! ```
//!
//! Strings are quoted with `'` or `"`. As in Calico, `k != 'v'` and
//! `k not in {...}` also match labels without `k`, and the empty selector
//! matches everything. Errors give the column (in characters, from 1) where
//! the text stops making sense.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A parsed selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    root: Expr,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Expr {
    All,
    Global,
    Has(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Contains(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// Why a selector does not parse, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    /// The column of the fault, in characters from 1.
    pub column: usize,
    /// What was expected there.
    pub message: String,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for SelectorError {}

/// Labels a selector is matched against.
pub trait Labels {
    /// The value of label `key`, if the labels have it.
    fn get(&self, key: &str) -> Option<&str>;
    /// Whether these labels belong to something outside every namespace
    /// (a global network set, a host endpoint): what `global()` matches.
    fn is_global(&self) -> bool {
        false
    }
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl Selector {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let mut parser = Parser {
            chars: text.chars().collect(),
            at: 0,
        };
        parser.skip_space();
        let root = if parser.at_end() {
            Expr::All
        } else {
            let root = parser.or()?;
            parser.skip_space();
            if !parser.at_end() {
                return Err(parser.error("expected '&&', '||' or the end of the selector"));
            }
            root
        };
        Ok(Selector {
            root,
            text: text.to_owned(),
        })
    }

    /// The selector that matches everything.
    pub fn all() -> Selector {
        Selector {
            root: Expr::All,
            text: "all()".into(),
        }
    }

    /// A Kubernetes label selector in this language (`matchLabels` and
    /// `matchExpressions`, and-ed; empty: everything). Errors name the
    /// field under the selector that is wrong.
    pub fn from_label_selector(selector: &LabelSelector) -> Result<Selector, (String, String)> {
        let mut terms = Vec::new();
        let mut text = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            text.push(format!("{key} == '{value}'"));
            terms.push(Expr::Equals(key.clone(), value.clone()));
        }
        for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
            let key = requirement.key.clone();
            let values = requirement.values.clone().unwrap_or_default();
            let quoted = || {
                values
                    .iter()
                    .map(|v| format!("'{v}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let needs_values = |ok: bool| {
                if ok {
                    Ok(())
                } else {
                    Err((
                        format!("matchExpressions[{i}].values"),
                        format!(
                            "operator {} {}",
                            requirement.operator,
                            if values.is_empty() {
                                "needs values"
                            } else {
                                "takes no values"
                            }
                        ),
                    ))
                }
            };
            match requirement.operator.as_str() {
                "In" => {
                    needs_values(!values.is_empty())?;
                    text.push(format!("{key} in {{{}}}", quoted()));
                    terms.push(Expr::In(key, values));
                }
                "NotIn" => {
                    needs_values(!values.is_empty())?;
                    text.push(format!("{key} not in {{{}}}", quoted()));
                    terms.push(Expr::NotIn(key, values));
                }
                "Exists" => {
                    needs_values(values.is_empty())?;
                    text.push(format!("has({key})"));
                    terms.push(Expr::Has(key));
                }
                "DoesNotExist" => {
                    needs_values(values.is_empty())?;
                    text.push(format!("!has({key})"));
                    terms.push(Expr::Not(Box::new(Expr::Has(key))));
                }
                other => {
                    return Err((
                        format!("matchExpressions[{i}].operator"),
                        format!("{other:?} is not In, NotIn, Exists or DoesNotExist"),
                    ));
                }
            }
        }
        Ok(match terms.len() {
            0 => Selector::all(),
            1 => Selector {
                root: terms.remove(0),
                text: text.remove(0),
            },
            _ => Selector {
                root: Expr::And(terms),
                text: text.join(" && "),
            },
        })
    }

    /// The text it was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it matches everything.
    pub fn is_all(&self) -> bool {
        self.root == Expr::All
    }

    /// Whether `labels` match it.
    pub fn matches(&self, labels: &(impl Labels + ?Sized)) -> bool {
        self.root.matches(labels)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Expr {
    fn matches(&self, labels: &(impl Labels + ?Sized)) -> bool {
        match self {
            Expr::All => true,
            Expr::Global => labels.is_global(),
            Expr::Has(key) => labels.get(key).is_some(),
            Expr::Equals(key, value) => labels.get(key) == Some(value.as_str()),
            Expr::NotEquals(key, value) => labels.get(key) != Some(value.as_str()),
            Expr::In(key, values) => labels
                .get(key)
                .is_some_and(|v| values.iter().any(|x| x == v)),
            Expr::NotIn(key, values) => !labels
                .get(key)
                .is_some_and(|v| values.iter().any(|x| x == v)),
            Expr::Contains(key, part) => labels.get(key).is_some_and(|v| v.contains(part.as_str())),
            Expr::StartsWith(key, part) => labels
                .get(key)
                .is_some_and(|v| v.starts_with(part.as_str())),
            Expr::EndsWith(key, part) => {
                labels.get(key).is_some_and(|v| v.ends_with(part.as_str()))
            }
            Expr::Not(inner) => !inner.matches(labels),
            Expr::And(all) => all.iter().all(|e| e.matches(labels)),
            Expr::Or(any) => any.iter().any(|e| e.matches(labels)),
        }
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

/// Characters of a label key: a DNS prefix, a slash and a name.
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

impl Parser {
    fn error(&self, message: &str) -> SelectorError {
        SelectorError {
            column: self.at + 1,
            message: message.to_owned(),
        }
    }

    fn at_end(&self) -> bool {
        self.at >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    /// Consumes `token` (after spaces) if the text continues with it.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        let n = token.chars().count();
        if self.chars.len() >= self.at + n
            && self.chars[self.at..self.at + n]
                .iter()
                .copied()
                .eq(token.chars())
        {
            self.at += n;
            true
        } else {
            false
        }
    }

    /// Consumes a word operator (`in`, `contains`...) only when a word
    /// does not go on after it: `inside` is not `in`.
    fn eat_word(&mut self, word: &str) -> bool {
        let start = self.at;
        if self.eat(word) && !self.peek().is_some_and(is_key_char) {
            return true;
        }
        self.at = start;
        false
    }

    fn expect(&mut self, token: &str, what: &str) -> Result<(), SelectorError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    fn or(&mut self) -> Result<Expr, SelectorError> {
        let mut terms = vec![self.and()?];
        while self.eat("||") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, SelectorError> {
        let mut terms = vec![self.not()?];
        while self.eat("&&") {
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn not(&mut self) -> Result<Expr, SelectorError> {
        self.skip_space();
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.eat("(") {
            let inner = self.or()?;
            self.expect(")", "')'")?;
            return Ok(inner);
        }
        self.term()
    }

    fn term(&mut self) -> Result<Expr, SelectorError> {
        self.skip_space();
        if self.at_end() {
            return Err(self.error("expected a label expression, found the end"));
        }
        let start = self.at;
        if self.eat_word("all") {
            if self.eat("(") {
                self.expect(")", "')' after 'all('")?;
                return Ok(Expr::All);
            }
            self.at = start;
        }
        if self.eat_word("global") {
            if self.eat("(") {
                self.expect(")", "')' after 'global('")?;
                return Ok(Expr::Global);
            }
            self.at = start;
        }
        if self.eat_word("has") {
            if self.eat("(") {
                let key = self.key()?;
                self.expect(")", "')' after the label name")?;
                return Ok(Expr::Has(key));
            }
            self.at = start;
        }
        let key = self.key()?;
        if self.eat("==") {
            return Ok(Expr::Equals(key, self.string()?));
        }
        if self.eat("!=") {
            return Ok(Expr::NotEquals(key, self.string()?));
        }
        if self.eat_word("in") {
            return Ok(Expr::In(key, self.set()?));
        }
        if self.eat_word("not") {
            if self.eat_word("in") {
                return Ok(Expr::NotIn(key, self.set()?));
            }
            self.skip_space();
            return Err(self.error("expected 'in' after 'not'"));
        }
        if self.eat_word("contains") {
            return Ok(Expr::Contains(key, self.string()?));
        }
        if self.eat_word("starts") {
            self.word_after("with", "starts")?;
            return Ok(Expr::StartsWith(key, self.string()?));
        }
        if self.eat_word("ends") {
            self.word_after("with", "ends")?;
            return Ok(Expr::EndsWith(key, self.string()?));
        }
        self.skip_space();
        Err(self.error(
            "expected an operator after the label name: ==, !=, in, not in, contains, starts with or ends with",
        ))
    }

    fn word_after(&mut self, word: &str, after: &str) -> Result<(), SelectorError> {
        if self.eat_word(word) {
            Ok(())
        } else {
            self.skip_space();
            Err(self.error(&format!("expected '{word}' after '{after}'")))
        }
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        self.skip_space();
        let start = self.at;
        while self.peek().is_some_and(is_key_char) {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error("expected a label name"));
        }
        Ok(self.chars[start..self.at].iter().collect())
    }

    fn string(&mut self) -> Result<String, SelectorError> {
        self.skip_space();
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(self.error("expected a quoted string")),
        };
        let open = self.at;
        self.at += 1;
        let start = self.at;
        while self.peek().is_some_and(|c| c != quote) {
            self.at += 1;
        }
        if self.at_end() {
            self.at = open;
            return Err(self.error("string not closed"));
        }
        let value = self.chars[start..self.at].iter().collect();
        self.at += 1;
        Ok(value)
    }

    fn set(&mut self) -> Result<Vec<String>, SelectorError> {
        self.expect("{", "'{'")?;
        let mut values = Vec::new();
        if self.eat("}") {
            return Ok(values);
        }
        loop {
            values.push(self.string()?);
            if self.eat("}") {
                return Ok(values);
            }
            self.expect(",", "',' or '}'")?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn check(selector: &str, pairs: &[(&str, &str)]) -> bool {
        Selector::parse(selector)
            .unwrap_or_else(|e| panic!("{selector:?}: {e}"))
            .matches(&labels(pairs))
    }

    #[test]
    fn every_operator_matches_as_calico_documents_it() {
        let app = [("app", "web"), ("tier", "frontend-v2")];
        assert!(check("all()", &[]));
        assert!(check("", &[]));
        assert!(check("app == 'web'", &app));
        assert!(!check("app == 'db'", &app));
        assert!(check("app != 'db'", &app));
        assert!(check("missing != 'x'", &app), "!= matches an absent label");
        assert!(check("has(app)", &app));
        assert!(!check("has(missing)", &app));
        assert!(check("!has(missing)", &app));
        assert!(check("app in {'db', \"web\"}", &app));
        assert!(!check("app in {}", &app));
        assert!(check("app not in {'db'}", &app));
        assert!(check("missing not in {'db'}", &app));
        assert!(check("tier contains 'end'", &app));
        assert!(check("tier starts with 'front'", &app));
        assert!(check("tier ends with 'v2'", &app));
        assert!(!check("missing starts with ''", &app));
        assert!(check("app == 'web' && tier ends with 'v2'", &app));
        assert!(check("app == 'db' || has(tier)", &app));
        assert!(!check("!(app == 'web')", &app));
        assert!(!check("global()", &app));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // a || (b && c), not (a || b) && c
        assert!(check("has(a) || has(b) && has(c)", &[("a", "1")]));
        assert!(!check("(has(a) || has(b)) && has(c)", &[("a", "1")]));
    }

    #[test]
    fn keys_may_carry_a_prefix_and_words_are_whole() {
        assert!(check(
            "projectcalico.org/namespace == 'x'",
            &[("projectcalico.org/namespace", "x")]
        ));
        assert!(check("inside == 'yes'", &[("inside", "yes")]));
        assert!(check("all == 'x'", &[("all", "x")]));
    }

    fn error(selector: &str) -> SelectorError {
        Selector::parse(selector).expect_err(selector)
    }

    #[test]
    fn errors_give_the_column_where_the_text_stops_making_sense() {
        let e = error("app == web");
        assert_eq!(e.column, 8, "{e}");
        assert!(e.message.contains("quoted string"), "{e}");
        assert_eq!(error("app == 'web").column, 8);
        assert_eq!(error("app = 'web'").column, 5);
        assert_eq!(error("has(app").column, 8);
        assert_eq!(error("app in {'a' 'b'}").column, 13);
        assert_eq!(error("app == 'a' &&").column, 14);
        assert_eq!(error("app == 'a' junk").column, 12);
        assert_eq!(error("app not within {'a'}").column, 9);
        assert_eq!(error("(has(a)").column, 8);
        assert_eq!(error("== 'a'").column, 1);
        // Columns count characters, not bytes.
        assert_eq!(error("é == 'a'").column, 1);
        assert_eq!(error("app == 'é' &").column, 12);
    }
}
