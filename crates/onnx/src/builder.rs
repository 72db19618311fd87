//! `GraphBuilder`: assemble a model (typed inputs/outputs, constant initializers, nodes, opset
//! imports, metadata), check it the way ONNX Runtime would reject it, then encode or save it.
//!
//! The builder owns the `ModelProto` it grows, so `to_bytes`/`save` never copy the (possibly
//! hundreds of MB of) initializers before encoding.
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use prost::Message;

use crate::error::OnnxError;
use crate::proto::{
    AttributeProto, DataType, Dimension, DimensionValue, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use crate::tensor::{tensor_f32, tensor_i8, tensor_i32, tensor_i64, tensor_u8};

/// IR 10 (ONNX 1.16) carries opsets up to 21 and is read by every ONNX Runtime since 1.17.
pub const DEFAULT_IR_VERSION: i64 = 10;
/// Default `ai.onnx` opset; raise it (and the IR version to 11) for opset-23 ops.
pub const DEFAULT_OPSET: i64 = 21;
/// Protobuf's hard limit on one message.
const MAX_PROTO_BYTES: usize = (1 << 31) - 1;

/// One dimension of a graph input/output: a fixed size or a symbolic name shared across inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Fixed(i64),
    Symbolic(String),
}

impl Dim {
    #[must_use]
    pub fn sym(name: &str) -> Self {
        Self::Symbolic(name.to_string())
    }
}

impl From<i64> for Dim {
    fn from(v: i64) -> Self {
        Self::Fixed(v)
    }
}

impl From<&str> for Dim {
    fn from(v: &str) -> Self {
        Self::sym(v)
    }
}

/// A typed tensor value description (graph input or output).
#[must_use]
pub fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(v) => DimensionValue::DimValue(*v),
                Dim::Symbolic(s) => DimensionValue::DimParam(s.clone()),
            }),
            denotation: String::new(),
        })
        .collect();
    let tensor = TypeProtoTensor { elem_type: elem as i32, shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto { tensor_type: Some(tensor), ..Default::default() }),
        ..Default::default()
    }
}

pub struct GraphBuilder {
    model: ModelProto,
}

impl GraphBuilder {
    /// An empty graph importing `ai.onnx` at [`DEFAULT_OPSET`], produced by "tinyforge".
    #[must_use]
    pub fn new(graph_name: &str) -> Self {
        let model = ModelProto {
            ir_version: DEFAULT_IR_VERSION,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: DEFAULT_OPSET }],
            producer_name: "tinyforge".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(GraphProto { name: graph_name.to_string(), ..Default::default() }),
            ..Default::default()
        };
        Self { model }
    }

    fn graph(&mut self) -> &mut GraphProto {
        self.model.graph.get_or_insert_with(GraphProto::default)
    }

    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> &mut Self {
        self.graph().input.push(value_info(name, elem, dims));
        self
    }

    pub fn output(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> &mut Self {
        self.graph().output.push(value_info(name, elem, dims));
        self
    }

    /// Adds a graph input from a ready `ValueInfoProto` (see [`value_info`]).
    pub fn input_info(&mut self, info: ValueInfoProto) -> &mut Self {
        self.graph().input.push(info);
        self
    }

    pub fn output_info(&mut self, info: ValueInfoProto) -> &mut Self {
        self.graph().output.push(info);
        self
    }

    /// Adds a constant tensor (its `name` is how nodes refer to it).
    pub fn initializer(&mut self, tensor: TensorProto) -> &mut Self {
        self.graph().initializer.push(tensor);
        self
    }

    pub fn initializer_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> &mut Self {
        self.initializer(tensor_f32(name, dims, data))
    }

    pub fn initializer_i64(&mut self, name: &str, dims: &[i64], data: &[i64]) -> &mut Self {
        self.initializer(tensor_i64(name, dims, data))
    }

    pub fn initializer_i32(&mut self, name: &str, dims: &[i64], data: &[i32]) -> &mut Self {
        self.initializer(tensor_i32(name, dims, data))
    }

    pub fn initializer_i8(&mut self, name: &str, dims: &[i64], data: &[i8]) -> &mut Self {
        self.initializer(tensor_i8(name, dims, data))
    }

    pub fn initializer_u8(&mut self, name: &str, dims: &[i64], data: &[u8]) -> &mut Self {
        self.initializer(tensor_u8(name, dims, data))
    }

    /// Adds a node of the default `ai.onnx` domain, named `<op>_<index>`.
    pub fn node(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> &mut Self {
        self.node_in("", op, inputs, outputs, attrs)
    }

    /// Adds a node of another domain (e.g. `com.microsoft`); import it with [`Self::opset`].
    pub fn node_in(&mut self, domain: &str, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> &mut Self {
        let name = format!("{op}_{}", self.graph().node.len());
        self.add_node(NodeProto {
            input: inputs.iter().map(|s| (*s).to_string()).collect(),
            output: outputs.iter().map(|s| (*s).to_string()).collect(),
            name,
            op_type: op.to_string(),
            domain: domain.to_string(),
            attribute: attrs,
            doc_string: String::new(),
        })
    }

    /// Adds a fully specified node (explicit name, doc string).
    pub fn add_node(&mut self, node: NodeProto) -> &mut Self {
        self.graph().node.push(node);
        self
    }

    /// Imports operator set `domain` ("" = `ai.onnx`) at `version`, replacing an earlier import.
    pub fn opset(&mut self, domain: &str, version: i64) -> &mut Self {
        self.model.opset_import.retain(|o| o.domain != domain);
        self.model.opset_import.push(OperatorSetIdProto { domain: domain.to_string(), version });
        self
    }

    pub fn ir_version(&mut self, version: i64) -> &mut Self {
        self.model.ir_version = version;
        self
    }

    pub fn producer(&mut self, name: &str, version: &str) -> &mut Self {
        self.model.producer_name = name.to_string();
        self.model.producer_version = version.to_string();
        self
    }

    /// Sets a `metadata_props` entry (ORT exposes these as custom metadata), replacing the key.
    pub fn metadata(&mut self, key: &str, value: &str) -> &mut Self {
        self.model.metadata_props.retain(|e| e.key != key);
        self.model.metadata_props.push(StringStringEntryProto { key: key.to_string(), value: value.to_string() });
        self
    }

    /// The model as built so far (unchecked).
    #[must_use]
    pub fn model(&self) -> &ModelProto {
        &self.model
    }

    /// Checks the graph, then hands over the model.
    pub fn into_model(self) -> Result<ModelProto, OnnxError> {
        validate(&self.model)?;
        Ok(self.model)
    }

    /// Checks the graph and encodes it as an `.onnx` byte string.
    pub fn to_bytes(&self) -> Result<Vec<u8>, OnnxError> {
        validate(&self.model)?;
        let len = self.model.encoded_len();
        if len > MAX_PROTO_BYTES {
            return Err(OnnxError::TooLarge { bytes: len });
        }
        Ok(self.model.encode_to_vec())
    }

    /// Writes the model atomically: a temp file in the same directory, fsync, rename. A reader
    /// never sees a half-written model, and a failed write leaves any older file in place.
    /// Initializers of 1 KiB and more go to `<file name>_data` next to it (ONNX external data,
    /// memory-mapped by ORT: see `external_data`).
    pub fn save(&self, path: &Path) -> Result<(), OnnxError> {
        validate(&self.model)?;
        crate::external_data::save_split(&self.model, path, MAX_PROTO_BYTES)
    }
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OnnxError> {
    let err = |source| OnnxError::Write { path: path.to_path_buf(), source };
    let file_name = path.file_name().ok_or_else(|| err(std::io::Error::other("path has no file name")))?;
    let tmp = path.with_file_name(format!(".{}.tmp-{}", file_name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// The checks ONNX Runtime would otherwise fail on at load time, with messages that name the node.
fn validate(model: &ModelProto) -> Result<(), OnnxError> {
    let graph = model.graph.as_ref();
    let graph_name = graph.map(|g| g.name.clone()).unwrap_or_default();
    let fail = |reason: String| Err(OnnxError::InvalidGraph { graph: graph_name.clone(), reason });
    let Some(graph) = graph else {
        return fail("model has no graph".into());
    };
    if !model.opset_import.iter().any(|o| o.domain.is_empty() || o.domain == "ai.onnx") {
        return fail("no opset import for the default domain (ai.onnx)".into());
    }
    let mut defined: HashSet<&str> = HashSet::new();
    for vi in &graph.input {
        if vi.name.is_empty() || !defined.insert(&vi.name) {
            return fail(format!("graph input `{}` is empty or defined twice", vi.name));
        }
    }
    for t in &graph.initializer {
        let Some(elem) = t.elem_type() else {
            return fail(format!("initializer `{}` has unknown data_type {}", t.name, t.data_type));
        };
        if t.dims.iter().any(|&d| d < 0) {
            return fail(format!("initializer `{}` has a negative dimension {:?}", t.name, t.dims));
        }
        if let Some(size) = elem.byte_size().filter(|_| !t.raw_data.is_empty() || t.num_elements() == 0) {
            let want = t.num_elements() * size;
            if t.raw_data.len() != want {
                return fail(format!(
                    "initializer `{}` dims {:?} need {want} bytes of {}, raw_data has {}",
                    t.name,
                    t.dims,
                    elem.js_name(),
                    t.raw_data.len()
                ));
            }
        }
        // An initializer may shadow a graph input of the same name (an overridable default).
        defined.insert(&t.name);
    }
    for (i, node) in graph.node.iter().enumerate() {
        let domain = if node.domain == "ai.onnx" { "" } else { node.domain.as_str() };
        if !model.opset_import.iter().any(|o| o.domain == domain || (domain.is_empty() && o.domain == "ai.onnx")) {
            return fail(format!("node #{i} `{}` ({}) uses domain `{domain}` with no opset import", node.name, node.op_type));
        }
        if let Some(missing) = node.input.iter().find(|n| !n.is_empty() && !defined.contains(n.as_str())) {
            return fail(format!(
                "node #{i} `{}` ({}) reads `{missing}`, which no input, initializer or earlier node defines",
                node.name, node.op_type
            ));
        }
        for out in node.output.iter().filter(|n| !n.is_empty()) {
            if !defined.insert(out) {
                return fail(format!("node #{i} `{}` ({}) writes `{out}`, which is already defined", node.name, node.op_type));
            }
        }
    }
    if let Some(out) = graph.output.iter().find(|o| !defined.contains(o.name.as_str())) {
        return fail(format!("graph output `{}` is never produced", out.name));
    }
    Ok(())
}

/// Decodes `.onnx` bytes.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, OnnxError> {
    ModelProto::decode(bytes).map_err(|source| OnnxError::Decode { path: None, source })
}

/// Reads and decodes an `.onnx` file, with external initializers read back into `raw_data`.
pub fn load(path: &Path) -> Result<ModelProto, OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Read { path: path.to_path_buf(), source })?;
    let mut model = ModelProto::decode(bytes.as_slice()).map_err(|source| OnnxError::Decode { path: Some(path.to_path_buf()), source })?;
    crate::external_data::load_external(&mut model, path)?;
    Ok(model)
}
