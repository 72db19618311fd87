//! HF checkpoints come as one `model.safetensors` or as shards listed in
//! `model.safetensors.index.json`, in f32, bf16 or f16; all load as the same f32 weights.
use std::{collections::HashMap, path::PathBuf};

use candle_core::{DType, Tensor};
use tinyforge_model::{Llama, ModelError, load_checkpoint};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny")
}

/// Copies the fixture's json files and writes its weights in `dtype`, split in two shards.
fn sharded_copy(name: &str, dtype: DType) -> tinyforge_testkit::TempDir {
    let tmp = tinyforge_testkit::temp_dir(&format!("shards-{name}"));
    let dir = tmp.path();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
    let weights = load_checkpoint(&fixture()).unwrap().weights;
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    let mut map = serde_json::Map::new();
    for (i, part) in names.chunks(names.len().div_ceil(2)).enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", i + 1);
        let shard: HashMap<String, Tensor> = part.iter().map(|n| ((*n).clone(), weights[*n].to_dtype(dtype).unwrap())).collect();
        candle_core::safetensors::save(&shard, dir.join(&file)).unwrap();
        for n in part {
            map.insert((*n).clone(), file.clone().into());
        }
    }
    let index = serde_json::json!({ "metadata": { "total_size": 0 }, "weight_map": map });
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    tmp
}

fn logits(model: &Llama) -> Vec<f32> {
    model.last_logits(&[5, 300, 17, 42]).unwrap()
}

#[test]
fn sharded_f32_bf16_f16_load_as_f32() {
    let reference = Llama::load(&fixture()).unwrap();
    let want = logits(&reference);
    // f32 shards: bit-identical. Half precision: weights are rounded to 8 (bf16) / 11 (f16)
    // mantissa bits, so logits of size ~0.3 move by at most a few 1e-3.
    for (dtype, tol) in [(DType::F32, 0.0f32), (DType::BF16, 2e-2), (DType::F16, 2e-3)] {
        let tmp = sharded_copy(&format!("{dtype:?}"), dtype);
        let ckpt = load_checkpoint(tmp.path()).unwrap();
        assert!(ckpt.weights.values().all(|t| t.dtype() == DType::F32));
        let got = logits(&Llama::new(ckpt.config, &ckpt.weights).unwrap());
        let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff <= tol, "{dtype:?}: max diff {diff}");
    }
}

#[test]
fn missing_shard_and_missing_tensor_are_named() {
    let tmp = sharded_copy("missing", DType::F32);
    let dir = tmp.path();
    std::fs::remove_file(dir.join("model-00002-of-00002.safetensors")).unwrap();
    let err = load_checkpoint(dir).err().unwrap();
    assert_eq!(err.code(), "WEIGHTS_INVALID", "{err}");
    assert!(err.to_string().contains("model-00002-of-00002.safetensors"), "{err}");

    let mut ckpt = load_checkpoint(&fixture()).unwrap();
    ckpt.weights.remove("model.layers.1.mlp.up_proj.weight");
    let err = Llama::new(ckpt.config, &ckpt.weights).unwrap_err();
    assert!(matches!(&err, ModelError::WeightsMissing { name, .. } if name == "model.layers.1.mlp.up_proj.weight"), "{err}");
}
