//! Binding of the ONNX export (`tinyforge_onnx::export_llama`): `exportOnnx(model, out,
//! { quantize, adapter })` loads the base with its adapter merged (`tinyforge_train::merge::
//! load_with_adapter`) and writes the decoder, on a libuv thread.
use std::path::{Path, PathBuf};

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;
use tinyforge_onnx as ox;
use tinyforge_train as tr;

use crate::error::{core_error, guard, js_error};

#[napi(object, object_to_js = false, js_name = "ExportOnnxOptions")]
pub struct JsExportOptions {
    /// "none" (f32) | "int8" (SmoothQuant: per-token int8 activations x per-channel int8
    /// weights, calibrated on the shipped data/general-replay.txt with the model's tokenizer) |
    /// "int4" (4-bit blocks, 8-bit head) | "int8-blocks" (8-bit MatMulNBits blocks, the previous
    /// int8) | "int8-dynamic" (the first INT8 scheme, for comparison). @default "none"
    pub quantize: Option<String>,
    /// PEFT LoRA adapter folder merged into the weights before export.
    pub adapter: Option<String>,
}

#[napi(object, js_name = "OnnxExport")]
pub struct JsOnnxExport {
    pub path: String,
    pub bytes: f64,
    pub layers: u32,
    /// "none" | "int8" | "int4" | "int8-dynamic"
    pub quantization: String,
    /// `tinyforge_onnx::QuantReport` as JSON: per tensor group the format, bytes, relative
    /// weight RMSE and why (for `tinyforge.json`).
    pub quant_report: String,
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
                Some(name) => Some(ox::Quantization::parse(name).ok_or_else(|| {
                    js_error(
                        "INVALID_ARGUMENT",
                        format!("quantize: expected \"none\", \"int8\", \"int4\", \"int8-blocks\" or \"int8-dynamic\", got {name:?}"),
                    )
                })?),
            };
            let adapter = opts.and_then(|o| o.adapter.as_deref()).map(Path::new);
            let ckpt = tr::merge::load_with_adapter(&self.model, adapter).map_err(core_error)?;
            let calibration = match quantize.map(|q| q.scheme().smooth_alpha) {
                Some(Some(_)) => Some(calibration_text(&self.model)?),
                _ => None,
            };
            ox::export_llama(&ckpt.config, &ckpt.weights, &self.out, &ox::ExportOptions { quantize, calibration }).map_err(core_error)
        })
    }

    fn resolve(&mut self, _env: Env, r: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(JsOnnxExport {
            path: r.path.display().to_string(),
            bytes: r.bytes as f64,
            layers: r.layers as u32,
            quantization: r.quantization.map_or("none", ox::Quantization::name).into(),
            quant_report: serde_json::to_string(&r.quant).unwrap_or_default(),
        })
    }
}

/// The shipped calibration text in the tokens of the model at `model` (HF folder or GGUF).
fn calibration_text(model: &Path) -> napi::Result<ox::CalibrationText> {
    let format = tinyforge_model::weights::detect_format(model).map_err(core_error)?;
    let tok = tr::run::load_tokenizer(model, format).map_err(core_error)?;
    let ids = tok.encode(ox::CALIBRATION_TEXT, false).map_err(core_error)?;
    Ok(ox::CalibrationText { name: ox::CALIBRATION_TEXT_NAME.into(), ids })
}

/// Exports the Llama model at `modelPath` (HF folder or GGUF; `options.adapter` merged first) to
/// `outPath` as a decoder with KV cache (Optimum I/O names), f32 or INT8. Rejects with
/// MODEL_NOT_FOUND, ADAPTER_INVALID, INVALID_ARGUMENT, WRITE_FAILED, ...
#[napi(catch_unwind, ts_return_type = "Promise<OnnxExport>")]
pub fn export_onnx(model_path: String, out_path: String, options: Option<JsExportOptions>) -> AsyncTask<ExportTask> {
    AsyncTask::new(ExportTask { model: model_path.into(), out: out_path.into(), options })
}
