//! Pins the exact bytes GraphBuilder writes for a small but varied model against a committed
//! file that an independent reader accepted: `tests/data/check_onnx.py` (the `onnx` package
//! from PyPI: `onnx.checker.check_model(full_check=True)` + shape inference) passed on
//! `tests/data/golden.onnx` (result recorded in tests/data/README.md).
//! Regenerate after an intended encoding change: `TINYFORGE_UPDATE_GOLDEN=1 cargo test --release
//! -p tinyforge-onnx --test golden`, then re-run the Python check.
use std::path::PathBuf;

use tinyforge_onnx::{Attr, DataType, Dim, GraphBuilder};

fn golden_model() -> GraphBuilder {
    let mut g = GraphBuilder::new("golden");
    g.producer("tinyforge", "golden")
        .input("ids", DataType::Int64, &[Dim::sym("batch"), Dim::sym("seq")])
        .output("probs", DataType::Float, &[Dim::sym("batch"), Dim::sym("seq"), Dim::Fixed(3)])
        .output("q", DataType::Uint8, &[Dim::sym("batch"), Dim::sym("seq"), Dim::Fixed(3)])
        .initializer_f32("table", &[4, 2], &[0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 3.0, -2.0])
        .initializer_f32("w", &[2, 3], &[1.0, 0.0, -1.0, 0.5, 0.5, 0.5])
        .initializer_f32("scale", &[], &[0.0078125])
        .initializer_u8("zero_point", &[], &[128])
        .initializer_i8("unused_i8", &[2], &[-3, 4])
        .initializer_i32("unused_i32", &[1], &[7])
        .node("Gather", &["table", "ids"], &["emb"], vec![Attr::int("axis", 0)])
        .node("MatMul", &["emb", "w"], &["logits"], vec![])
        .node("Softmax", &["logits"], &["probs"], vec![Attr::int("axis", -1)])
        .node("QuantizeLinear", &["probs", "scale", "zero_point"], &["q"], vec![])
        .metadata("tinyforge.golden", "1");
    g
}

#[test]
fn builder_output_matches_the_checked_golden_file() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden.onnx");
    let bytes = golden_model().to_bytes().unwrap();
    if std::env::var_os("TINYFORGE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let golden = std::fs::read(&path).expect("tests/data/golden.onnx (regenerate with TINYFORGE_UPDATE_GOLDEN=1)");
    assert_eq!(bytes, golden, "GraphBuilder's encoding changed; see the header of this file");
}
