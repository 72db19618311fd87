//! The exported decoder checked by independent tools: PyPI `onnx`
//! (`onnx.checker.check_model(full_check=True)`) and PyPI `onnxruntime` (prefill, cached steps
//! equal to a full recompute, quantized top-1 equal to fp32), through
//! `test/python/check_export.py`, on tiny random models (tied and untied head) exported in
//! every format. Skipped, with the reason printed, only when `python3` or those packages are
//! absent (CI installs them from `test/python/requirements.txt`).
use std::path::{Path, PathBuf};
use std::process::Command;

use tinyforge_model::{TinyOptions, tiny::random_weights};
use tinyforge_onnx::{ExportOptions, Format, HeadTail, Quantization, Scheme, export_llama, export_llama_scheme};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> String {
    std::env::var("TINYFORGE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `None` when Python with `onnx` and `onnxruntime` is usable, else why not.
fn python_missing() -> Option<String> {
    match Command::new(python()).args(["-c", "import onnx, onnxruntime, numpy"]).output() {
        Err(e) => Some(format!("{} not runnable: {e}", python())),
        Ok(o) if !o.status.success() => Some(format!("{}: {}", python(), String::from_utf8_lossy(&o.stderr).trim())),
        Ok(_) => None,
    }
}

fn check(files: &[&Path]) {
    let out = Command::new(python()).arg(repo().join("test/python/check_export.py")).args(files).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "check_export.py failed:\n{text}");
}

#[test]
fn python_onnx_and_onnxruntime_accept_every_export() {
    if let Some(why) = python_missing() {
        // CI installs them (.ci/run), so there a missing package is a broken setup, not a skip.
        assert!(std::env::var_os("CI").is_none(), "CI=true but the Python references are missing: {why}");
        eprintln!("SKIPPED: {why} (pip install -r test/python/requirements.txt)");
        return;
    }
    for tied in [true, false] {
        let mut cfg = TinyOptions { tie_embeddings: tied, ..Default::default() }.config().unwrap();
        cfg.max_position_embeddings = 128;
        let w = random_weights(&cfg, 5).unwrap();
        let tmp = tinyforge_testkit::temp_dir(&format!("export-python-{tied}"));
        let dir = tmp.path();
        let mut files = Vec::new();
        for q in [None, Some(Quantization::Int8), Some(Quantization::Int4), Some(Quantization::Int8Dynamic)] {
            let path = dir.join(format!("model.{}.onnx", q.map_or("fp32", Quantization::name)));
            export_llama(&cfg, &w, &path, &ExportOptions { quantize: q, ..ExportOptions::default() }).unwrap();
            files.push(path);
        }
        // The plain-op attention graph (any padding) is still written on request.
        let plain = dir.join("model.fp32-plain.onnx");
        export_llama_scheme(&cfg, &w, &plain, &Scheme { fused: false, ..Scheme::f32() }).unwrap();
        files.push(plain);
        // int4 with the head/embedding at 4 bits too (GatherBlockQuantized embedding + offsets).
        let small = dir.join("model.int4-small.onnx");
        export_llama_scheme(&cfg, &w, &small, &Scheme::int4_small()).unwrap();
        files.push(small);
        // int4 with the head split by vocabulary rows: 8-bit first rows, a 4-bit tail.
        let split = dir.join("model.int4-split.onnx");
        let tail = HeadTail { from: (1, 2), format: Format::NBits { bits: 4, block: 16, accuracy_level: 4, offsets: false } };
        export_llama_scheme(&cfg, &w, &split, &Scheme { head_tail: Some(tail), ..Quantization::Int4.scheme() }).unwrap();
        files.push(split);
        check(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    }
}
