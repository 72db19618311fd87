//! An export folder as `foremforge export` writes it: `onnx/model_quantized.onnx` (int8, the
//! default), `onnx/model.onnx` (fp32) or `onnx/model_q4.onnx`, `config.json` (cache geometry,
//! context, EOS), `generation_config.json` (sampling defaults), `tokenizer.json` +
//! `tokenizer_config.json` (chat template), and `tinyforge.json` naming the model file.
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tinyforge_generate::SamplingParams;
use tinyforge_tokenizer::Tokenizer;

use crate::decoder::KvShape;
use crate::error::InferError;

/// Model files in the order they are looked for when `tinyforge.json` does not name one.
pub const MODEL_FILES: [&str; 3] = ["onnx/model_quantized.onnx", "onnx/model.onnx", "onnx/model_q4.onnx"];

#[derive(Clone, Debug)]
pub struct ExportFolder {
    pub dir: PathBuf,
    pub model_path: PathBuf,
    pub shape: KvShape,
    /// `max_position_embeddings`.
    pub max_positions: usize,
    /// `eos_token_id` of config.json and generation_config.json (number or list).
    pub eos: Vec<u32>,
    /// Sampling defaults from generation_config.json (greedy unless `do_sample`).
    pub sampling: SamplingParams,
    /// `max_new_tokens` of generation_config.json.
    pub max_new_tokens: Option<usize>,
}

fn read_json(path: &Path) -> Result<Option<Value>, InferError> {
    match std::fs::read_to_string(path) {
        Ok(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| InferError::ModelLoad { path: path.to_path_buf(), reason: format!("invalid JSON: {e}") }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(InferError::ModelLoad { path: path.to_path_buf(), reason: e.to_string() }),
    }
}

fn ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|n| n as u32).into_iter().collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).map(|n| n as u32).collect(),
        _ => Vec::new(),
    }
}

impl ExportFolder {
    pub fn open(dir: &Path) -> Result<Self, InferError> {
        if !dir.is_dir() {
            return Err(InferError::ModelNotFound { path: dir.to_path_buf() });
        }
        let config_path = dir.join("config.json");
        let config = read_json(&config_path)?.ok_or_else(|| InferError::ModelNotFound { path: config_path.clone() })?;
        let field = |name: &str| -> Result<usize, InferError> {
            config.get(name).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(|| InferError::ModelLoad {
                path: config_path.clone(),
                reason: format!("field `{name}` is missing or not a non-negative integer"),
            })
        };
        let heads = field("num_attention_heads")?;
        let hidden = field("hidden_size")?;
        if heads == 0 {
            return Err(InferError::ModelLoad { path: config_path, reason: "field `num_attention_heads` is 0".into() });
        }
        let head_dim = config.get("head_dim").and_then(Value::as_u64).map_or(hidden / heads, |n| n as usize);
        let kv_heads = config.get("num_key_value_heads").and_then(Value::as_u64).map_or(heads, |n| n as usize);
        let shape = KvShape { layers: field("num_hidden_layers")?, kv_heads, head_dim, vocab_size: field("vocab_size")? };
        let max_positions = field("max_position_embeddings")?;
        let gen_config = read_json(&dir.join("generation_config.json"))?.unwrap_or(Value::Null);
        let mut eos = ids(config.get("eos_token_id"));
        eos.extend(ids(gen_config.get("eos_token_id")));
        eos.sort_unstable();
        eos.dedup();
        let manifest = read_json(&dir.join("tinyforge.json"))?;
        let named = manifest.as_ref().and_then(|m| m.pointer("/model/file")).and_then(Value::as_str).map(|f| dir.join(f));
        let model_path = match named {
            Some(p) => p,
            None => MODEL_FILES
                .iter()
                .map(|f| dir.join(f))
                .find(|p| p.is_file())
                .ok_or_else(|| InferError::ModelNotFound { path: dir.join(MODEL_FILES[0]) })?,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            model_path,
            shape,
            max_positions,
            eos,
            sampling: sampling_defaults(&gen_config),
            max_new_tokens: gen_config.get("max_new_tokens").and_then(Value::as_u64).map(|n| n as usize),
        })
    }

    /// `tokenizer.json` with the chat template and special tokens of `tokenizer_config.json`.
    pub fn tokenizer(&self) -> Result<Tokenizer, InferError> {
        let path = self.dir.join("tokenizer.json");
        Tokenizer::from_file(&path).map_err(|e| InferError::ModelLoad { path, reason: e.to_string() })
    }
}

const CHUNK: usize = 256 << 10;

/// True when the bytes `op` (an operator type such as `GroupQueryAttention`) occur in the model
/// file. Read in 256 KiB chunks and stopped at the first hit: protobuf writes a graph's nodes
/// (field 1) before its initializers (field 5), so on our exports the op types sit in the first
/// few hundred KB and the 150 MB of weights are never read here (reading the whole file cost a
/// 150 MB copy at every load). A file laid out the other way is scanned to the end, correctly.
pub fn model_mentions(path: &Path, op: &str) -> Result<bool, InferError> {
    let needle = op.as_bytes();
    let io_err = |e: std::io::Error| InferError::ModelLoad { path: path.to_path_buf(), reason: e.to_string() };
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    // Keeps the last `needle.len() - 1` bytes of the previous chunk in front, so a match that
    // straddles two reads is still seen.
    let keep = needle.len().saturating_sub(1);
    let mut buf = vec![0_u8; keep + CHUNK];
    let mut filled = 0;
    loop {
        let n = file.read(&mut buf[filled..]).map_err(io_err)?;
        if n == 0 {
            return Ok(false);
        }
        filled += n;
        if needle.is_empty() || buf[..filled].windows(needle.len()).any(|w| w == needle) {
            return Ok(true);
        }
        let tail = filled.saturating_sub(keep);
        buf.copy_within(tail..filled, 0);
        filled -= tail;
    }
}

/// HF semantics: without `do_sample` generation is greedy whatever the temperature says.
fn sampling_defaults(g: &Value) -> SamplingParams {
    let mut s = SamplingParams::default();
    if g.get("do_sample").and_then(Value::as_bool) == Some(true) {
        s.temperature = g.get("temperature").and_then(Value::as_f64).unwrap_or(1.0);
        s.top_k = g.get("top_k").and_then(Value::as_u64).map(|n| n as usize);
        s.top_p = g.get("top_p").and_then(Value::as_f64);
        s.min_p = g.get("min_p").and_then(Value::as_f64);
    }
    if let Some(r) = g.get("repetition_penalty").and_then(Value::as_f64) {
        s.repetition_penalty = r;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_mentions_finds_an_op_anywhere_even_across_a_chunk_boundary() {
        let tmp = tinyforge_testkit::temp_dir("model-mentions");
        let op = "GroupQueryAttention";
        for at in [Some(0), Some(CHUNK - 7), Some(CHUNK), Some(3 * CHUNK + 11), None] {
            let mut bytes = vec![b'x'; 4 * CHUNK];
            if let Some(at) = at {
                bytes.splice(at..at + op.len(), op.bytes());
            }
            let file = tmp.path().join("m.onnx");
            std::fs::write(&file, &bytes).unwrap();
            assert_eq!(model_mentions(&file, op).unwrap(), at.is_some(), "op at {at:?}");
            assert!(!model_mentions(&file, "GroupQueryAttentionX").unwrap(), "a longer name must not match (op at {at:?})");
        }
        let e = model_mentions(&tmp.path().join("absent.onnx"), op).unwrap_err();
        assert_eq!(e.code(), "ONNX_MODEL_LOAD");
        assert!(e.to_string().contains("absent.onnx"), "{e}");
    }
}
