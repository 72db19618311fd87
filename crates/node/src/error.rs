//! The one place core errors become JS errors.
//!
//! napi-rs can only attach a custom `code` to errors thrown synchronously, not to rejected
//! promises of async tasks. So every error crossing the boundary carries its stable code as a
//! `CODE: ` prefix of the message, and the hand-written `index.cjs` turns that prefix into
//! `err.code` for sync calls, promises and class methods alike.
use std::fmt::Display;

/// Builds the JS error for `code` (SCREAMING_SNAKE, stable across versions) and a message that
/// says what went wrong and where (file, line, field).
pub fn js_error(code: &str, message: impl Display) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, format!("{code}: {message}"))
}
