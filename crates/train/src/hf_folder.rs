//! The one Hugging Face model-folder writer, for merged adapters (`merge::merge_adapter`) and
//! full fine-tunes (`run::write_full_model`): f32 `model.safetensors` (a tied head is left out;
//! HF re-ties on load), `config.json`, and the tokenizer files transformers and
//! `Tokenizer::from_file` read back. Each file is written to a temporary name and renamed, so a
//! crash never leaves half a file under the real name.
use std::path::{Path, PathBuf};

use tinyforge_model::{LlamaConfig, ModelFormat, Weights};
use tinyforge_tokenizer::Tokenizer;

use crate::error::{Result, TrainError};

/// Files copied byte for byte from an HF base.
const COPIED: [&str; 6] =
    ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "chat_template.jinja"];

/// Writes `dir` from `weights` (every tensor f32, HF names) and `config`. The tokenizer comes
/// from `base`: an HF folder's files are copied; a GGUF's tokenizer (`tokenizer`, or rebuilt
/// from the file) is saved as `tokenizer.json` + `tokenizer_config.json` with its special
/// tokens and chat template. An HF base's `config.json` is copied byte for byte (the parsed
/// config drops keys other tools read, e.g. `hidden_act`, `use_cache`); a GGUF has none, so
/// `config` is written, with `torch_dtype` float32.
pub fn write_hf_folder(
    dir: &Path,
    base: &Path,
    format: ModelFormat,
    config: &LlamaConfig,
    mut weights: Weights,
    tokenizer: Option<&Tokenizer>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::write(dir, e))?;
    if config.tie_word_embeddings {
        weights.remove("lm_head.weight");
    }
    let tensors = dir.join("model.safetensors");
    atomic(&tensors, |tmp| candle_core::safetensors::save(&weights, tmp).map_err(|e| TrainError::write(&tensors, e)))?;
    if format == ModelFormat::Gguf {
        let mut c = config.clone();
        c.torch_dtype = Some("float32".into());
        write_text(&dir.join("config.json"), &(serde_json::to_string_pretty(&c).expect("config serializes") + "\n"))?;
    }
    match format {
        ModelFormat::HfFolder => {
            for name in COPIED.iter().filter(|n| base.join(n).is_file()) {
                let to = dir.join(name);
                atomic(&to, |tmp| std::fs::copy(base.join(name), tmp).map(drop).map_err(|e| TrainError::write(&to, e)))?;
            }
        }
        ModelFormat::Gguf => match tokenizer {
            Some(t) => t.save_pretrained(dir)?,
            None => Tokenizer::from_gguf(base)?.save_pretrained(dir)?,
        },
    }
    Ok(())
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    atomic(path, |tmp| std::fs::write(tmp, text).map_err(|e| TrainError::write(path, e)))
}

/// Runs `write` on a temporary sibling of `path`, then renames it into place.
fn atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    let tmp: PathBuf = path.with_file_name(name);
    let written = write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| TrainError::write(path, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyforge_model::{TinyOptions, create_tiny_model, load_checkpoint};

    #[test]
    fn hf_base_folder_is_copied_and_rewrites_leave_no_temporaries() {
        let root = tinyforge_testkit::temp_dir("hf-folder");
        let base = root.path().join("base");
        create_tiny_model(&base, &TinyOptions { seed: 1, ..Default::default() }).unwrap();
        let ckpt = load_checkpoint(&base).unwrap();
        assert!(ckpt.config.tie_word_embeddings, "the default tiny model is tied");
        let mut weights = ckpt.weights.clone();
        weights.insert("lm_head.weight".into(), weights["model.embed_tokens.weight"].clone());
        let out = root.path().join("out");
        for _ in 0..2 {
            // Twice: writing over an existing folder replaces each file.
            write_hf_folder(&out, &base, ModelFormat::HfFolder, &ckpt.config, weights.clone(), None).unwrap();
        }
        for f in ["config.json", "tokenizer.json"] {
            assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(base.join(f)).unwrap(), "{f}");
        }
        let names: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
        let back = load_checkpoint(&out).unwrap();
        assert!(!back.weights.contains_key("lm_head.weight"), "a tied head is not written");
        assert_eq!(back.weights.len(), ckpt.weights.len() - usize::from(ckpt.weights.contains_key("lm_head.weight")));
    }
}
