//! `GraphBuilder::save` puts initializers of 1 KiB and more in `<model>_data` (ONNX external
//! data) at aligned offsets, keeps small ones inline, and `load` reads them back unchanged.
use tinyforge_onnx::proto::TensorProto;
use tinyforge_onnx::{DataType, Dim, GraphBuilder, data_path, load};

fn field<'a>(t: &'a TensorProto, key: &str) -> &'a str {
    t.external_data.iter().find(|e| e.key == key).map_or("", |e| e.value.as_str())
}

fn model(big: usize) -> GraphBuilder {
    let w: Vec<f32> = (0..big * 4).map(|i| i as f32 * 0.5 - 3.0).collect();
    let mut g = GraphBuilder::new("ext");
    g.input("X", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(big as i64)])
        .output("Y", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(4)])
        .initializer_f32("W", &[big as i64, 4], &w)
        .initializer_f32("W2", &[4, 4], &[1.0; 16])
        .initializer_f32("V", &[4, big as i64], &w)
        .node("MatMul", &["X", "W"], &["A"], vec![])
        .node("MatMul", &["A", "W2"], &["Y"], vec![]);
    g
}

#[test]
fn large_initializers_go_to_an_aligned_data_file_and_load_back() {
    let tmp = tinyforge_testkit::temp_dir("onnx-ext");
    let path = tmp.path().join("model_quantized.onnx");
    // W and V are 256 KiB each (64-byte aligned), W2 is 64 bytes (inline).
    let g = model(16384);
    g.save(&path).unwrap();
    let data = data_path(&path);
    assert_eq!(data.file_name().unwrap(), "model_quantized.onnx_data");
    let raw = tinyforge_onnx::decode(&std::fs::read(&path).unwrap()).unwrap();
    let inits = &raw.graph.as_ref().unwrap().initializer;
    let by_name = |n: &str| inits.iter().find(|t| t.name == n).unwrap();
    assert_eq!(by_name("W2").data_location, 0);
    assert_eq!(by_name("W2").raw_data.len(), 64);
    for name in ["W", "V"] {
        let t = by_name(name);
        assert_eq!(t.data_location, 1, "{name} is EXTERNAL");
        assert!(t.raw_data.is_empty());
        assert_eq!(field(t, "location"), "model_quantized.onnx_data");
        assert_eq!(field(t, "length"), (16384 * 16).to_string());
        assert_eq!(field(t, "offset").parse::<u64>().unwrap() % 64, 0, "{name} offset aligned");
    }
    assert!(std::fs::metadata(&path).unwrap().len() < 4096, "weights are not in the .onnx");
    assert_eq!(&load(&path).unwrap(), g.model());
    // No temp files left behind.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);

    // Re-saving a model with only small tensors removes the stale data file.
    model(8).save(&path).unwrap();
    assert!(!data.exists());
    assert_eq!(&load(&path).unwrap(), model(8).model());
}

#[test]
fn megabyte_tensors_start_on_a_page() {
    let tmp = tinyforge_testkit::temp_dir("onnx-ext-page");
    let path = tmp.path().join("m.onnx");
    // W and V are 1 MiB + 16 bytes... each: the second must start on a 4096 boundary.
    model(65537).save(&path).unwrap();
    let raw = tinyforge_onnx::decode(&std::fs::read(&path).unwrap()).unwrap();
    let v = raw.graph.unwrap().initializer.into_iter().find(|t| t.name == "V").unwrap();
    let off: u64 = field(&v, "offset").parse().unwrap();
    assert!(off > 0 && off.is_multiple_of(4096), "V at {off}");
}

#[test]
fn a_truncated_data_file_is_a_read_error_naming_the_tensor() {
    let tmp = tinyforge_testkit::temp_dir("onnx-ext-trunc");
    let path = tmp.path().join("m.onnx");
    model(16384).save(&path).unwrap();
    let data = data_path(&path);
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&data).unwrap().set_len(len - 1).unwrap();
    let e = load(&path).unwrap_err();
    assert_eq!(e.code(), "ONNX_READ");
    assert!(e.to_string().contains("initializer `V`"), "{e}");
}
