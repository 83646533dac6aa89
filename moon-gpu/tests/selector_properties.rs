//! The selector parser on any input: a selector or an `InvalidSelector`
//! that points inside the string, never a panic; and whatever parses prints
//! as text that parses back to the same selector.

use moon_gpu::{Error, GpuSelector};
use proptest::prelude::*;

/// Parses `input` and checks what came back: a selector that prints as
/// text which parses back to it, or an error whose column (from 1, in
/// characters) is inside the string or just past its end.
fn check(input: &str) -> Result<(), TestCaseError> {
    match input.parse::<GpuSelector>() {
        Ok(selector) => {
            prop_assert!(selector.count >= 1, "{input:?} parsed to no GPUs");
            let printed = selector.to_string();
            match printed.parse::<GpuSelector>() {
                Ok(again) => {
                    prop_assert_eq!(again, selector, "{:?} printed as {:?}", input, printed)
                }
                Err(error) => {
                    prop_assert!(
                        false,
                        "{input:?} printed as {printed:?}, which fails: {error}"
                    )
                }
            }
        }
        Err(Error::InvalidSelector {
            input: echoed,
            column,
            message,
        }) => {
            prop_assert_eq!(echoed.as_str(), input);
            let last = input.chars().count() + 1;
            prop_assert!(
                (1..=last).contains(&column),
                "{input:?}: column {column} outside 1..={last}"
            );
            prop_assert!(!message.is_empty());
        }
        Err(other) => prop_assert!(false, "{input:?}: not an InvalidSelector: {other:?}"),
    }
    Ok(())
}

/// Text made of what selectors are made of, with some characters that take
/// more than one byte, so that columns are counted in characters.
fn selector_like() -> impl Strategy<Value = String> {
    prop::string::string_regex("[ A-Za-z0-9:,|+._-]{0,24}|[ 0-9:,|+.GBiHcsm日é]{0,16}")
        .expect("a valid regex")
}

/// One constraint as a user writes it: models, a memory size, a capability.
fn constraint() -> impl Strategy<Value = String> {
    let model = "[A-Za-z0-9][A-Za-z0-9_-]{0,9}";
    let unit = prop::sample::select(vec!["GB", "GiB", "gb", "gib"]);
    prop_oneof![
        prop::collection::vec(model, 1..4).prop_map(|models| models.join("|")),
        (1u64..2_000_000, unit.clone()).prop_map(|(size, unit)| format!("{size}{unit}+")),
        (0.001f64..100_000.0, unit).prop_map(|(size, unit)| format!("{size}{unit}+")),
        (0u32..20, 0u32..10).prop_map(|(major, minor)| format!("cc{major}.{minor}+")),
        (1u32..20, 0u32..10).prop_map(|(major, minor)| format!("sm{major}{minor}+")),
    ]
}

/// A valid selector's text: distinct kinds of constraint (models, memory
/// and capability are each given once) and a count of at least 1.
fn valid_selector() -> impl Strategy<Value = String> {
    (prop::collection::vec(constraint(), 0..4), 1u32..=u32::MAX).prop_map(|(terms, count)| {
        let mut seen = Vec::new();
        let kept: Vec<String> = terms
            .into_iter()
            .filter(|term| {
                let kind = match term.strip_suffix('+') {
                    None => "models",
                    Some(body) if body.starts_with("cc") || body.starts_with("sm") => "capability",
                    Some(_) => "memory",
                };
                let first = !seen.contains(&kind);
                seen.push(kind);
                first
            })
            .collect();
        if kept.is_empty() {
            count.to_string()
        } else {
            format!("{}:{count}", kept.join(","))
        }
    })
}

proptest! {
    #[test]
    fn any_string_is_a_selector_or_an_error_inside_it(input in any::<String>()) {
        check(&input)?;
    }

    #[test]
    fn selector_like_text_is_a_selector_or_an_error_inside_it(input in selector_like()) {
        check(&input)?;
    }

    #[test]
    fn memory_of_any_size_is_asked_for_or_refused(
        text in "[0-9]{1,3}(\\.[0-9]{1,3})?(e-?[0-9]{1,3})?(GB|GiB)\\+:[1-9]"
    ) {
        check(&text)?;
    }

    #[test]
    fn valid_selectors_parse_and_print_back(text in valid_selector()) {
        let selector = text.parse::<GpuSelector>();
        prop_assert!(selector.is_ok(), "{:?} refused: {:?}", text, selector);
        check(&text)?;
    }

    #[test]
    fn selectors_built_in_code_print_as_text_that_parses_back(
        count in 1u32..=u32::MAX,
        models in prop::collection::vec("[A-Za-z0-9][A-Za-z0-9_-]{0,9}", 0..3),
        gb in prop::option::of(1u64..=17_000_000_000),
        capability in prop::option::of((0u32..100, 0u32..100)),
    ) {
        let mut selector = GpuSelector::any(count).models(models);
        if let Some(gb) = gb {
            selector = selector.min_memory_gb(gb);
        }
        if let Some((major, minor)) = capability {
            selector = selector.min_compute_capability(major, minor);
        }
        let printed = selector.to_string();
        let again = printed.parse::<GpuSelector>();
        prop_assert_eq!(again.ok(), Some(selector), "printed as {:?}", printed);
    }
}

#[test]
fn columns_count_characters_not_bytes() {
    // An ideographic space (three bytes, one character) is trimmed like any.
    let input = "\u{3000}H100,80TB+:1";
    let Err(Error::InvalidSelector { column, .. }) = input.parse::<GpuSelector>() else {
        panic!("80TB+ is no memory size");
    };
    assert_eq!(column, 7);
}
