//! LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") with Hugging Face
//! PEFT's semantics: `y = x·Wᵀ + s·(dropout(x)·Aᵀ)·Bᵀ`, A `[r, in]` Kaiming-uniform (a = √5, i.e.
//! U(±1/√in)), B `[out, r]` zero, s = alpha/r (rsLoRA, Kalajdzievski 2023: alpha/√r). The frozen
//! base projection is kept as it is (a plain tensor, never a `Var`), so only A and B get
//! gradients. Dropout masks come from a generator the trainer reseeds at every micro-batch, so
//! a run (and a resumed run) draws the same masks.
use std::{
    cell::Cell,
    sync::{Arc, Mutex},
};

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use tinyforge_model::{
    Projection,
    bf16::PackedWeight,
    llama::{
        frozen_matmul::{frozen_matmul, frozen_matmul_packed},
        linear,
    },
};

use crate::{
    lanes::{current_lane, lane_seed},
    lora_op::lora_linear,
};

/// What to adapt and how (the fields of PEFT's `LoraConfig` we support).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f64,
    pub use_rslora: bool,
    /// Module names as PEFT spells them: `q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`,
    /// `up_proj`, `down_proj`.
    pub target_modules: Vec<String>,
}

pub const ALL_TARGETS: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            r: 8,
            alpha: 16.0,
            dropout: 0.05,
            use_rslora: false,
            target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"].map(String::from).to_vec(),
        }
    }
}

impl LoraConfig {
    pub fn scale(&self) -> f64 {
        if self.use_rslora { self.alpha / (self.r as f64).sqrt() } else { self.alpha / self.r as f64 }
    }

    /// True when the projection `model.layers.{i}.self_attn.q_proj` is a target.
    pub fn targets(&self, module_path: &str) -> bool {
        let leaf = module_path.rsplit('.').next().unwrap_or(module_path);
        self.target_modules.iter().any(|t| t == leaf)
    }

    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, r: String| Err((f.to_string(), r));
        if self.r == 0 {
            return bad("loraR", "must be at least 1".into());
        }
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return bad("loraAlpha", format!("must be positive, got {}", self.alpha));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("loraDropout", format!("must be in [0, 1), got {}", self.dropout));
        }
        if self.target_modules.is_empty() {
            return bad("targetModules", "names no module".into());
        }
        for t in &self.target_modules {
            if !ALL_TARGETS.contains(&t.as_str()) {
                return bad("targetModules", format!("unknown module `{t}` (known: {})", ALL_TARGETS.join(", ")));
            }
        }
        Ok(())
    }
}

/// A frozen projection that passes gradients to its input but computes none for its weight.
#[derive(Debug)]
pub struct FrozenProjection {
    w: Tensor,
    /// The base's bf16 packing, kept when the run computes in bf16 (`Llama::set_precision`).
    packed: Option<Arc<PackedWeight>>,
}

impl FrozenProjection {
    pub fn new(base: &Arc<dyn Projection>) -> Self {
        Self { w: base.base_weight().clone(), packed: base.packed_bf16().cloned() }
    }
}

impl Projection for FrozenProjection {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.packed {
            Some(p) if x.dtype() == DType::F32 => frozen_matmul_packed(x, &self.w, Some(p)),
            _ => frozen_matmul(x, &self.w),
        }
    }

    fn base_weight(&self) -> &Tensor {
        &self.w
    }

    fn packed_bf16(&self) -> Option<&Arc<PackedWeight>> {
        self.packed.as_ref()
    }

    fn is_frozen(&self) -> bool {
        true
    }
}

/// Dropout generators, one per lane of a micro-batch, created when the lane first draws, so
/// lanes running side by side draw the same masks whatever the timing; no seed means no
/// dropout (evaluation).
#[derive(Debug, Default)]
pub struct DropoutRng(Mutex<(Option<u64>, Vec<Option<StdRng>>)>);

impl DropoutRng {
    /// Generators for a new micro-batch: lane `i` draws from `lanes::lane_seed(seed, i)`.
    pub fn reseed(&self, seed: Option<u64>) {
        *self.0.lock().unwrap() = (seed, Vec::new());
    }

    /// Inverted dropout mask values (`0` or `1/(1-p)`), `n` of them, or `None` when off.
    fn mask_values(&self, n: usize, p: f64) -> Option<Vec<f32>> {
        if p <= 0.0 {
            return None;
        }
        let mut guard = self.0.lock().unwrap();
        let (seed, rngs) = &mut *guard;
        let seed = (*seed)?;
        let lane = current_lane();
        if rngs.len() <= lane {
            rngs.resize_with(lane + 1, || None);
        }
        let rng = rngs[lane].get_or_insert_with(|| StdRng::seed_from_u64(lane_seed(seed, lane)));
        let keep = (1.0 / (1.0 - p)) as f32;
        Some((0..n).map(|_| if rng.random::<f64>() < p { 0.0 } else { keep }).collect())
    }

    /// The mask of `mask_values` shaped like `x`.
    fn mask(&self, x: &Tensor, p: f64) -> candle_core::Result<Option<Tensor>> {
        self.mask_values(x.elem_count(), p).map(|m| Tensor::from_vec(m, x.shape(), x.device())).transpose()
    }
}

thread_local! {
    /// Set while this thread runs a forward pass that needs no gradients (see `without_grad`).
    static NO_GRAD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a forward pass) with every LoRA layer reading its matrices detached, so the pass
/// builds no graph. Without it an evaluation pass, A and B being `Var`s, kept every layer's
/// activations until its loss was dropped, like a training pass but through the unfused
/// evaluation ops: at the end of a SmolLM2 run (8 eval records of 256 tokens) that raised the
/// peak RSS by ~130 MB above the training steps' (1485 against 1358 MB). Restores the previous
/// state afterwards, so a thread that runs part of another lane while it waits stays right.
pub fn without_grad<R>(f: impl FnOnce() -> R) -> R {
    let previous = NO_GRAD.with(|g| g.replace(true));
    let out = f();
    NO_GRAD.with(|g| g.set(previous));
    out
}

/// A frozen projection plus a trainable low-rank update.
#[derive(Debug)]
pub struct LoraLinear {
    base: Arc<dyn Projection>,
    pub a: Var,
    pub b: Var,
    scale: f64,
    dropout: f64,
    rng: Arc<DropoutRng>,
}

impl LoraLinear {
    /// Fresh adapter: A ~ U(±1/√in) from `init`, B = 0 (so training starts at the base model).
    pub fn new(base: Arc<dyn Projection>, cfg: &LoraConfig, init: &mut StdRng, rng: Arc<DropoutRng>) -> candle_core::Result<Self> {
        let (out, inp) = base.base_weight().dims2()?;
        let bound = 1.0 / (inp as f64).sqrt();
        let a: Vec<f32> = (0..cfg.r * inp).map(|_| ((init.random::<f64>() * 2.0 - 1.0) * bound) as f32).collect();
        let a = Var::from_vec(a, (cfg.r, inp), &Device::Cpu)?;
        let b = Var::zeros((out, cfg.r), DType::F32, &Device::Cpu)?;
        let base: Arc<dyn Projection> = Arc::new(FrozenProjection::new(&base));
        Ok(Self { base, a, b, scale: cfg.scale(), dropout: cfg.dropout, rng })
    }

    /// `W + s·B·A`, the weight a merged model carries.
    pub fn merged_weight(&self) -> candle_core::Result<Tensor> {
        self.base.base_weight() + (self.b.as_tensor().matmul(self.a.as_tensor())? * self.scale)?
    }
}

impl Projection for LoraLinear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (w, a, b) = (self.base.base_weight(), self.a.as_tensor(), self.b.as_tensor());
        let detached;
        let (a, b) = if NO_GRAD.with(Cell::get) {
            detached = (a.detach(), b.detach());
            (&detached.0, &detached.1)
        } else {
            (a, b)
        };
        // The fused op (one graph node, see `lora_op`) covers f32 on the CPU; anything else
        // takes the composition below, which computes the same function.
        if x.device().is_cpu() && [x, w, a, b].iter().all(|t| t.dtype() == DType::F32) {
            let mask = self.rng.mask_values(x.elem_count(), self.dropout);
            return lora_linear(x, a, b, w, self.base.packed_bf16(), self.scale as f32, mask);
        }
        let y = self.base.forward(x)?;
        let xd = match self.rng.mask(x, self.dropout)? {
            Some(m) => (x * m)?,
            None => x.clone(),
        };
        let delta = linear(&linear(&xd, a)?, b)?;
        y + (delta * self.scale)?
    }

    fn base_weight(&self) -> &Tensor {
        self.base.base_weight()
    }
}

/// Full fine-tuning of one projection: its weight becomes a `Var`.
#[derive(Debug)]
pub struct TrainableLinear {
    pub weight: Var,
}

impl TrainableLinear {
    pub fn new(base: &Arc<dyn Projection>) -> candle_core::Result<Self> {
        Ok(Self { weight: Var::from_tensor(&base.base_weight().copy()?)? })
    }
}

impl Projection for TrainableLinear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        linear(x, self.weight.as_tensor())
    }

    fn base_weight(&self) -> &Tensor {
        self.weight.as_tensor()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::in_lane;

    /// Lanes run side by side in any order; each must still draw its own fixed mask sequence.
    #[test]
    fn lane_masks_do_not_depend_on_the_order_lanes_run_in() {
        let rng = DropoutRng::default();
        let draw = |first: usize| {
            rng.reseed(Some(7));
            let a = in_lane(first, || (rng.mask_values(64, 0.5), rng.mask_values(8, 0.5)));
            let b = in_lane(1 - first, || (rng.mask_values(64, 0.5), rng.mask_values(8, 0.5)));
            if first == 0 { (a, b) } else { (b, a) }
        };
        let (lane0, lane1) = draw(0);
        assert_eq!((lane0.clone(), lane1.clone()), draw(1));
        assert_ne!(lane0, lane1, "lanes draw from different streams");
        assert!(lane0.0.as_ref().unwrap().contains(&0.0));
        // Lanes past the first round (`lanes::LANES`) draw masks too, from their own streams.
        rng.reseed(Some(7));
        let lane3 = in_lane(3, || rng.mask_values(64, 0.5)).expect("lane 3 draws a mask");
        assert_ne!(Some(lane3), lane0.0);
        rng.reseed(None);
        assert_eq!(rng.mask_values(4, 0.5), None, "no dropout without a seed");
    }
}
