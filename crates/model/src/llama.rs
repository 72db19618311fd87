//! Llama-family decoder (Llama 2/3, SmolLM, Mistral without sliding window) in candle.
//!
//! Touvron et al., "LLaMA" (2023): pre-norm decoder blocks with RMSNorm (Zhang & Sennrich 2019),
//! rotary position embeddings in Hugging Face's rotate-half layout (Su et al. 2021; theta and
//! linear/llama3 scaling from `config.json`), grouped-query attention (Ainslie et al. 2023) with a
//! causal mask, a SwiGLU MLP (Shazeer 2020), and tied or untied input/output embeddings.
//!
//! Two forward paths share every weight:
//! * `ForwardMode::Train` uses only ops that have a backward pass (RMSNorm and SwiGLU are fused
//!   ops with hand-written backward passes in `train_ops`, the whole attention with RoPE, GQA and
//!   the causal softmax is one in `attention_op`), because candle's
//!   fast kernels (`ops::rms_norm`, `RmsNorm::forward`,
//!   `rotary_emb::rope`, `softmax_last_dim`, quantized matmul) are applied with `*_no_bwd` and
//!   silently cut the graph: LoRA weights upstream would just get no gradient.
//! * `ForwardMode::Eval` uses the fused kernels. A test checks both agree.
//!
//! Every linear layer is an `Arc<dyn Projection>` so LoRA (or anything else) can wrap the q/k/v/o
//! and gate/up/down projections by name with `Llama::map_projections`. Base weights are plain
//! `Tensor`s, never `Var`s, so they stay frozen.
//!
//! Right padding needs no attention mask: with a causal mask, pad tokens placed after the real
//! tokens never influence them.
use std::{fmt::Debug, path::Path, sync::Arc};

use candle_core::{DType, Device, Tensor};

use crate::{
    bf16::{PackedWeight, Precision},
    config::LlamaConfig,
    error::{ModelError, Result},
    weights::{Weights, load_checkpoint},
};
use blocks::{Attention, Block, Mlp, RmsNorm, rope_tables};

pub mod attention_op;
mod blocks;
pub mod frozen_matmul;
pub mod kv_cache;
pub mod mlp_op;
pub mod residual_mlp;
#[cfg(test)]
mod test_support;
pub mod train_ops;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMode {
    /// Differentiable ops only (training).
    Train,
    /// candle's fused kernels (evaluation); no gradients.
    Eval,
}

/// A linear map `y = x·Wᵀ` over the last dimension. The hook for LoRA.
pub trait Projection: Debug + Send + Sync {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor>;
    /// The frozen base weight `[out, in]` (for merging and export).
    fn base_weight(&self) -> &Tensor;
    /// The base weight packed for the bf16 kernel, when the run computes in bf16.
    fn packed_bf16(&self) -> Option<&Arc<PackedWeight>> {
        None
    }
    /// True when `forward` is exactly `x·base_weight()ᵀ` (in bf16 given `packed_bf16`) with no
    /// trainable part: the training path may then fuse it with its neighbours (`mlp_op`).
    fn is_frozen(&self) -> bool {
        false
    }
}

/// A plain frozen linear layer without bias (Llama has none).
#[derive(Debug, Clone)]
pub struct FrozenLinear {
    weight: Tensor,
    packed: Option<Arc<PackedWeight>>,
}

impl FrozenLinear {
    pub fn new(weight: Tensor) -> Self {
        Self { weight, packed: None }
    }

    /// The same layer computing in bf16 (`bf16`): the weight is packed here, once.
    pub fn bf16(weight: Tensor) -> candle_core::Result<Self> {
        let packed = Arc::new(PackedWeight::from_tensor(&weight)?);
        Ok(Self { weight, packed: Some(packed) })
    }
}

/// `x [.., in] · wᵀ` with the leading dims flattened, so one GEMM runs and backward stays simple.
pub fn linear(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let dims = x.dims();
    let inp = dims[dims.len() - 1];
    let rows = x.elem_count() / inp;
    let y = x.reshape((rows, inp))?.matmul(&w.t()?)?;
    let mut out = dims.to_vec();
    *out.last_mut().unwrap() = w.dim(0)?;
    y.reshape(out)
}

/// `x · wᵀ` for a weight that needs no gradient (see `frozen_matmul`: about a third
/// of all backward work is saved). When `w` itself is tracked (full fine-tuning) it is the plain
/// differentiable matmul.
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    if w.track_op() || x.dtype() != DType::F32 || w.dtype() != DType::F32 {
        return linear(x, w);
    }
    frozen_matmul::frozen_matmul(x, w)
}

impl Projection for FrozenLinear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.packed {
            Some(p) if x.dtype() == DType::F32 => frozen_matmul::frozen_matmul_packed(x, &self.weight, Some(p)),
            _ => frozen_linear(x, &self.weight),
        }
    }
    fn base_weight(&self) -> &Tensor {
        &self.weight
    }
    fn packed_bf16(&self) -> Option<&Arc<PackedWeight>> {
        self.packed.as_ref()
    }
    fn is_frozen(&self) -> bool {
        !self.weight.track_op()
    }
}

/// Looks up HF-named tensors under a prefix, mirroring `VarBuilder::pp` but with coded errors.
struct WeightPath<'a> {
    weights: &'a Weights,
    prefix: String,
}

impl WeightPath<'_> {
    fn pp(&self, part: impl std::fmt::Display) -> Self {
        let prefix = if self.prefix.is_empty() { part.to_string() } else { format!("{}.{part}", self.prefix) };
        Self { weights: self.weights, prefix }
    }

    fn get(&self, shape: &[usize], name: &str) -> Result<Tensor> {
        let full = format!("{}.{name}", self.prefix);
        let t = self
            .weights
            .get(&full)
            .ok_or_else(|| ModelError::WeightsMissing { name: full.clone(), reason: "not in the checkpoint".into() })?;
        if t.dims() != shape {
            return Err(ModelError::WeightsMissing { name: full, reason: format!("shape {:?}, config implies {shape:?}", t.dims()) });
        }
        Ok(t.to_dtype(DType::F32)?)
    }

    fn linear(&self, out: usize, inp: usize) -> Result<Arc<dyn Projection>> {
        Ok(Arc::new(FrozenLinear::new(self.get(&[out, inp], "weight")?)))
    }
}

/// RoPE inverse frequencies with HF's scaling rules (`linear`, `llama3`).
pub fn rope_inv_freq(cfg: &LlamaConfig) -> Vec<f32> {
    let d = cfg.head_dim();
    let base: Vec<f64> = (0..d / 2).map(|i| 1.0 / cfg.rope_theta.powf((2 * i) as f64 / d as f64)).collect();
    let Some(s) = &cfg.rope_scaling else { return base.iter().map(|&f| f as f32).collect() };
    let scaled: Vec<f64> = match s.rope_type.as_str() {
        "linear" => base.iter().map(|f| f / s.factor).collect(),
        "llama3" => {
            let (lo, hi) = (s.low_freq_factor.unwrap_or(1.0), s.high_freq_factor.unwrap_or(4.0));
            let old = s.original_max_position_embeddings.unwrap_or(8192) as f64;
            let (lo_wavelen, hi_wavelen) = (old / lo, old / hi);
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < hi_wavelen {
                        f
                    } else if wavelen > lo_wavelen {
                        f / s.factor
                    } else {
                        let smooth = (old / wavelen - lo) / (hi - lo);
                        (1.0 - smooth) * f / s.factor + smooth * f
                    }
                })
                .collect()
        }
        _ => base, // `validate` rejected everything else; "default" means none.
    };
    scaled.iter().map(|&f| f as f32).collect()
}

#[derive(Debug)]
pub struct Llama {
    cfg: LlamaConfig,
    embed_tokens: Tensor,
    layers: Vec<Block>,
    norm: RmsNorm,
    /// `[vocab, hidden]`; the embedding matrix itself when tied.
    lm_head: Tensor,
    inv_freq: Tensor,
}

impl Llama {
    /// Builds the model from HF-named f32 weights (see `weights.rs`).
    pub fn new(cfg: LlamaConfig, weights: &Weights) -> Result<Self> {
        cfg.validate().map_err(|reason| ModelError::Config { path: "config".into(), reason })?;
        let root = WeightPath { weights, prefix: String::new() };
        let m = root.pp("model");
        let (h, v) = (cfg.hidden_size, cfg.vocab_size);
        let norm = |w: &WeightPath| -> Result<RmsNorm> { Ok(RmsNorm { weight: w.get(&[h], "weight")?, eps: cfg.rms_norm_eps }) };
        let embed_tokens = m.pp("embed_tokens").get(&[v, h], "weight")?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = m.pp("layers").pp(i);
            layers.push(Block {
                input_layernorm: norm(&l.pp("input_layernorm"))?,
                self_attn: Attention::new(&cfg, &l.pp("self_attn"))?,
                post_attention_layernorm: norm(&l.pp("post_attention_layernorm"))?,
                mlp: Mlp::new(&cfg, &l.pp("mlp"))?,
                fused_residual: true,
            });
        }
        // Tied: HF ignores a stored lm_head.weight and re-ties it to the embeddings; so do we.
        let lm_head = if cfg.tie_word_embeddings { embed_tokens.clone() } else { root.pp("lm_head").get(&[v, h], "weight")? };
        let inv_freq = Tensor::new(rope_inv_freq(&cfg), &Device::Cpu)?;
        Ok(Self { norm: norm(&m.pp("norm"))?, cfg, embed_tokens, layers, lm_head, inv_freq })
    }

    /// Loads an HF folder or a GGUF file.
    pub fn load(path: &Path) -> Result<Self> {
        let ckpt = load_checkpoint(path)?;
        Self::new(ckpt.config, &ckpt.weights)
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// Final-norm hidden states `[b, s, hidden]` for `input_ids [b, s]` (u32).
    pub fn forward_hidden(&self, input_ids: &Tensor, mode: ForwardMode) -> Result<Tensor> {
        let (b, s) = input_ids.dims2()?;
        if s == 0 {
            return Err(ModelError::Input("input_ids has no positions".into()));
        }
        let max_id = input_ids.max_all()?.to_dtype(DType::U32)?.to_scalar::<u32>()?;
        if max_id as usize >= self.cfg.vocab_size {
            return Err(ModelError::Input(format!("token id {max_id} >= vocab_size {}", self.cfg.vocab_size)));
        }
        let mut x = self.embed_tokens.index_select(&input_ids.flatten_all()?, 0)?.reshape((b, s, self.cfg.hidden_size))?;
        let rope = rope_tables(&self.inv_freq, s)?;
        let mask = causal_mask(s, x.device())?;
        for layer in &self.layers {
            x = layer.forward(&x, &rope, &mask, mode)?;
        }
        Ok(self.norm.forward(&x, mode)?)
    }

    /// Logits `[.., vocab]` for hidden states `[.., hidden]` (e.g. only the labelled positions).
    pub fn lm_head(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(frozen_linear(hidden, &self.lm_head)?)
    }

    /// The output head's weight `[vocab, hidden]` (the embedding matrix when tied).
    pub fn lm_head_weight(&self) -> &Tensor {
        &self.lm_head
    }

    /// Logits `[b, s, vocab]` for `input_ids [b, s]`.
    pub fn forward(&self, input_ids: &Tensor, mode: ForwardMode) -> Result<Tensor> {
        self.lm_head(&self.forward_hidden(input_ids, mode)?)
    }

    /// Eval-mode logits at the last position of one sequence.
    pub fn last_logits(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let input = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
        let hidden = self.forward_hidden(&input, ForwardMode::Eval)?;
        let last = hidden.narrow(1, ids.len() - 1, 1)?;
        Ok(self.lm_head(&last)?.flatten_all()?.to_vec1()?)
    }

    /// Makes the q/k/v/o/gate/up/down projections compute in `precision` (resolved for this
    /// CPU, `Auto` included): bf16 packs each weight once. Call before wrapping them (LoRA), which
    /// keeps the packing (`Projection::packed_bf16`). The output head stays f32.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        if precision.resolve() != Precision::Bf16 {
            return Ok(());
        }
        self.map_projections(|_, p| Ok(Arc::new(FrozenLinear::bf16(p.base_weight().clone())?) as Arc<dyn Projection>))
    }

    /// Whether training runs each frozen MLP as one fused op (the default; `false` runs the
    /// three projections and SwiGLU as separate ops, for A/B speed probes).
    pub fn set_fused_mlp(&mut self, on: bool) {
        for l in &mut self.layers {
            l.mlp.fused = on;
        }
    }

    /// Whether training runs each block's residual adds, second RMSNorm and frozen MLP as one op
    /// (the default: `residual_mlp` keeps three fewer activations per layer for backward;
    /// `false` runs them as separate ops, for A/B probes). Same values either way.
    pub fn set_fused_residual(&mut self, on: bool) {
        for l in &mut self.layers {
            l.fused_residual = on;
        }
    }

    /// Replaces projections by name (`model.layers.{i}.self_attn.q_proj`, `...mlp.down_proj`):
    /// `f` gets the current projection and returns the one to use (unchanged, or wrapped).
    pub fn map_projections<F>(&mut self, mut f: F) -> Result<()>
    where
        F: FnMut(&str, Arc<dyn Projection>) -> Result<Arc<dyn Projection>>,
    {
        for (i, l) in self.layers.iter_mut().enumerate() {
            let a = &mut l.self_attn;
            let m = &mut l.mlp;
            let slots: [(&str, &mut Arc<dyn Projection>); 7] = [
                ("self_attn.q_proj", &mut a.q_proj),
                ("self_attn.k_proj", &mut a.k_proj),
                ("self_attn.v_proj", &mut a.v_proj),
                ("self_attn.o_proj", &mut a.o_proj),
                ("mlp.gate_proj", &mut m.gate_proj),
                ("mlp.up_proj", &mut m.up_proj),
                ("mlp.down_proj", &mut m.down_proj),
            ];
            for (name, slot) in slots {
                *slot = f(&format!("model.layers.{i}.{name}"), slot.clone())?;
            }
        }
        Ok(())
    }
}

/// The weights outside the projections, for full fine-tuning.
impl Llama {
    /// Replaces the token embeddings, every RMSNorm weight and (untied) the output head by HF
    /// name (`model.embed_tokens.weight`, `model.layers.{i}.input_layernorm.weight`,
    /// `model.layers.{i}.post_attention_layernorm.weight`, `model.norm.weight`, `lm_head.weight`):
    /// `f` gets the current tensor and returns the one to use, of the same shape. A tied head is
    /// not visited: it becomes the new embedding tensor itself, so one `Var` serves both the
    /// lookup and the head and receives both gradients, as in HF.
    pub fn map_dense_weights<F>(&mut self, mut f: F) -> Result<()>
    where
        F: FnMut(&str, &Tensor) -> Result<Tensor>,
    {
        let mut swap = |name: String, slot: &mut Tensor| -> Result<()> {
            let new = f(&name, slot)?;
            if new.dims() != slot.dims() {
                return Err(ModelError::Input(format!("{name}: replacement has shape {:?}, expected {:?}", new.dims(), slot.dims())));
            }
            *slot = new;
            Ok(())
        };
        swap("model.embed_tokens.weight".into(), &mut self.embed_tokens)?;
        for (i, l) in self.layers.iter_mut().enumerate() {
            swap(format!("model.layers.{i}.input_layernorm.weight"), &mut l.input_layernorm.weight)?;
            swap(format!("model.layers.{i}.post_attention_layernorm.weight"), &mut l.post_attention_layernorm.weight)?;
        }
        swap("model.norm.weight".into(), &mut self.norm.weight)?;
        if self.cfg.tie_word_embeddings {
            self.lm_head = self.embed_tokens.clone();
        } else {
            swap("lm_head.weight".into(), &mut self.lm_head)?;
        }
        Ok(())
    }
}

/// `[s, s]` additive mask: 0 on and below the diagonal, -inf above.
fn causal_mask(s: usize, device: &Device) -> candle_core::Result<Tensor> {
    let data: Vec<f32> = (0..s).flat_map(|i| (0..s).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::from_vec(data, (s, s), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn frozen_linear_matches_linear_values_and_input_gradient() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (2, 3, 5), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (4, 5), &dev).unwrap();
        let loss = |y: Tensor| y.sqr().unwrap().sum_all().unwrap();
        let (a, b) = (frozen_linear(x.as_tensor(), &w).unwrap(), linear(x.as_tensor(), &w).unwrap());
        assert_eq!(a.dims(), &[2, 3, 4]);
        let d = (&a - &b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-6, "{d}");
        let ga = loss(a).backward().unwrap().remove(x.as_tensor()).unwrap();
        let gb = loss(b).backward().unwrap().remove(x.as_tensor()).unwrap();
        let d = (ga - gb).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-5, "{d}");
    }

    #[test]
    fn frozen_linear_keeps_weight_gradients_when_the_weight_is_a_var() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (3, 5), &dev).unwrap();
        let w = Var::randn(0f32, 1.0, (4, 5), &dev).unwrap();
        let grads = frozen_linear(x.as_tensor(), w.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(w.as_tensor()).is_some() && grads.get(x.as_tensor()).is_some());
    }
}
