//! Binding of `tinyforge_onnx`'s graph writer: `writeOnnxModel(spec, path)` builds a graph
//! described in JS (values, initializers, nodes, opsets) and saves it.
use std::collections::HashMap;
use std::path::Path;

use napi::bindgen_prelude::{BigInt64Array, Either5, Float32Array, Int8Array, Int32Array, Uint8Array};
use napi_derive::napi;
use tinyforge_onnx as ox;

use crate::error::{core_error, guard, js_error};

/// A graph input or output: element type (`float32`, `int64`, `int32`, `int8`, `uint8`, `bool`,
/// `float16`, ...) and dims, each a fixed size or a symbolic name such as "batch".
#[napi(object, object_to_js = false, js_name = "OnnxValueSpec")]
pub struct JsValueSpec {
    pub name: String,
    pub elem_type: String,
    pub dims: Vec<napi::Either<i64, String>>,
}

/// A constant tensor; its element type follows the typed array.
#[napi(object, object_to_js = false, js_name = "OnnxTensorSpec")]
pub struct JsTensorSpec {
    pub name: String,
    pub dims: Vec<i64>,
    pub data: Either5<Float32Array, BigInt64Array, Int32Array, Int8Array, Uint8Array>,
}

/// A node attribute: set exactly one of the value fields.
#[napi(object, object_to_js = false, js_name = "OnnxAttributeSpec")]
pub struct JsAttributeSpec {
    pub name: String,
    pub float: Option<f64>,
    pub int: Option<i64>,
    pub string: Option<String>,
    pub floats: Option<Vec<f64>>,
    pub ints: Option<Vec<i64>>,
    pub tensor: Option<JsTensorSpec>,
}

#[napi(object, object_to_js = false, js_name = "OnnxNodeSpec")]
pub struct JsNodeSpec {
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Operator domain, e.g. "com.microsoft" (import it in `opsets`). @default "" (ai.onnx)
    pub domain: Option<String>,
    /// @default "<opType>_<index>"
    pub name: Option<String>,
    pub attributes: Option<Vec<JsAttributeSpec>>,
}

#[napi(object, object_to_js = false, js_name = "OnnxOpsetSpec")]
pub struct JsOpsetSpec {
    pub domain: String,
    pub version: i64,
}

/// A whole model for `writeOnnxModel`: nodes in topological order.
#[napi(object, object_to_js = false, js_name = "OnnxModelSpec")]
pub struct JsModelSpec {
    /// @default "graph"
    pub name: Option<String>,
    pub inputs: Vec<JsValueSpec>,
    pub outputs: Vec<JsValueSpec>,
    pub initializers: Option<Vec<JsTensorSpec>>,
    pub nodes: Vec<JsNodeSpec>,
    /// Operator sets; entries replace the default `{ domain: "", version: 21 }` per domain.
    pub opsets: Option<Vec<JsOpsetSpec>>,
    /// @default 10
    pub ir_version: Option<i64>,
    /// `metadata_props` entries.
    pub metadata: Option<HashMap<String, String>>,
}

fn spec_error(msg: String) -> napi::Error {
    js_error("INVALID_ARGUMENT", msg)
}

fn tensor_proto(t: &JsTensorSpec) -> ox::proto::TensorProto {
    match &t.data {
        Either5::A(v) => ox::tensor_f32(&t.name, &t.dims, v),
        Either5::B(v) => ox::tensor_i64(&t.name, &t.dims, v),
        Either5::C(v) => ox::tensor_i32(&t.name, &t.dims, v),
        Either5::D(v) => ox::tensor_i8(&t.name, &t.dims, v),
        Either5::E(v) => ox::tensor_u8(&t.name, &t.dims, v),
    }
}

fn value_spec(v: &JsValueSpec) -> napi::Result<ox::proto::ValueInfoProto> {
    let elem = ox::DataType::from_js_name(&v.elem_type)
        .ok_or_else(|| spec_error(format!("value `{}`: unknown elemType `{}` (e.g. float32, int64, int32)", v.name, v.elem_type)))?;
    let dims: Vec<ox::Dim> = v
        .dims
        .iter()
        .map(|d| match d {
            napi::Either::A(n) => ox::Dim::Fixed(*n),
            napi::Either::B(s) => ox::Dim::sym(s),
        })
        .collect();
    Ok(ox::value_info(&v.name, elem, &dims))
}

#[allow(clippy::cast_possible_truncation)] // ONNX float attributes are f32; JS numbers are f64.
fn attribute(node: &str, a: &JsAttributeSpec) -> napi::Result<ox::proto::AttributeProto> {
    let mut found = Vec::new();
    if let Some(f) = a.float {
        found.push(ox::Attr::float(&a.name, f as f32));
    }
    if let Some(i) = a.int {
        found.push(ox::Attr::int(&a.name, i));
    }
    if let Some(s) = &a.string {
        found.push(ox::Attr::string(&a.name, s));
    }
    if let Some(fs) = &a.floats {
        found.push(ox::Attr::floats(&a.name, &fs.iter().map(|&f| f as f32).collect::<Vec<_>>()));
    }
    if let Some(is) = &a.ints {
        found.push(ox::Attr::ints(&a.name, is));
    }
    if let Some(t) = &a.tensor {
        found.push(ox::Attr::tensor(&a.name, tensor_proto(t)));
    }
    if found.len() != 1 {
        return Err(spec_error(format!(
            "node `{node}` attribute `{}`: set exactly one of float, int, string, floats, ints, tensor (got {})",
            a.name,
            found.len()
        )));
    }
    Ok(found.remove(0))
}

/// Writes an ONNX model described in JS to `path` (atomically). For tests, debugging and small
/// hand-made graphs; the exporter builds its graphs in Rust. Throws `INVALID_ARGUMENT` (a bad spec),
/// `ONNX_GRAPH_INVALID` (undefined value, size mismatch...) or `WRITE_FAILED`.
#[napi(catch_unwind)]
pub fn write_onnx_model(spec: JsModelSpec, path: String) -> napi::Result<()> {
    guard("writing an ONNX model", || write_spec(&spec, &path))
}

fn write_spec(spec: &JsModelSpec, path: &str) -> napi::Result<()> {
    let mut g = ox::GraphBuilder::new(spec.name.as_deref().unwrap_or("graph"));
    for v in &spec.inputs {
        g.input_info(value_spec(v)?);
    }
    for v in &spec.outputs {
        g.output_info(value_spec(v)?);
    }
    for t in spec.initializers.iter().flatten() {
        g.initializer(tensor_proto(t));
    }
    for (i, n) in spec.nodes.iter().enumerate() {
        let name = n.name.clone().unwrap_or_else(|| format!("{}_{i}", n.op_type));
        let attribute = n.attributes.iter().flatten().map(|a| attribute(&name, a)).collect::<napi::Result<Vec<_>>>()?;
        g.add_node(ox::proto::NodeProto {
            input: n.inputs.clone(),
            output: n.outputs.clone(),
            name,
            op_type: n.op_type.clone(),
            domain: n.domain.clone().unwrap_or_default(),
            attribute,
            doc_string: String::new(),
        });
    }
    for o in spec.opsets.iter().flatten() {
        g.opset(&o.domain, o.version);
    }
    if let Some(v) = spec.ir_version {
        g.ir_version(v);
    }
    let mut metadata: Vec<_> = spec.metadata.iter().flatten().collect();
    metadata.sort(); // HashMap order is random; keep files reproducible.
    for (k, v) in metadata {
        g.metadata(k, v);
    }
    g.save(Path::new(&path)).map_err(core_error)
}
