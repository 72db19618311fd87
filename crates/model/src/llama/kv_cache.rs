//! Incremental decoding: `Llama::forward_cached` runs only the new positions and keeps each
//! layer's keys and values (after RoPE, before the GQA repeat) in a `KvCache`, so generating a
//! token costs one position's work instead of re-running the whole prompt. Eval kernels only.
//!
//! A child module of `llama` so it can reuse the blocks' private weights and helpers without
//! widening their visibility.
use candle_core::{DType, Device, Tensor};

use super::{
    Attention, Block, ForwardMode, Llama,
    blocks::{apply_rope, repeat_kv},
    rope_tables,
};
use crate::error::{ModelError, Result};

const MODE: ForwardMode = ForwardMode::Eval;

/// Keys and values `[1, n_kv, len, head_dim]` per layer for the positions seen so far.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// Positions already in the cache (the next token's position).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// `[s, past + s]` additive mask: new position `i` sees every cached one and new ones `<= i`.
fn offset_mask(s: usize, past: usize) -> candle_core::Result<Tensor> {
    let data: Vec<f32> = (0..s).flat_map(|i| (0..past + s).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::from_vec(data, (s, past + s), &Device::Cpu)
}

impl Attention {
    fn forward_cached(
        &self,
        x: &Tensor,
        rope: &(Tensor, Tensor),
        mask: Option<&Tensor>,
        slot: &mut Option<(Tensor, Tensor)>,
    ) -> candle_core::Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let heads = |p: &std::sync::Arc<dyn super::Projection>, n: usize| -> candle_core::Result<Tensor> {
            p.forward(x)?.reshape((b, s, n, self.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let q = apply_rope(&heads(&self.q_proj, self.n_head)?, &rope.0, &rope.1)?;
        let k = apply_rope(&heads(&self.k_proj, self.n_kv)?, &rope.0, &rope.1)?;
        let v = heads(&self.v_proj, self.n_kv)?;
        let (k, v) = match slot.take() {
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
            None => (k, v),
        };
        *slot = Some((k.clone(), v.clone()));
        let rep = self.n_head / self.n_kv;
        let (k, v) = (repeat_kv(&k, rep)?, repeat_kv(&v, rep)?);
        let mut scores = (q.matmul(&k.t()?)? * (1.0 / (self.head_dim as f64).sqrt()))?;
        if let Some(m) = mask {
            scores = scores.broadcast_add(m)?;
        }
        let y = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?.transpose(1, 2)?.reshape((b, s, self.n_head * self.head_dim))?;
        self.o_proj.forward(&y)
    }
}

impl Block {
    fn forward_cached(
        &self,
        x: &Tensor,
        rope: &(Tensor, Tensor),
        mask: Option<&Tensor>,
        slot: &mut Option<(Tensor, Tensor)>,
    ) -> candle_core::Result<Tensor> {
        let h = (x + self.self_attn.forward_cached(&self.input_layernorm.forward(x, MODE)?, rope, mask, slot)?)?;
        &h + self.mlp.forward(&self.post_attention_layernorm.forward(&h, MODE)?, MODE)?
    }
}

impl Llama {
    pub fn new_cache(&self) -> KvCache {
        KvCache { layers: vec![None; self.layers.len()], len: 0 }
    }

    /// Appends `ids` (one sequence) after the cached positions and returns the logits at the
    /// last new position. The prompt goes in once; then one token per call.
    pub fn forward_cached(&self, ids: &[u32], cache: &mut KvCache) -> Result<Vec<f32>> {
        let hidden = self.forward_cached_hidden(ids, cache)?;
        let last = hidden.narrow(1, ids.len() - 1, 1)?;
        Ok(self.lm_head(&last)?.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?)
    }

    /// Like `forward_cached`, but returns the final-norm hidden states `[1, s, hidden]` of every
    /// new position (the scorer needs each position's prediction, not only the last).
    pub fn forward_cached_hidden(&self, ids: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let (s, past) = (ids.len(), cache.len);
        if s == 0 {
            return Err(ModelError::Input("forward_cached: no token ids".into()));
        }
        if cache.layers.len() != self.layers.len() {
            return Err(ModelError::Input("forward_cached: cache made for another model".into()));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.cfg.vocab_size) {
            return Err(ModelError::Input(format!("token id {bad} >= vocab_size {}", self.cfg.vocab_size)));
        }
        let input = Tensor::new(ids, &Device::Cpu)?;
        let mut x = self.embed_tokens.index_select(&input, 0)?.reshape((1, s, self.cfg.hidden_size))?;
        let (cos, sin) = rope_tables(&self.inv_freq, past + s)?;
        let rope = (cos.narrow(0, past, s)?.contiguous()?, sin.narrow(0, past, s)?.contiguous()?);
        // One new position attends to everything cached: no mask needed.
        let mask = if s > 1 { Some(offset_mask(s, past)?) } else { None };
        for (layer, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            x = layer.forward_cached(&x, &rope, mask.as_ref(), slot)?;
        }
        cache.len += s;
        Ok(self.norm.forward(&x, MODE)?)
    }
}
