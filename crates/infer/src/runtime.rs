//! Loading the ONNX Runtime shared library, once per process.
//!
//! `ort` is built with `load-dynamic`: nothing is linked at build time and the library (from the
//! `onnxruntime-node` npm package) is opened at run time from an absolute path the caller passes.
//! Two traps shape this file:
//! - `ort` 2.0.0-rc.13 marks its library slot as initialised even when `dlopen` fails; a second
//!   `init_from` (or any ort call) after that reads an uninitialised slot. So `ort::init_from` is
//!   called at most once per process and its outcome, success or failure, is cached forever.
//! - A missing or wrong library must be an error, never a panic, hang or abort. So before ort is
//!   touched at all, we check the file ourselves (absolute, exists, readable, ELF) and `dlopen` it
//!   with `libloading` to read its version and ask for the API level ort needs. Failures there
//!   leave ort untouched, so a later call with a corrected path may still succeed.
use std::ffi::CStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::error::InferError;

/// What is loaded: the library file and ONNX Runtime's own version string (e.g. "1.30.0").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub version: String,
    pub library_path: PathBuf,
    /// The ORT C API level `ort` was built for (`api-27` → 27); the library supports at least it.
    pub api_version: u32,
}

/// The outcome of the one `ort::init_from` call this process makes.
static RUNTIME: OnceLock<Result<RuntimeInfo, InferError>> = OnceLock::new();
/// Serialises first-time initialisation so two threads never race into ort with different paths.
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime from `lib_path` (absolute). Idempotent: once a library is loaded, later
/// calls return its info whatever path they pass (`library_path` says which one is active); once
/// ort itself failed to load one, later calls return that same error.
pub fn init_runtime(lib_path: &Path) -> Result<RuntimeInfo, InferError> {
    if let Some(done) = RUNTIME.get() {
        return done.clone();
    }
    let _guard = INIT_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(done) = RUNTIME.get() {
        return done.clone();
    }
    let version = precheck_library(lib_path)?;
    let outcome = match ort::init_from(lib_path) {
        Ok(builder) => {
            // `commit` is false only if an environment already exists, which cannot happen
            // here: nothing reaches ort before this call succeeds.
            let _ = builder.with_name("tinyforge").with_telemetry(false).commit();
            Ok(RuntimeInfo { version, library_path: lib_path.to_path_buf(), api_version: ort::MINOR_VERSION })
        }
        Err(e) => Err(InferError::LibraryLoad { path: lib_path.to_path_buf(), reason: e.to_string() }),
    };
    RUNTIME.get_or_init(|| outcome).clone()
}

/// The loaded runtime, or `RuntimeNotInitialized`. Every ort call in this crate goes through
/// here first: without it ort would try to `dlopen("libonnxruntime.so")` itself and panic.
pub fn active_runtime() -> Result<RuntimeInfo, InferError> {
    match RUNTIME.get() {
        Some(done) => done.clone(),
        None => Err(InferError::RuntimeNotInitialized),
    }
}

/// Checks that `lib_path` is a loadable ONNX Runtime new enough for `ort`, without touching ort.
/// Returns the library's version string; on success the library stays loaded (see below).
pub fn precheck_library(lib_path: &Path) -> Result<String, InferError> {
    let not_found = |reason: &str| InferError::LibraryNotFound { path: lib_path.to_path_buf(), reason: reason.to_string() };
    let load_err = |reason: String| InferError::LibraryLoad { path: lib_path.to_path_buf(), reason };
    if !lib_path.is_absolute() {
        // ort resolves relative paths against the executable's folder (node's, here): never
        // what the caller meant.
        return Err(not_found("the path is not absolute"));
    }
    let meta = std::fs::metadata(lib_path).map_err(|e| not_found(&e.to_string()))?;
    if !meta.is_file() {
        return Err(not_found("not a regular file"));
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(lib_path).and_then(|mut f| f.read_exact(&mut magic)).map_err(|e| load_err(format!("cannot read the file: {e}")))?;
    if magic != *b"\x7fELF" {
        return Err(load_err("not an ELF shared library (bad magic bytes)".into()));
    }
    // SAFETY: loading a shared library runs its initialisers; this is the library the caller
    // asked us to run, and ORT's initialisers have no preconditions.
    let lib = unsafe { libloading::Library::new(lib_path) }.map_err(|e| load_err(format!("dlopen failed: {e}")))?;
    // SAFETY: `OrtGetApiBase` is ORT's documented C entry point with exactly this signature.
    let get_base = unsafe { lib.get::<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase>(b"OrtGetApiBase") }
        .map_err(|_| load_err("no `OrtGetApiBase` symbol: not an ONNX Runtime library".into()))?;
    // SAFETY: the base struct is static inside the library, valid while `lib` is loaded.
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err(load_err("`OrtGetApiBase` returned null".into()));
    }
    // SAFETY: `base` is non-null (checked above) and points at the library's static base struct;
    // `GetVersionString` returns a pointer to a static NUL-terminated string inside the library.
    let version = unsafe { CStr::from_ptr(((*base).GetVersionString)()) }.to_string_lossy().into_owned();
    // SAFETY: same struct; `GetApi` takes any API level and returns null for one it lacks
    // (handled just below).
    let api = unsafe { ((*base).GetApi)(ort::MINOR_VERSION) };
    if api.is_null() {
        return Err(load_err(format!(
            "ONNX Runtime {version} does not provide C API level {} (needs ONNX Runtime >= 1.{}); install onnxruntime-node >= 1.{}",
            ort::MINOR_VERSION,
            ort::MINOR_VERSION,
            ort::MINOR_VERSION
        )));
    }
    // Keep our handle open for the life of the process: ort's own `dlopen` of the same file then
    // only bumps the loader's reference count instead of mapping and relocating 45 MB again, and
    // ORT is never unloaded between the two (its static state stays initialised once).
    std::mem::forget(lib);
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precheck_rejects_missing_relative_and_non_elf_files() {
        let e = precheck_library(Path::new("/nonexistent/libonnxruntime.so.1")).unwrap_err();
        assert_eq!(e.code(), "ORT_LIBRARY_NOT_FOUND");
        assert_eq!(precheck_library(Path::new("libonnxruntime.so.1")).unwrap_err().code(), "ORT_LIBRARY_NOT_FOUND");
        assert_eq!(precheck_library(Path::new("/")).unwrap_err().code(), "ORT_LIBRARY_NOT_FOUND");
        let tmp = tinyforge_testkit::temp_dir("not-elf");
        let junk = tmp.path().join("libonnxruntime.so");
        std::fs::write(&junk, b"this is not a library").unwrap();
        let e = precheck_library(&junk).unwrap_err();
        assert_eq!(e.code(), "ORT_LIBRARY_LOAD");
        assert!(e.to_string().contains("ELF"), "{e}");
    }

    #[test]
    fn precheck_rejects_an_elf_file_that_is_not_onnx_runtime() {
        // libc is ELF and loadable but exports no `OrtGetApiBase`.
        let libc =
            ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"].map(Path::new).into_iter().find(|p| p.exists());
        let Some(libc) = libc else { return };
        let e = precheck_library(libc).unwrap_err();
        assert_eq!(e.code(), "ORT_LIBRARY_LOAD");
        assert!(e.to_string().contains("OrtGetApiBase"), "{e}");
    }
}
