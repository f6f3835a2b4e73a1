//! Reading the headers of a consumed event without panicking.
//!
//! rdkafka 0.39 unwraps every header name as UTF-8 (in `Headers::iter`, `get` and `try_get`
//! alike), so a producer that writes a header name of other bytes could panic whoever reads it.
//! Each header is read on its own behind `catch_unwind`; one whose name cannot be read is left
//! out and counted.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rdkafka::message::{BorrowedHeaders, Headers};

/// One header of an event: its name and its value (`None` for a null value).
pub type Header = (String, Option<Vec<u8>>);

/// Reads every header whose name is UTF-8; returns them and how many could not be read.
pub fn read_headers(headers: &BorrowedHeaders) -> (Vec<Header>, usize) {
    let mut read = Vec::with_capacity(headers.count());
    let mut unreadable = 0;
    for index in 0..headers.count() {
        let header = catch_unwind(AssertUnwindSafe(|| {
            headers
                .try_get(index)
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
        }));
        match header {
            Ok(Some(header)) => read.push(header),
            Ok(None) => {}
            Err(_) => unreadable += 1,
        }
    }
    (read, unreadable)
}

/// The value of the first header named `name` (ASCII case ignored), when it is UTF-8.
pub fn header_text<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .and_then(|(_, value)| value.as_deref())
        .and_then(|value| std::str::from_utf8(value).ok())
}
