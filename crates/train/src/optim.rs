//! AdamW (Loshchilov & Hutter 2019) with its moments in the open, so checkpoints can save and
//! restore them bit for bit (candle_nn::AdamW keeps them private). Same update as PyTorch's and
//! candle's AdamW: decoupled weight decay `θ ← θ(1 − lr·wd)`, bias-corrected moments. Plus
//! gradient accumulation and global-norm clipping (`torch.nn.utils.clip_grad_norm_`).
use candle_core::{DType, Tensor, Var, backprop::GradStore};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

#[derive(Debug)]
pub struct AdamW {
    vars: Vec<Var>,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
    /// Updates applied so far (the `t` of the bias correction).
    pub t: usize,
    params: AdamWParams,
    /// Per variable: apply weight decay (false for normalization weights, see `decays`).
    decay: Vec<bool>,
}

/// Whether a parameter named `name` (HF naming) gets weight decay. Like HF's Trainer, which
/// exempts normalization weights (LayerNorm/RMSNorm, scale-like) and biases: decaying an RMSNorm
/// gain pulls it toward 0, i.e. toward switching the layer off, not toward a simpler model.
#[allow(clippy::case_sensitive_file_extension_comparisons)] // parameter names, not file names
pub fn decays(name: &str) -> bool {
    !(name.ends_with("norm.weight") || name.ends_with(".bias"))
}

impl AdamW {
    pub fn new(vars: Vec<Var>, params: AdamWParams) -> candle_core::Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        let m = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        let v = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        let decay = vec![true; vars.len()];
        Ok(Self { vars, m, v, t: 0, params, decay })
    }

    /// `new`, with weight decay only where `decay[i]` holds.
    pub fn with_decay_mask(vars: Vec<Var>, params: AdamWParams, decay: Vec<bool>) -> candle_core::Result<Self> {
        if decay.len() != vars.len() {
            candle_core::bail!("decay mask has {} entries for {} variables", decay.len(), vars.len())
        }
        Ok(Self { decay, ..Self::new(vars, params)? })
    }

    /// One update with gradients `grads[i]` for `vars[i]`.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> candle_core::Result<()> {
        self.t += 1;
        let AdamWParams { beta1, beta2, eps, weight_decay } = self.params;
        let c1 = 1.0 - beta1.powi(self.t as i32);
        let c2 = 1.0 - beta2.powi(self.t as i32);
        for (i, var) in self.vars.iter().enumerate() {
            let g = &grads[i];
            let m = ((&self.m[i] * beta1)? + (g * (1.0 - beta1))?)?.detach();
            let v = ((&self.v[i] * beta2)? + (g.sqr()? * (1.0 - beta2))?)?.detach();
            let m_hat = (&m / c1)?;
            let v_hat = (&v / c2)?;
            let wd = if self.decay[i] { weight_decay } else { 0.0 };
            let decayed = (var.as_tensor() * (1.0 - lr * wd))?;
            let update = ((m_hat / (v_hat.sqrt()? + eps)?)? * lr)?;
            var.set(&(decayed - update)?.detach())?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// Restores saved moments (same order and shapes as `vars`).
    pub fn restore(&mut self, t: usize, m: Vec<Tensor>, v: Vec<Tensor>) -> Result<(), String> {
        if m.len() != self.vars.len() || v.len() != self.vars.len() {
            return Err(format!("optimizer state has {} tensors, the model {}", m.len(), self.vars.len()));
        }
        for (i, var) in self.vars.iter().enumerate() {
            if m[i].dims() != var.dims() || v[i].dims() != var.dims() {
                return Err(format!("optimizer moment {i} has shape {:?}, parameter {:?}", m[i].dims(), var.dims()));
            }
        }
        (self.t, self.m, self.v) = (t, m, v);
        Ok(())
    }
}

/// Sums gradients over the micro-batches of one optimizer step.
#[derive(Debug)]
pub struct GradAccumulator {
    sums: Vec<Option<Tensor>>,
}

impl GradAccumulator {
    pub fn new(n: usize) -> Self {
        Self { sums: vec![None; n] }
    }

    pub fn add(&mut self, vars: &[Var], grads: &GradStore) -> candle_core::Result<()> {
        for (slot, var) in self.sums.iter_mut().zip(vars) {
            if let Some(g) = grads.get(var.as_tensor()) {
                let g = g.detach();
                *slot = Some(match slot.take() {
                    Some(s) => (s + g)?.detach(),
                    None => g,
                });
            }
        }
        Ok(())
    }

    /// The summed gradients (zeros for a parameter no micro-batch reached).
    pub fn finish(self, vars: &[Var]) -> candle_core::Result<Vec<Tensor>> {
        self.sums
            .into_iter()
            .zip(vars)
            .map(|(s, v)| match s {
                Some(s) => Ok(s),
                None => v.as_tensor().zeros_like(),
            })
            .collect()
    }
}

/// Scales `grads` so their global L2 norm is at most `max_norm`; returns the norm before.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> candle_core::Result<f64> {
    let mut sq = 0f64;
    for g in grads.iter() {
        sq += g.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()?;
    }
    let norm = sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for g in grads.iter_mut() {
            *g = (&*g * scale)?;
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Same numbers as candle_nn::AdamW on a quadratic (which matches PyTorch).
    #[test]
    fn matches_candle_adamw() -> candle_core::Result<()> {
        use candle_nn::Optimizer;
        let init = [3f32, -1.0, 0.5];
        let (ours, theirs) = (Var::new(&init, &Device::Cpu)?, Var::new(&init, &Device::Cpu)?);
        let p = AdamWParams::default();
        let mut a = AdamW::new(vec![ours.clone()], p)?;
        let cp = candle_nn::ParamsAdamW { lr: 0.1, beta1: p.beta1, beta2: p.beta2, eps: p.eps, weight_decay: p.weight_decay };
        let mut b = candle_nn::AdamW::new(vec![theirs.clone()], cp)?;
        for _ in 0..20 {
            let g = ours.as_tensor().backward_grad()?;
            a.step(&[g], 0.1)?;
            b.backward_step(&theirs.as_tensor().sqr()?.sum_all()?)?;
        }
        let (x, y) = (ours.to_vec1::<f32>()?, theirs.to_vec1::<f32>()?);
        for (x, y) in x.iter().zip(&y) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
        Ok(())
    }

    trait BackwardGrad {
        fn backward_grad(&self) -> candle_core::Result<Tensor>;
    }
    impl BackwardGrad for Tensor {
        fn backward_grad(&self) -> candle_core::Result<Tensor> {
            let grads = self.sqr()?.sum_all()?.backward()?;
            Ok(grads.get(self).unwrap().clone())
        }
    }

    #[test]
    fn clipping_bounds_global_norm() -> candle_core::Result<()> {
        let mut g = vec![Tensor::new(&[3f32, 0.0], &Device::Cpu)?, Tensor::new(&[4f32], &Device::Cpu)?];
        assert!((clip_grad_norm(&mut g, 1.0)? - 5.0).abs() < 1e-9);
        let n: f32 = g.iter().map(|t| t.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()).sum();
        assert!((n.sqrt() - 1.0).abs() < 1e-5);
        Ok(())
    }

    #[test]
    fn norm_weights_are_not_decayed() -> candle_core::Result<()> {
        assert!(decays("model.embed_tokens.weight") && decays("model.layers.0.mlp.up_proj.weight"));
        assert!(!decays("model.layers.3.input_layernorm.weight") && !decays("model.norm.weight"));
        let (a, b) = (Var::new(&[1f32, 2.0], &Device::Cpu)?, Var::new(&[1f32, 2.0], &Device::Cpu)?);
        let p = AdamWParams { weight_decay: 0.5, ..AdamWParams::default() };
        let mut opt = AdamW::with_decay_mask(vec![a.clone(), b.clone()], p, vec![true, false])?;
        let zero = Tensor::zeros(2, DType::F32, &Device::Cpu)?;
        opt.step(&[zero.clone(), zero], 0.1)?;
        assert_eq!(a.to_vec1::<f32>()?, [0.95, 1.9]);
        assert_eq!(b.to_vec1::<f32>()?, [1.0, 2.0]);
        Ok(())
    }
}
