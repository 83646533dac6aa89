//! Whatever text a user writes as a selector, CIDR or port, the parsers
//! answer with a value or an error whose column lies within the text (or
//! just past its end): they never panic.

use moon_net::policy::{Cidr, PortMatch, Selector};
use proptest::prelude::*;

/// Text made mostly of the selector language's own characters, so that the
/// parser gets deep into it, with any character now and then.
fn selector_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            8 => proptest::sample::select(vec![
                "app", " ", "==", "!=", "'", "\"", "web", "(", ")", "!", "&&", "||", "has(",
                "in", "not", "{", "}", ",", "all()", "global()", "contains", "starts", "ends",
                "with", "é", "/", ".", "-",
            ])
            .prop_map(str::to_owned),
            1 => any::<char>().prop_map(|c| c.to_string()),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn selectors_parse_or_say_where(text in selector_text()) {
        if let Err(e) = Selector::parse(&text) {
            let len = text.chars().count();
            prop_assert!(e.column >= 1 && e.column <= len + 1, "{text:?}: {e}");
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn cidrs_and_ports_parse_or_say_where(text in "[0-9a-f:./x -]{0,24}") {
        let len = text.chars().count();
        if let Err(e) = Cidr::parse(&text) {
            prop_assert!(e.column >= 1 && e.column <= len + 1, "{text:?}: {e}");
        }
        if let Err(e) = PortMatch::parse(&text) {
            prop_assert!(e.column >= 1 && e.column <= len + 1, "{text:?}: {e}");
        }
    }
}
