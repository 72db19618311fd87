//! A loaded ONNX model: its typed inputs/outputs and `run` from named host tensors to named host
//! tensors. Host tensors are plain `Vec`s so callers (the napi binding, the generation loop) never
//! see ort types.
use std::path::Path;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, Tensor, TensorElementType, ValueType};

use crate::error::InferError;
use crate::runtime::active_runtime;

/// How much ORT rewrites the graph at load time. `All` (the default) enables the fusions the
/// INT8 export relies on (MatMulInteger + scales → DynamicQuantizeMatMul).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OptimizationLevel {
    Disable,
    Basic,
    Extended,
    #[default]
    All,
}

#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// Threads for one operator (ORT's intra-op pool); `None` = ORT's default (one per core).
    pub intra_threads: Option<usize>,
    pub optimization: OptimizationLevel,
}

/// Name, element type (ORT's JS names: `float32`, `int64`, ...) and shape of an input/output.
/// `dims` has -1 for a dynamic dimension; `dim_names` has its symbolic name ("" when fixed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub elem_type: String,
    pub dims: Vec<i64>,
    pub dim_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
    I32(Vec<i32>),
}

impl TensorData {
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::I32(v) => v.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[must_use]
    pub fn elem_type(&self) -> &'static str {
        match self {
            Self::F32(_) => "float32",
            Self::I64(_) => "int64",
            Self::I32(_) => "int32",
        }
    }
}

/// A dense row-major tensor in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub dims: Vec<i64>,
    pub data: TensorData,
}

pub struct OnnxSession {
    session: Session,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
}

impl OnnxSession {
    /// Loads `path` into a CPU session. Needs [`crate::init_runtime`] to have succeeded.
    pub fn load(path: &Path, options: &SessionOptions) -> Result<Self, InferError> {
        active_runtime()?;
        if !path.is_file() {
            return Err(InferError::ModelNotFound { path: path.to_path_buf() });
        }
        let load_err = |e: ort::Error| InferError::ModelLoad { path: path.to_path_buf(), reason: e.message().to_string() };
        let level = match options.optimization {
            OptimizationLevel::Disable => GraphOptimizationLevel::Disable,
            OptimizationLevel::Basic => GraphOptimizationLevel::Level1,
            OptimizationLevel::Extended => GraphOptimizationLevel::Level2,
            OptimizationLevel::All => GraphOptimizationLevel::All,
        };
        let mut builder = Session::builder().map_err(load_err)?.with_optimization_level(level).map_err(|e| load_err(e.into()))?;
        if crate::decoder::needs_exact_int8_matmul() {
            builder = builder.with_config_entry(crate::decoder::X64_QUANT_PRECISION, "1").map_err(|e| load_err(e.into()))?;
        }
        if let Some(n) = options.intra_threads {
            if n == 0 {
                return Err(InferError::InvalidOption { option: "threads".into(), reason: "must be at least 1".into() });
            }
            builder = builder.with_intra_threads(n).map_err(|e| load_err(e.into()))?;
        }
        let session = builder.commit_from_file(path).map_err(load_err)?;
        let inputs = session.inputs().iter().map(|o| tensor_info(o.name(), o.dtype())).collect();
        let outputs = session.outputs().iter().map(|o| tensor_info(o.name(), o.dtype())).collect();
        Ok(Self { session, inputs, outputs })
    }

    #[must_use]
    pub fn inputs(&self) -> &[TensorInfo] {
        &self.inputs
    }

    #[must_use]
    pub fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    /// Runs the model on named inputs and returns every output, in the model's output order.
    /// Inputs are checked against the model first so errors name the input, not an ORT internal.
    pub fn run(&mut self, feeds: Vec<(String, HostTensor)>) -> Result<Vec<(String, HostTensor)>, InferError> {
        let mut values: Vec<(String, DynValue)> = Vec::with_capacity(feeds.len());
        for (name, tensor) in feeds {
            let invalid = |reason: String| InferError::InvalidInput { name: name.clone(), reason };
            let Some(info) = self.inputs.iter().find(|i| i.name == name) else {
                let known: Vec<&str> = self.inputs.iter().map(|i| i.name.as_str()).collect();
                return Err(invalid(format!("the model has no such input (inputs: {})", known.join(", "))));
            };
            if info.elem_type != tensor.data.elem_type() {
                return Err(invalid(format!("expected {} data, got {}", info.elem_type, tensor.data.elem_type())));
            }
            check_dims(info, &tensor).map_err(invalid)?;
            let shape: Vec<i64> = tensor.dims;
            let value = match tensor.data {
                TensorData::F32(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
                TensorData::I64(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
                TensorData::I32(v) => Tensor::from_array((shape, v)).map(Tensor::into_dyn),
            }
            .map_err(|e| invalid(e.message().to_string()))?;
            values.push((name, value));
        }
        if let Some(missing) = self.inputs.iter().find(|i| !values.iter().any(|(n, _)| *n == i.name)) {
            return Err(InferError::InvalidInput { name: missing.name.clone(), reason: "missing: the model requires this input".into() });
        }
        let outputs = self.session.run(values).map_err(|e| InferError::Run { reason: e.message().to_string() })?;
        let mut result = Vec::with_capacity(outputs.len());
        for (name, value) in &outputs {
            result.push((name.to_string(), host_tensor(name, &value)?));
        }
        Ok(result)
    }
}

fn check_dims(info: &TensorInfo, tensor: &HostTensor) -> Result<(), String> {
    if tensor.dims.len() != info.dims.len() {
        return Err(format!("expected rank {} {:?}, got dims {:?}", info.dims.len(), info.dims, tensor.dims));
    }
    if let Some((i, (want, got))) = info.dims.iter().zip(&tensor.dims).enumerate().find(|(_, (w, g))| **w >= 0 && w != g) {
        return Err(format!("dimension {i} must be {want}, got {got} (dims {:?})", tensor.dims));
    }
    if tensor.dims.iter().any(|&d| d < 0) {
        return Err(format!("negative dimension in {:?}", tensor.dims));
    }
    let n: i64 = tensor.dims.iter().product();
    if usize::try_from(n).ok() != Some(tensor.data.len()) {
        return Err(format!("dims {:?} hold {n} elements, data has {}", tensor.dims, tensor.data.len()));
    }
    Ok(())
}

fn host_tensor(name: &str, value: &DynValue) -> Result<HostTensor, InferError> {
    let unsupported = || InferError::UnsupportedOutput { name: name.to_string(), elem_type: type_name(value.dtype()) };
    let run_err = |e: ort::Error| InferError::Run { reason: format!("reading output `{name}`: {}", e.message()) };
    let (dims, data) = match value.dtype().tensor_type().ok_or_else(unsupported)? {
        TensorElementType::Float32 => {
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(run_err)?;
            (shape.to_vec(), TensorData::F32(data.to_vec()))
        }
        TensorElementType::Int64 => {
            let (shape, data) = value.try_extract_tensor::<i64>().map_err(run_err)?;
            (shape.to_vec(), TensorData::I64(data.to_vec()))
        }
        TensorElementType::Int32 => {
            let (shape, data) = value.try_extract_tensor::<i32>().map_err(run_err)?;
            (shape.to_vec(), TensorData::I32(data.to_vec()))
        }
        _ => return Err(unsupported()),
    };
    Ok(HostTensor { dims, data })
}

fn tensor_info(name: &str, dtype: &ValueType) -> TensorInfo {
    let (dims, dim_names) = match dtype {
        ValueType::Tensor { shape, dimension_symbols, .. } => (shape.to_vec(), dimension_symbols.to_vec()),
        _ => (Vec::new(), Vec::new()),
    };
    TensorInfo { name: name.to_string(), elem_type: type_name(dtype), dims, dim_names }
}

fn type_name(dtype: &ValueType) -> String {
    let Some(t) = dtype.tensor_type() else {
        return format!("{dtype}");
    };
    match t {
        TensorElementType::Float32 => "float32",
        TensorElementType::Float64 => "float64",
        TensorElementType::Float16 => "float16",
        TensorElementType::Bfloat16 => "bfloat16",
        TensorElementType::Int64 => "int64",
        TensorElementType::Int32 => "int32",
        TensorElementType::Int16 => "int16",
        TensorElementType::Int8 => "int8",
        TensorElementType::Uint64 => "uint64",
        TensorElementType::Uint32 => "uint32",
        TensorElementType::Uint16 => "uint16",
        TensorElementType::Uint8 => "uint8",
        TensorElementType::Bool => "bool",
        TensorElementType::String => "string",
        other => return format!("{other:?}").to_lowercase(),
    }
    .to_string()
}
