//! Binding of adapter merging (`tinyforge_train::merge`): `mergeAdapter(base, adapter, out)`
//! writes a merged HF folder, on a libuv thread.
use std::path::PathBuf;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;
use tinyforge_train as tr;

use crate::error::{core_error, guard};

#[napi(object, object_from_js = false, js_name = "MergedModel")]
pub struct JsMergedModel {
    /// The merged HF model folder.
    pub path: String,
}

pub struct MergeTask {
    base: PathBuf,
    adapter: PathBuf,
    out: PathBuf,
}

impl Task for MergeTask {
    type Output = PathBuf;
    type JsValue = JsMergedModel;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("merging an adapter", || tr::merge::merge_adapter(&self.base, &self.adapter, &self.out).map_err(core_error))
    }

    fn resolve(&mut self, _env: Env, path: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(JsMergedModel { path: path.display().to_string() })
    }
}

/// Merges the PEFT adapter in `adapter` into `base` (HF folder or GGUF) and writes an HF folder
/// (f32 model.safetensors, config.json, tokenizer files) at `out`. Rejects with MODEL_NOT_FOUND,
/// ADAPTER_INVALID or WRITE_FAILED.
#[napi(catch_unwind, ts_return_type = "Promise<MergedModel>")]
pub fn merge_adapter(base: String, adapter: String, out: String) -> AsyncTask<MergeTask> {
    AsyncTask::new(MergeTask { base: base.into(), adapter: adapter.into(), out: out.into() })
}
