//! Span selectors: parsing any text either fails with an error inside the input, or gives a
//! selector whose printed form parses back to the same selector and prints the same way again.
#![no_main]

use clnrm::expect::selector::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse(text) {
        Ok(selector) => {
            let printed = selector.to_string();
            let again = parse(&printed).unwrap_or_else(|e| panic!("{printed:?} (printed from {text:?}) fails: {e:?}"));
            assert_eq!(again, selector, "{text:?} printed as {printed:?}");
            assert_eq!(again.to_string(), printed, "printing is canonical");
        }
        Err(error) => {
            let span = error.span;
            assert!(span.start <= span.end && span.end <= text.len(), "{span:?} outside {text:?}");
            assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end), "{span:?} in {text:?}");
            assert!(span.start < span.end || span.start == text.len(), "empty {span:?} before the end of {text:?}");
        }
    }
});
