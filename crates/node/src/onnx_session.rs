//! Binding of `tinyforge_infer::session`: the `OnnxModel` class (load, inspect inputs and
//! outputs, run) over ONNX Runtime, every load and run off the event loop.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{AsyncTask, BigInt64Array, Either3, Float32Array, Int32Array};
use napi::{Env, Task};
use napi_derive::napi;
use tinyforge_infer as inf;

use crate::error::{core_error, guard, js_error};

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
