//! The decoder's parts: RMSNorm, attention (fused op for training, candle kernels for
//! evaluation; the cached path is in `kv_cache`), the SwiGLU MLP and the pre-norm block.
use std::sync::Arc;

use candle_core::{DType, Tensor};

use super::{ForwardMode, Projection, WeightPath, attention_op, mlp_op::FrozenMlp, residual_mlp::residual_mlp, train_ops};
use crate::{config::LlamaConfig, error::Result};

#[derive(Debug)]
pub(super) struct RmsNorm {
    pub(super) weight: Tensor,
    pub(super) eps: f64,
}

impl RmsNorm {
    pub(super) fn forward(&self, x: &Tensor, mode: ForwardMode) -> candle_core::Result<Tensor> {
        match mode {
            ForwardMode::Train => train_ops::rms_norm(x, &self.weight, self.eps as f32),
            ForwardMode::Eval => candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps as f32),
        }
    }
}

/// cos/sin tables `[seq, head_dim/2]` for positions `0..seq`.
pub(super) fn rope_tables(inv_freq: &Tensor, seq: usize) -> candle_core::Result<(Tensor, Tensor)> {
    let pos = Tensor::arange(0u32, seq as u32, inv_freq.device())?.to_dtype(DType::F32)?;
    let freqs = pos.unsqueeze(1)?.broadcast_mul(&inv_freq.unsqueeze(0)?)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

/// RoPE on `[b, n, s, d]` heads with candle's fused kernel (no backward: the training path
/// applies RoPE inside `attention_op`).
pub(super) fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)
}

/// `[b, kv, s, d]` → `[b, kv*rep, s, d]`, each kv head shared by `rep` query heads (GQA).
pub(super) fn repeat_kv(x: &Tensor, rep: usize) -> candle_core::Result<Tensor> {
    if rep == 1 {
        return Ok(x.clone());
    }
    let (b, kv, s, d) = x.dims4()?;
    x.unsqueeze(2)?.broadcast_as((b, kv, rep, s, d))?.contiguous()?.reshape((b, kv * rep, s, d))
}

#[derive(Debug)]
pub(super) struct Attention {
    pub(super) q_proj: Arc<dyn Projection>,
    pub(super) k_proj: Arc<dyn Projection>,
    pub(super) v_proj: Arc<dyn Projection>,
    pub(super) o_proj: Arc<dyn Projection>,
    pub(super) n_head: usize,
    pub(super) n_kv: usize,
    pub(super) head_dim: usize,
}

impl Attention {
    pub(super) fn new(cfg: &LlamaConfig, w: &WeightPath) -> Result<Self> {
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        let (n_head, n_kv) = (cfg.num_attention_heads, cfg.num_kv_heads());
        Ok(Self {
            q_proj: w.pp("q_proj").linear(n_head * hd, h)?,
            k_proj: w.pp("k_proj").linear(n_kv * hd, h)?,
            v_proj: w.pp("v_proj").linear(n_kv * hd, h)?,
            o_proj: w.pp("o_proj").linear(h, n_head * hd)?,
            n_head,
            n_kv,
            head_dim: hd,
        })
    }

    pub(super) fn forward(&self, x: &Tensor, rope: &(Tensor, Tensor), mask: &Tensor, mode: ForwardMode) -> candle_core::Result<Tensor> {
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        if mode == ForwardMode::Train {
            // One fused differentiable op (RoPE, GQA, causal softmax) on the projections' layout.
            let (q, k, v) = (self.q_proj.forward(x)?, self.k_proj.forward(x)?, self.v_proj.forward(x)?);
            let (n, hd) = (self.n_head, self.head_dim);
            let y = attention_op::causal_attention(&q, &k, &v, &rope.0, &rope.1, n, self.n_kv, hd, scale as f32)?;
            return self.o_proj.forward(&y);
        }
        let (b, s, _) = x.dims3()?;
        let heads = |p: &Arc<dyn Projection>, n: usize| -> candle_core::Result<Tensor> {
            p.forward(x)?.reshape((b, s, n, self.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let q = apply_rope(&heads(&self.q_proj, self.n_head)?, &rope.0, &rope.1)?;
        let k = apply_rope(&heads(&self.k_proj, self.n_kv)?, &rope.0, &rope.1)?;
        let v = heads(&self.v_proj, self.n_kv)?;
        let rep = self.n_head / self.n_kv;
        let (k, v) = (repeat_kv(&k, rep)?, repeat_kv(&v, rep)?);
        let probs = candle_nn::ops::softmax_last_dim(&(q.matmul(&k.t()?)? * scale)?.broadcast_add(mask)?)?;
        let y = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, self.n_head * self.head_dim))?;
        self.o_proj.forward(&y)
    }
}

#[derive(Debug)]
pub(super) struct Mlp {
    pub(super) gate_proj: Arc<dyn Projection>,
    pub(super) up_proj: Arc<dyn Projection>,
    pub(super) down_proj: Arc<dyn Projection>,
    /// Training runs a frozen MLP as one fused op (`mlp_op`); off only for A/B probes.
    pub(super) fused: bool,
}

impl Mlp {
    pub(super) fn new(cfg: &LlamaConfig, w: &WeightPath) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            gate_proj: w.pp("gate_proj").linear(i, h)?,
            up_proj: w.pp("up_proj").linear(i, h)?,
            down_proj: w.pp("down_proj").linear(h, i)?,
            fused: true,
        })
    }

    /// The three weights for the fused op, when all three are frozen f32 weights (LoRA or full
    /// fine-tuning on the MLP takes the unfused path) with bf16 packings for all or none.
    pub(super) fn frozen(&self) -> Option<FrozenMlp> {
        let ps = [&self.gate_proj, &self.up_proj, &self.down_proj];
        if !ps.iter().all(|p| p.is_frozen() && p.base_weight().dtype() == DType::F32) {
            return None;
        }
        let packed = match ps.map(|p| p.packed_bf16().cloned()) {
            [Some(g), Some(u), Some(d)] => Some([g, u, d]),
            [None, None, None] => None,
            _ => return None,
        };
        let [gate, up, down] = ps.map(|p| p.base_weight().clone());
        Some(FrozenMlp { gate, up, down, packed })
    }

    pub(super) fn forward(&self, x: &Tensor, mode: ForwardMode) -> candle_core::Result<Tensor> {
        if mode == ForwardMode::Train
            && self.fused
            && x.dtype() == DType::F32
            && x.device().is_cpu()
            && let Some(mlp) = self.frozen()
        {
            return mlp.forward(x);
        }
        let gated = train_ops::swiglu(&self.gate_proj.forward(x)?, &self.up_proj.forward(x)?)?;
        self.down_proj.forward(&gated)
    }
}

#[derive(Debug)]
pub(super) struct Block {
    pub(super) input_layernorm: RmsNorm,
    pub(super) self_attn: Attention,
    pub(super) post_attention_layernorm: RmsNorm,
    pub(super) mlp: Mlp,
    /// Training runs the residual adds, the second RMSNorm and a frozen MLP as one op
    /// (`residual_mlp`, less memory kept for backward); off only for A/B probes.
    pub(super) fused_residual: bool,
}

impl Block {
    pub(super) fn forward(&self, x: &Tensor, rope: &(Tensor, Tensor), mask: &Tensor, mode: ForwardMode) -> candle_core::Result<Tensor> {
        let o = self.self_attn.forward(&self.input_layernorm.forward(x, mode)?, rope, mask, mode)?;
        let norm = &self.post_attention_layernorm;
        if mode == ForwardMode::Train
            && self.fused_residual
            && self.mlp.fused
            && !norm.weight.track_op()
            && x.dtype() == DType::F32
            && x.device().is_cpu()
            && let Some(mlp) = self.mlp.frozen()
        {
            return residual_mlp(x, &o, &norm.weight, norm.eps as f32, &mlp);
        }
        let h = (x + o)?;
        &h + self.mlp.forward(&norm.forward(&h, mode)?, mode)?
    }
}
