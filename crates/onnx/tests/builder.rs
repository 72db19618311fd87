//! GraphBuilder: encode → decode round trips, the structural checks, atomic save.
use tinyforge_onnx::proto::{AttributeType, DimensionValue};
use tinyforge_onnx::{Attr, DataType, Dim, GraphBuilder, decode, load};

fn mlp() -> GraphBuilder {
    let mut g = GraphBuilder::new("mlp");
    g.input("X", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(3)])
        .output("Y", DataType::Float, &[Dim::sym("batch"), Dim::Fixed(2)])
        .initializer_f32("W", &[3, 2], &[0.5, -1.0, 2.0, 0.25, -0.75, 1.5])
        .initializer_f32("B", &[2], &[0.1, -0.2])
        .node("MatMul", &["X", "W"], &["XW"], vec![])
        .node("Add", &["XW", "B"], &["Z"], vec![])
        .node("Relu", &["Z"], &["Y"], vec![])
        .metadata("tinyforge.kind", "test");
    g
}

#[test]
fn round_trip_keeps_every_field() {
    let mut g = mlp();
    g.initializer_i64("idx", &[2], &[0, -3])
        .initializer_i8("q", &[2, 2], &[-128, 127, 0, 1])
        .initializer_u8("zp", &[], &[128])
        .opset("com.microsoft", 1)
        .node("Gather", &["W", "idx"], &["G"], vec![Attr::int("axis", 0)])
        .node("LeakyRelu", &["G"], &["L"], vec![Attr::float("alpha", 0.125)])
        .node("Transpose", &["L"], &["T"], vec![Attr::ints("perm", &[1, 0])])
        .node_in("com.microsoft", "Gelu", &["T"], &["U"], vec![Attr::string("approximate", "none"), Attr::floats("f", &[1.5, 2.5])]);
    let bytes = g.to_bytes().unwrap();
    let back = decode(&bytes).unwrap();
    assert_eq!(&back, g.model());

    let graph = back.graph.as_ref().unwrap();
    assert_eq!(graph.node.len(), 7);
    assert_eq!(graph.node[6].domain, "com.microsoft");
    let alpha = &graph.node[4].attribute[0];
    assert_eq!((alpha.r#type, alpha.f), (AttributeType::Float as i32, 0.125));
    assert_eq!(graph.node[5].attribute[0].ints, vec![1, 0]);
    assert_eq!(graph.node[6].attribute[0].s, b"none");
    let dims = &graph.input[0].r#type.as_ref().unwrap().tensor_type.as_ref().unwrap().shape.as_ref().unwrap().dim;
    assert_eq!(dims[0].value, Some(DimensionValue::DimParam("batch".into())));
    assert_eq!(dims[1].value, Some(DimensionValue::DimValue(3)));
    let w = graph.initializer.iter().find(|t| t.name == "W").unwrap();
    assert_eq!(w.to_f32_vec().unwrap(), vec![0.5, -1.0, 2.0, 0.25, -0.75, 1.5]);
    assert_eq!(graph.initializer[2].to_i64_vec().unwrap(), vec![0, -3]);
    assert_eq!(graph.initializer[3].raw_data, vec![0x80, 0x7f, 0, 1]);
    assert_eq!(back.metadata_props[0].key, "tinyforge.kind");
    assert!(back.opset_import.iter().any(|o| o.domain == "com.microsoft" && o.version == 1));
}

/// Bytes for a fixed tiny model written by hand from the protobuf wire format, so the encoding is
/// pinned by something other than our own decoder: field 1 (ir_version) varint 10, field 8
/// (opset_import) { field 2 (version) = 21 }, field 7 (graph) { field 2 (name) = "g" }.
#[test]
fn wire_format_matches_hand_encoded_bytes() {
    let g = GraphBuilder::new("g");
    let mut model = g.model().clone();
    model.producer_name.clear();
    model.producer_version.clear();
    let expected: &[u8] = &[0x08, 10, 0x3a, 3, 0x12, 1, b'g', 0x42, 2, 0x10, 21];
    assert_eq!(prost::Message::encode_to_vec(&model), expected);
}

#[test]
fn rejects_undefined_values_and_bad_initializers() {
    let mut g = mlp();
    g.node("Relu", &["nope"], &["R"], vec![]);
    let err = g.to_bytes().unwrap_err();
    assert_eq!(err.code(), "ONNX_GRAPH_INVALID");
    assert!(err.to_string().contains("`nope`"), "{err}");

    let mut g = mlp();
    g.initializer_f32("bad", &[2, 2], &[1.0]);
    assert!(g.to_bytes().unwrap_err().to_string().contains("`bad`"));

    let mut g = mlp();
    g.node("Relu", &["X"], &["Y"], vec![]);
    assert!(g.to_bytes().unwrap_err().to_string().contains("already defined"));

    let mut g = mlp();
    g.output("missing", DataType::Float, &[]);
    assert!(g.to_bytes().unwrap_err().to_string().contains("never produced"));

    let mut g = mlp();
    g.node_in("com.microsoft", "Gelu", &["Y"], &["G"], vec![]);
    assert!(g.to_bytes().unwrap_err().to_string().contains("no opset import"));
}

#[test]
fn save_is_atomic_and_loads_back() {
    let tmp = tinyforge_testkit::temp_dir("onnx-save");
    let dir = tmp.path();
    let path = dir.join("mlp.onnx");
    mlp().save(&path).unwrap();
    let back = load(&path).unwrap();
    assert_eq!(&back, mlp().model());
    // No temp file left behind.
    let names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // A failed save (directory missing) reports WRITE_FAILED and leaves nothing.
    let err = mlp().save(&dir.join("no/such/dir/m.onnx")).unwrap_err();
    assert_eq!(err.code(), "WRITE_FAILED");
    assert_eq!(load(&dir.join("absent.onnx")).unwrap_err().code(), "ONNX_READ");
    std::fs::write(dir.join("junk.onnx"), b"\xff\xff\xff").unwrap();
    assert_eq!(load(&dir.join("junk.onnx")).unwrap_err().code(), "ONNX_DECODE");
}
