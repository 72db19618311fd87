//! LoRA adapters in Hugging Face PEFT's format, both ways: `adapter_config.json` (the
//! `LoraConfig` fields PEFT reads) + `adapter_model.safetensors` with PEFT's tensor names
//! (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` `[r, in]`,
//! `...lora_B.weight` `[out, r]`, `mlp.*` for gate/up/down). What we write loads in PEFT; what
//! PEFT writes loads here (f16/bf16 tensors are widened to f32).
use std::{collections::HashMap, path::Path};

use candle_core::{Device, Tensor, Var};
use serde_json::{Value, json};

use crate::{
    error::{Result, TrainError},
    lora::LoraConfig,
};

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// A loaded adapter: its config, the base it was trained on, and its tensors by PEFT name.
#[derive(Debug)]
pub struct PeftAdapter {
    pub config: LoraConfig,
    pub base_model_name_or_path: Option<String>,
    pub tensors: HashMap<String, Tensor>,
}

/// `adapter_config.json` as PEFT's `LoraConfig.to_dict()` writes it (the keys it requires).
pub fn config_json(cfg: &LoraConfig, base: &str) -> Value {
    json!({
        "alpha_pattern": {},
        "auto_mapping": null,
        "base_model_name_or_path": base,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "layers_pattern": null,
        "layers_to_transform": null,
        "lora_alpha": cfg.alpha,
        "lora_dropout": cfg.dropout,
        "modules_to_save": null,
        "peft_type": "LORA",
        "r": cfg.r,
        "rank_pattern": {},
        "revision": null,
        "target_modules": cfg.target_modules,
        "task_type": "CAUSAL_LM",
        "use_dora": false,
        "use_rslora": cfg.use_rslora,
    })
}

/// Writes the adapter folder (`dir` is created; files are replaced).
pub fn save_peft(dir: &Path, cfg: &LoraConfig, base: &str, params: &[(String, Var)]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::write(dir, e))?;
    let text = serde_json::to_string_pretty(&config_json(cfg, base)).expect("static JSON") + "\n";
    std::fs::write(dir.join(CONFIG_FILE), text).map_err(|e| TrainError::write(dir.join(CONFIG_FILE), e))?;
    let tensors: HashMap<String, Tensor> = params.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
    let path = dir.join(WEIGHTS_FILE);
    candle_core::safetensors::save(&tensors, &path).map_err(|e| TrainError::write(&path, e))?;
    Ok(())
}

/// Reads an adapter folder written by us or by PEFT.
pub fn load_peft(dir: &Path) -> Result<PeftAdapter> {
    let bad = |reason: String| TrainError::Adapter { path: dir.to_path_buf(), reason };
    let text = std::fs::read_to_string(dir.join(CONFIG_FILE)).map_err(|e| bad(format!("{CONFIG_FILE}: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("{CONFIG_FILE}: {e}")))?;
    let field = |k: &str| v.get(k).filter(|x| !x.is_null());
    if field("peft_type").and_then(Value::as_str) != Some("LORA") {
        return Err(bad("peft_type is not \"LORA\"".into()));
    }
    if let Some(bias) = field("bias").and_then(Value::as_str).filter(|b| *b != "none") {
        return Err(bad(format!("bias \"{bias}\" is not supported (only \"none\")")));
    }
    if field("use_dora").and_then(Value::as_bool) == Some(true) {
        return Err(bad("DoRA adapters are not supported".into()));
    }
    if field("rank_pattern").and_then(Value::as_object).is_some_and(|m| !m.is_empty())
        || field("alpha_pattern").and_then(Value::as_object).is_some_and(|m| !m.is_empty())
    {
        return Err(bad("per-module rank_pattern/alpha_pattern are not supported".into()));
    }
    let r = field("r").and_then(Value::as_u64).ok_or_else(|| bad("`r` is missing".into()))? as usize;
    let alpha = field("lora_alpha").and_then(Value::as_f64).unwrap_or(8.0);
    let target_modules = match field("target_modules") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(String::from).collect::<Vec<_>>(),
        Some(Value::String(s)) => return Err(bad(format!("regex target_modules `{s}` are not supported; list the modules"))),
        _ => return Err(bad("`target_modules` is missing".into())),
    };
    let mut target_modules = target_modules;
    target_modules.sort_by_key(|t| crate::lora::ALL_TARGETS.iter().position(|a| a == t));
    let config = LoraConfig {
        r,
        alpha,
        dropout: field("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0),
        use_rslora: field("use_rslora").and_then(Value::as_bool).unwrap_or(false),
        target_modules,
    };
    config.validate().map_err(|(f, r)| bad(format!("{f}: {r}")))?;
    let path = dir.join(WEIGHTS_FILE);
    let raw = candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| bad(format!("{WEIGHTS_FILE}: {e}")))?;
    let mut tensors = HashMap::new();
    for (name, t) in raw {
        // PEFT before 0.7 kept the adapter name in keys (`lora_A.default.weight`).
        let name = name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.");
        tensors.insert(name, t.to_dtype(candle_core::DType::F32).map_err(|e| bad(e.to_string()))?);
    }
    let base_model_name_or_path = field("base_model_name_or_path").and_then(Value::as_str).map(String::from);
    Ok(PeftAdapter { config, base_model_name_or_path, tensors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_config_and_tensors() {
        let tmp = tinyforge_testkit::temp_dir("adapter");
        // A folder `save_peft` creates itself, inside one that is removed even if the test fails.
        let dir = tmp.path().join("adapter");
        let cfg = LoraConfig { r: 2, alpha: 4.0, dropout: 0.1, use_rslora: true, target_modules: vec!["q_proj".into(), "v_proj".into()] };
        let a = Var::from_vec(vec![1f32, 2., 3., 4., 5., 6.], (2, 3), &Device::Cpu).unwrap();
        let name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".to_string();
        save_peft(&dir, &cfg, "tiny", &[(name.clone(), a)]).unwrap();
        let back = load_peft(&dir).unwrap();
        assert_eq!(back.config, cfg);
        assert_eq!(back.base_model_name_or_path.as_deref(), Some("tiny"));
        assert_eq!(back.tensors[&name].to_vec2::<f32>().unwrap(), vec![vec![1., 2., 3.], vec![4., 5., 6.]]);
        std::fs::write(dir.join(CONFIG_FILE), "{\"peft_type\":\"PREFIX_TUNING\"}").unwrap();
        assert_eq!(load_peft(&dir).unwrap_err().code(), "ADAPTER_INVALID");
    }
}
