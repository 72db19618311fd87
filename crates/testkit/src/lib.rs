//! Test-only helpers shared by the TinyForge crates (a dev-dependency, never linked into the
//! library or the binding).
//!
//! * `temp_dir`: a fresh folder removed when the guard drops, also when the test fails (a
//!   panicking test unwinds through the drop), unlike `std::env::temp_dir().join(..)` folders,
//!   which every failed run left behind.
//! * `smollm2_gguf`: the real default model, found the way CI provides it, so a test that needs it
//!   runs in CI and is skipped (with a line saying so) only on a developer machine without it.
use std::path::PathBuf;

pub use tempfile::TempDir;

/// A fresh temporary folder named `tinyforge-{tag}-XXXXXX`, deleted with everything in it when
/// the returned guard drops. Keep the guard alive for as long as the test uses the folder.
pub fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new().prefix(&format!("tinyforge-{tag}-")).tempdir().expect("create a temporary folder")
}

/// Environment variable naming the SmolLM2-135M-Instruct GGUF (`.ci/run` exports it after
/// `foremforge pull --format gguf`; the TypeScript tests read the same one).
pub const GGUF_ENV: &str = "TINYFORGE_SMOLLM2_GGUF";

/// Where `foremforge pull --format gguf` caches the default model: `$TINYFORGE_CACHE` or
/// `~/.cache/tinyforge`, then `models/<name>/gguf/<file>` (ts/models/cache.ts).
pub fn cached_gguf() -> Option<PathBuf> {
    let cache = match std::env::var_os("TINYFORGE_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/tinyforge"),
    };
    Some(cache.join("models/smollm2-135m-instruct/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"))
}

/// True when running under CI (`CI` set to anything but empty, `0` or `false`), where a missing
/// input is a failure rather than a reason to skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The SmolLM2-135M-Instruct GGUF: `$TINYFORGE_SMOLLM2_GGUF`, else the pull cache. `None` (after
/// printing why, so a skipped test is visible with `--nocapture`) when it is absent on a developer
/// machine.
///
/// # Panics
/// Under CI when the file is absent: a test that silently passes without its input proves nothing.
pub fn smollm2_gguf() -> Option<PathBuf> {
    let from_env = std::env::var_os(GGUF_ENV).map(PathBuf::from);
    let candidate = from_env.clone().or_else(cached_gguf);
    if let Some(path) = candidate.as_ref().filter(|p| p.is_file()) {
        return Some(path.clone());
    }
    let looked = candidate.map_or_else(|| "(no HOME to find the cache)".to_string(), |p| p.display().to_string());
    let how = format!("run `npx foremforge pull --format gguf` or set {GGUF_ENV}");
    assert!(!in_ci(), "SmolLM2 GGUF not found at {looked} under CI=true: {how}");
    eprintln!("skipped: SmolLM2 GGUF not found at {looked} ({how})");
    None
}
