//! Real ONNX Runtime sessions over graphs written with tinyforge-onnx, checked against numbers
//! computed here in plain Rust.
mod common;

use std::path::Path;

use tinyforge_infer::{HostTensor, OnnxSession, OptimizationLevel, SessionOptions, TensorData, init_runtime};
use tinyforge_onnx::{Attr, DataType, Dim, GraphBuilder};

/// Deterministic pseudo-random values in [-1, 1) (xorshift; no dependency needed).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn f32_of(t: &HostTensor) -> &[f32] {
    match &t.data {
        TensorData::F32(v) => v,
        other => panic!("expected float32, got {}", other.elem_type()),
    }
}

/// Y = Relu(X·W + B), X [batch, 4], W [4, 3].
fn write_mlp(path: &Path, w: &[f32], b: &[f32]) {
    let mut g = GraphBuilder::new("mlp");
    g.input("X", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(4)])
        .output("Y", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(3)])
        .initializer_f32("W", &[4, 3], w)
        .initializer_f32("B", &[3], b)
        .node("MatMul", &["X", "W"], &["XW"], vec![])
        .node("Add", &["XW", "B"], &["Z"], vec![])
        .node("Relu", &["Z"], &["Y"], vec![]);
    g.save(path).unwrap();
}

#[test]
fn mlp_matches_a_reference_computation() {
    let info = common::init();
    assert!(info.version.starts_with("1."), "{info:?}");
    let tmp = common::temp_dir("mlp");
    let dir = tmp.path();
    let path = dir.join("mlp.onnx");
    let (w, b, x) = (values(12, 1), values(3, 2), values(8, 3));
    write_mlp(&path, &w, &b);

    let mut s = OnnxSession::load(&path, &SessionOptions { intra_threads: Some(1), ..Default::default() }).unwrap();
    assert_eq!(s.inputs()[0].name, "X");
    assert_eq!(s.inputs()[0].elem_type, "float32");
    assert_eq!(s.inputs()[0].dims, vec![-1, 4]);
    assert_eq!(s.inputs()[0].dim_names, vec!["batch".to_string(), String::new()]);
    assert_eq!(s.outputs()[0].name, "Y");

    let out = s.run(vec![("X".into(), HostTensor { dims: vec![2, 4], data: TensorData::F32(x.clone()) })]).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, "Y");
    assert_eq!(out[0].1.dims, vec![2, 3]);
    let y = f32_of(&out[0].1);
    for r in 0..2 {
        for c in 0..3 {
            let z: f32 = (0..4).map(|k| x[r * 4 + k] * w[k * 3 + c]).sum::<f32>() + b[c];
            assert!((y[r * 3 + c] - z.max(0.0)).abs() < 1e-5, "row {r} col {c}: {} vs {}", y[r * 3 + c], z.max(0.0));
        }
    }
}

#[test]
fn int64_gather_and_int32_output() {
    common::init();
    let tmp = common::temp_dir("gather");
    let dir = tmp.path();
    let path = dir.join("gather.onnx");
    let table = values(5 * 2, 7);
    let mut g = GraphBuilder::new("embed");
    g.input("ids", DataType::Int64, &[Dim::sym("batch"), Dim::sym("seq")])
        .output("emb", DataType::Float, &[Dim::sym("batch"), Dim::sym("seq"), Dim::Fixed(2)])
        .output("ids32", DataType::Int32, &[Dim::sym("batch"), Dim::sym("seq")])
        .initializer_f32("table", &[5, 2], &table)
        .node("Gather", &["table", "ids"], &["emb"], vec![Attr::int("axis", 0)])
        .node("Cast", &["ids"], &["ids32"], vec![Attr::int("to", DataType::Int32 as i64)]);
    g.save(&path).unwrap();

    let mut s = OnnxSession::load(&path, &SessionOptions { optimization: OptimizationLevel::Disable, ..Default::default() }).unwrap();
    let ids = vec![4_i64, 0, 2];
    let out = s.run(vec![("ids".into(), HostTensor { dims: vec![1, 3], data: TensorData::I64(ids.clone()) })]).unwrap();
    assert_eq!(out[0].1.dims, vec![1, 3, 2]);
    let emb = f32_of(&out[0].1);
    for (i, &id) in ids.iter().enumerate() {
        let id = usize::try_from(id).unwrap();
        assert_eq!(&emb[i * 2..i * 2 + 2], &table[id * 2..id * 2 + 2]);
    }
    assert_eq!(out[1], ("ids32".to_string(), HostTensor { dims: vec![1, 3], data: TensorData::I32(vec![4, 0, 2]) }));

    // Out-of-range index: ORT's own error, surfaced as a run failure (not a crash).
    let err = s.run(vec![("ids".into(), HostTensor { dims: vec![1, 1], data: TensorData::I64(vec![9]) })]).unwrap_err();
    assert_eq!(err.code(), "INFERENCE_FAILED", "{err}");
}

#[test]
fn bad_inputs_are_named_errors() {
    common::init();
    let tmp = common::temp_dir("bad");
    let dir = tmp.path();
    let path = dir.join("mlp.onnx");
    write_mlp(&path, &values(12, 1), &values(3, 2));
    let mut s = OnnxSession::load(&path, &SessionOptions::default()).unwrap();
    let feed = |name: &str, dims: Vec<i64>, data: TensorData| vec![(name.to_string(), HostTensor { dims, data })];
    let cases = [
        feed("Q", vec![1, 4], TensorData::F32(vec![0.0; 4])),
        feed("X", vec![1, 4], TensorData::I64(vec![0; 4])),
        feed("X", vec![1, 5], TensorData::F32(vec![0.0; 5])),
        feed("X", vec![4], TensorData::F32(vec![0.0; 4])),
        feed("X", vec![2, 4], TensorData::F32(vec![0.0; 4])),
        vec![],
    ];
    for feeds in cases {
        let err = s.run(feeds).unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    }
}

#[test]
fn model_errors_are_coded() {
    common::init();
    let tmp = common::temp_dir("models");
    let dir = tmp.path();
    let opts = SessionOptions::default();
    let missing = OnnxSession::load(&dir.join("absent.onnx"), &opts).err().unwrap();
    assert_eq!(missing.code(), "NOT_FOUND");

    std::fs::write(dir.join("junk.onnx"), b"not a protobuf at all").unwrap();
    assert_eq!(OnnxSession::load(&dir.join("junk.onnx"), &opts).err().unwrap().code(), "ONNX_MODEL_LOAD");

    // Structurally valid protobuf, but an operator ORT does not know.
    let mut g = GraphBuilder::new("unknown-op");
    g.input("X", DataType::Float, &[Dim::Fixed(1)]).output("Y", DataType::Float, &[Dim::Fixed(1)]).node("NoSuchOp", &["X"], &["Y"], vec![]);
    g.save(&dir.join("unknown.onnx")).unwrap();
    let err = OnnxSession::load(&dir.join("unknown.onnx"), &opts).err().unwrap();
    assert_eq!(err.code(), "ONNX_MODEL_LOAD");
    assert!(err.to_string().contains("NoSuchOp"), "{err}");

    write_mlp(&dir.join("mlp.onnx"), &values(12, 1), &values(3, 2));
    let zero = SessionOptions { intra_threads: Some(0), ..Default::default() };
    assert_eq!(OnnxSession::load(&dir.join("mlp.onnx"), &zero).err().unwrap().code(), "INVALID_ARGUMENT");
}

#[test]
fn init_is_idempotent_and_reports_the_active_library() {
    let first = common::init();
    let again = init_runtime(Path::new("/some/other/libonnxruntime.so.1")).unwrap();
    assert_eq!(again, first);
    assert_eq!(again.library_path, common::ort_library());
    assert_eq!(again.api_version, 27);
}
