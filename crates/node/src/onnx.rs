//! Binding of `tinyforge_onnx` (write a graph from a JS description) and
//! `tinyforge_infer::session` (the `OnnxModel` class: load, inspect, run off the event loop).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{AsyncTask, BigInt64Array, Either3, Either5, Float32Array, Int8Array, Int32Array, Uint8Array};
use napi::{Env, Task};
use napi_derive::napi;
use tinyforge_infer as inf;
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

/// An input or output of a loaded model. `dims` has -1 where the size is dynamic;
/// `dimNames` has the symbolic name of each dimension ("" when fixed).
#[napi(object, object_from_js = false, js_name = "OnnxTensorInfo")]
#[derive(Clone)]
pub struct JsTensorInfo {
    pub name: String,
    pub elem_type: String,
    pub dims: Vec<i64>,
    pub dim_names: Vec<String>,
}

impl From<&inf::TensorInfo> for JsTensorInfo {
    fn from(t: &inf::TensorInfo) -> Self {
        Self { name: t.name.clone(), elem_type: t.elem_type.clone(), dims: t.dims.clone(), dim_names: t.dim_names.clone() }
    }
}

/// A dense row-major tensor: `dims` and the data as a typed array of its element type.
#[napi(object, js_name = "OnnxTensor")]
pub struct JsTensor {
    pub dims: Vec<i64>,
    pub data: Either3<Float32Array, BigInt64Array, Int32Array>,
}

#[napi(object, object_to_js = false, js_name = "OnnxLoadOptions")]
pub struct JsLoadOptions {
    /// Threads one operator may use. @default ONNX Runtime's default (one per core)
    pub threads: Option<u32>,
    /// "disable" | "basic" | "extended" | "all". @default "all"
    pub optimization: Option<String>,
}

pub struct LoadTask {
    path: PathBuf,
    threads: Option<u32>,
    optimization: Option<String>,
}

impl LoadTask {
    // Parsed in the task, not in `load`, so a bad option rejects the promise instead of throwing.
    fn options(&self) -> napi::Result<inf::SessionOptions> {
        let optimization = match self.optimization.as_deref() {
            None | Some("all") => inf::OptimizationLevel::All,
            Some("extended") => inf::OptimizationLevel::Extended,
            Some("basic") => inf::OptimizationLevel::Basic,
            Some("disable") => inf::OptimizationLevel::Disable,
            Some(other) => {
                return Err(js_error("INVALID_ARGUMENT", format!("optimization `{other}`: use disable, basic, extended or all")));
            }
        };
        Ok(inf::SessionOptions { intra_threads: self.threads.map(|n| n as usize), optimization })
    }
}

impl Task for LoadTask {
    type Output = inf::OnnxSession;
    type JsValue = JsOnnxModel;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("loading an ONNX model", || {
            let options = self.options()?;
            inf::OnnxSession::load(&self.path, &options).map_err(core_error)
        })
    }

    fn resolve(&mut self, _env: Env, session: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(JsOnnxModel {
            inputs: session.inputs().iter().map(Into::into).collect(),
            outputs: session.outputs().iter().map(Into::into).collect(),
            path: self.path.display().to_string(),
            session: Arc::new(Mutex::new(session)),
        })
    }
}

pub struct RunTask {
    session: Arc<Mutex<inf::OnnxSession>>,
    feeds: Vec<(String, inf::HostTensor)>,
}

impl Task for RunTask {
    type Output = Vec<(String, inf::HostTensor)>;
    type JsValue = HashMap<String, JsTensor>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("running an ONNX model", || {
            // A poisoned lock only means an earlier run panicked mid-way; the ORT session itself
            // holds no Rust invariants that a panic could break.
            let mut session = self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            session.run(std::mem::take(&mut self.feeds)).map_err(core_error)
        })
    }

    fn resolve(&mut self, _env: Env, outputs: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(outputs
            .into_iter()
            .map(|(name, t)| {
                let data = match t.data {
                    inf::TensorData::F32(v) => Either3::A(Float32Array::new(v)),
                    inf::TensorData::I64(v) => Either3::B(BigInt64Array::new(v)),
                    inf::TensorData::I32(v) => Either3::C(Int32Array::new(v)),
                };
                (name, JsTensor { dims: t.dims, data })
            })
            .collect())
    }
}

/// An ONNX model loaded into ONNX Runtime (CPU). Load with `OnnxModel.load`; `run` works on a
/// libuv thread, never on the event loop; concurrent runs on one model are serialised.
#[napi(js_name = "OnnxModel")]
pub struct JsOnnxModel {
    session: Arc<Mutex<inf::OnnxSession>>,
    inputs: Vec<JsTensorInfo>,
    outputs: Vec<JsTensorInfo>,
    path: String,
}

#[napi]
impl JsOnnxModel {
    /// Loads a model file. Needs the runtime (`index.cjs` loads it first). Rejects with
    /// `NOT_FOUND`, `ONNX_MODEL_LOAD`, `INVALID_ARGUMENT` or `ORT_NOT_INITIALIZED`.
    // writable/configurable: index.cjs wraps this static (error codes, loading the runtime first).
    #[napi(catch_unwind, writable = true, configurable = true, ts_return_type = "Promise<OnnxModel>")]
    pub fn load(path: String, options: Option<JsLoadOptions>) -> AsyncTask<LoadTask> {
        let options = options.unwrap_or(JsLoadOptions { threads: None, optimization: None });
        AsyncTask::new(LoadTask { path: PathBuf::from(path), threads: options.threads, optimization: options.optimization })
    }

    #[napi(getter)]
    pub fn inputs(&self) -> Vec<JsTensorInfo> {
        self.inputs.clone()
    }

    #[napi(getter)]
    pub fn outputs(&self) -> Vec<JsTensorInfo> {
        self.outputs.clone()
    }

    #[napi(getter)]
    pub fn path(&self) -> String {
        self.path.clone()
    }

    /// Runs the model: `feeds` maps input names to tensors (Float32Array, BigInt64Array or
    /// Int32Array data); resolves to every output by name. Rejects with `INVALID_ARGUMENT`,
    /// `INFERENCE_FAILED` or `UNSUPPORTED_OUTPUT_TYPE`.
    #[napi(catch_unwind, ts_return_type = "Promise<Record<string, OnnxTensor>>")]
    pub fn run(&self, feeds: HashMap<String, JsTensor>) -> AsyncTask<RunTask> {
        // Copy out of the JS typed arrays now: the worker thread must not touch JS memory.
        let feeds = feeds
            .into_iter()
            .map(|(name, t)| {
                let data = match &t.data {
                    Either3::A(v) => inf::TensorData::F32(v.to_vec()),
                    Either3::B(v) => inf::TensorData::I64(v.to_vec()),
                    Either3::C(v) => inf::TensorData::I32(v.to_vec()),
                };
                (name, inf::HostTensor { dims: t.dims, data })
            })
            .collect();
        AsyncTask::new(RunTask { session: Arc::clone(&self.session), feeds })
    }
}

#[napi(object, object_to_js = false, js_name = "ExportOnnxOptions")]
pub struct JsExportOptions {
    /// "none" (f32) | "int8" (dynamic INT8, per-channel weights). @default "none"
    pub quantize: Option<String>,
    /// PEFT LoRA adapter folder merged into the weights before export.
    pub adapter: Option<String>,
}

#[napi(object, js_name = "OnnxExport")]
pub struct JsOnnxExport {
    pub path: String,
    pub bytes: f64,
    pub layers: u32,
    /// "none" | "int8"
    pub quantization: String,
}

pub struct ExportTask {
    model: PathBuf,
    out: PathBuf,
    options: Option<JsExportOptions>,
}

impl Task for ExportTask {
    type Output = ox::ExportReport;
    type JsValue = JsOnnxExport;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("exporting to ONNX", || {
            let opts = self.options.as_ref();
            let quantize = match opts.and_then(|o| o.quantize.as_deref()) {
                None | Some("none") => None,
                Some("int8") => Some(ox::Quantization::Int8),
                Some(other) => return Err(js_error("INVALID_ARGUMENT", format!("quantize: expected \"none\" or \"int8\", got {other:?}"))),
            };
            let mut ckpt = tinyforge_model::load_checkpoint(&self.model).map_err(core_error)?;
            if let Some(dir) = opts.and_then(|o| o.adapter.as_deref()).map(Path::new) {
                let adapter = tinyforge_train::adapter::load_peft(dir).map_err(core_error)?;
                tinyforge_train::merge::merge_into(&mut ckpt.weights, &ckpt.config, &adapter, dir).map_err(core_error)?;
            }
            ox::export_llama(&ckpt.config, &ckpt.weights, &self.out, &ox::ExportOptions { quantize }).map_err(core_error)
        })
    }

    fn resolve(&mut self, _env: Env, r: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(JsOnnxExport {
            path: r.path.display().to_string(),
            bytes: r.bytes as f64,
            layers: r.layers as u32,
            quantization: r.quantization.map_or("none", ox::Quantization::name).into(),
        })
    }
}

/// Exports the Llama model at `modelPath` (HF folder or GGUF; `options.adapter` merged first) to
/// `outPath` as a decoder with KV cache (Optimum I/O names), f32 or INT8. Rejects with
/// MODEL_NOT_FOUND, ADAPTER_INVALID, INVALID_ARGUMENT, WRITE_FAILED, ...
#[napi(catch_unwind, ts_return_type = "Promise<OnnxExport>")]
pub fn export_onnx(model_path: String, out_path: String, options: Option<JsExportOptions>) -> AsyncTask<ExportTask> {
    AsyncTask::new(ExportTask { model: model_path.into(), out: out_path.into(), options })
}
