//! Developer tool for the quality/speed harness (`test/python/onnx_quality.py`): exports a GGUF or
//! HF folder to `OUT/model.onnx` plus `OUT/tokenizer.json`, so Python `onnxruntime` and
//! `tokenizers` can read it without the CLI.
//! `cargo run --release --target x86_64-unknown-linux-gnu -p tinyforge-onnx --example export_folder -- MODEL OUT [SCHEME]`
//! SCHEME: `none`, `int8` (default), `int4`, `int8-dynamic` (the first INT8 scheme); a `+plain`
//! suffix writes the plain-op attention graph instead of the fused one.
use std::path::PathBuf;

use tinyforge_onnx::{CALIBRATION_TEXT, CALIBRATION_TEXT_NAME, CalibrationText, Format, HeadTail, Quantization, Scheme, export_llama_with};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, out, rest @ ..] = args.as_slice() else {
        eprintln!("usage: export_folder MODEL OUT [none|int8|int4]");
        std::process::exit(2);
    };
    let spec = rest.first().map_or("int8", String::as_str);
    let (name, plain) = spec.strip_suffix("+plain").map_or((spec, false), |n| (n, true));
    let mut scheme = match name {
        "none" => Scheme::f32(),
        name => Quantization::parse(name).map_or_else(
            || {
                eprintln!("unknown quantization {name:?}");
                std::process::exit(2)
            },
            Quantization::scheme,
        ),
    };
    scheme.fused &= !plain;
    // Experiments: TF_LINEAR / TF_DOWN / TF_HEAD = `f32` or `BITS/BLOCK/ACCURACY_LEVEL` (e.g. `8/32/4`).
    for (var, slot) in [("TF_LINEAR", &mut scheme.linear), ("TF_DOWN", &mut scheme.down_proj), ("TF_HEAD", &mut scheme.head)] {
        if let Ok(v) = std::env::var(var) {
            *slot = parse_format(&v).unwrap_or_else(|| panic!("{var}={v}: want f32 or BITS/BLOCK/LEVEL"));
        }
    }
    // TF_HEAD_TAIL=NUM/DEN:FORMAT, e.g. `1/4:4/16/4`: vocabulary rows vocab·NUM/DEN.. of the head
    // in FORMAT; `none` keeps the whole head in TF_HEAD's format.
    if let Ok(v) = std::env::var("TF_HEAD_TAIL") {
        scheme.head_tail = (v != "none").then(|| {
            let parsed = v.split_once(':').and_then(|(from, f)| {
                let (num, den) = from.split_once('/')?;
                Some(HeadTail { from: (num.parse().ok()?, den.parse().ok()?), format: parse_format(f)? })
            });
            parsed.unwrap_or_else(|| panic!("TF_HEAD_TAIL={v}: want NUM/DEN:BITS/BLOCK/LEVEL[/offsets] or none"))
        });
    }
    let (model, out) = (PathBuf::from(model), PathBuf::from(out));
    std::fs::create_dir_all(&out).expect("create OUT");
    let t = std::time::Instant::now();
    let ckpt = tinyforge_model::load_checkpoint(&model).expect("load model");
    let tok = if model.is_dir() {
        tinyforge_tokenizer::Tokenizer::from_file(model.join("tokenizer.json"))
    } else {
        tinyforge_tokenizer::Tokenizer::from_gguf(&model)
    }
    .expect("tokenizer");
    // TF_ALPHA: SmoothQuant's alpha for int8 (`none`: no smoothing).
    if let Ok(v) = std::env::var("TF_ALPHA") {
        scheme.smooth_alpha = v.parse().ok();
    }
    let calibration =
        CalibrationText { name: CALIBRATION_TEXT_NAME.into(), ids: tok.encode(CALIBRATION_TEXT, false).expect("calibration text") };
    let r = export_llama_with(&ckpt.config, &ckpt.weights, &out.join("model.onnx"), &scheme, Some(&calibration)).expect("export");
    tok.save(out.join("tokenizer.json")).expect("save tokenizer");
    std::fs::write(out.join("quant_report.json"), serde_json::to_string_pretty(&r.quant).unwrap()).expect("write report");
    eprintln!("{}: {} bytes in {:.1}s", r.path.display(), r.bytes, t.elapsed().as_secs_f64());
}

fn parse_format(v: &str) -> Option<Format> {
    if v == "f32" {
        return Some(Format::F32);
    }
    // bits/block/level, with a trailing `/offsets` for block offsets: `4/32/4/offsets`.
    let p: Vec<&str> = v.split('/').collect();
    let (bits, block, level, offsets) = match p.as_slice() {
        [bits, block, level] => (bits, block, level, false),
        [bits, block, level, "offsets"] => (bits, block, level, true),
        _ => return None,
    };
    Some(Format::NBits { bits: bits.parse().ok()?, block: block.parse().ok()?, accuracy_level: level.parse().ok()?, offsets })
}
