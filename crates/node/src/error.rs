//! The one place core errors become JS errors, and the one panic guard.
//!
//! Why a `CODE: ` message prefix instead of napi's own `code`: napi-rs's `Task::compute` (and
//! `#[napi] async fn`) must return `napi::Result<T>`, whose error type is fixed to
//! `napi::Error<napi::Status>`, so an `AsyncTask` can only reject with one of napi's own statuses
//! (`GenericFailure`, ...) as `err.code`, never ours. That is napi-rs issue #2333 "Custom error in
//! Task impl" (open; the async-fn twin is #1632, where `Error<CustomStatus>` fails to compile as
//! the result of an async function). So every error crossing the boundary carries its stable code
//! as a `CODE: ` prefix of the message, and the hand-written `index.cjs` moves that prefix into
//! `err.code` for sync calls, promises and class methods alike. Every code is listed in
//! ts/error-codes.ts (test/unit/error-codes.test.ts fails on one that is not).
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Builds the JS error for `code` (SCREAMING_SNAKE, stable across versions) and a message that
/// says what went wrong and where (file, line, field).
pub fn js_error(code: &str, message: impl Display) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, format!("{code}: {message}"))
}

/// A core crate's error: its stable code and a message naming what and where.
pub trait CoreError: Display {
    fn code(&self) -> &'static str;
}

macro_rules! core_errors {
    ($($t:ty),*) => {$(
        impl CoreError for $t {
            fn code(&self) -> &'static str {
                <$t>::code(self)
            }
        }
    )*};
}
core_errors!(
    tinyforge_tokenizer::TokenizerError,
    tinyforge_model::ModelError,
    tinyforge_train::TrainError,
    tinyforge_onnx::OnnxError,
    tinyforge_infer::InferError
);

/// Every core error crosses to JS here, keeping the code the core gave it (`.map_err(core_error)`).
#[allow(clippy::needless_pass_by_value)] // by value so it fits `map_err` directly
pub fn core_error(e: impl CoreError) -> napi::Error {
    js_error(e.code(), &e)
}

/// Runs `f`, turning a panic into a `PANIC` error instead of letting it unwind into napi: a panic
/// in `Task::compute` runs on a libuv thread inside an `extern "C"` callback and would abort
/// Node, and napi's own `catch_unwind` attribute reports a sync panic without our code.
/// `what` completes "internal error while ...". Every `Task::compute` and every sync export
/// that does work goes through here.
pub fn guard<T>(what: &str, f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    // AssertUnwindSafe: after a panic nothing touched by `f` is used again except through the
    // error we return; shared state (Arc<Tokenizer>, loaded models) is read-only in `f`.
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Err(js_error("PANIC", format!("internal error while {what} (a bug in tinyforge): {detail}")))
    })
}

/// Test-only export (used by test/binding/panic.test.ts, not part of the API): panics inside the
/// guard, synchronously or on a libuv thread, to prove a panic reaches JS as `{ code: 'PANIC' }`
/// on both paths.
#[napi_derive::napi(js_name = "__testPanic", ts_return_type = "number | Promise<number>")]
pub fn test_panic(asynchronous: bool) -> napi::Result<napi::Either<u32, napi::bindgen_prelude::AsyncTask<PanicTask>>> {
    if asynchronous {
        return Ok(napi::Either::B(napi::bindgen_prelude::AsyncTask::new(PanicTask)));
    }
    guard("running __testPanic", || -> napi::Result<u32> { panic!("deliberate panic (sync)") }).map(napi::Either::A)
}

pub struct PanicTask;

impl napi::Task for PanicTask {
    type Output = u32;
    type JsValue = u32;

    fn compute(&mut self) -> napi::Result<u32> {
        guard("running __testPanic", || panic!("deliberate panic (async)"))
    }

    fn resolve(&mut self, _env: napi::Env, output: u32) -> napi::Result<u32> {
        Ok(output)
    }
}
