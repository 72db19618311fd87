//! The frozen SwiGLU MLP as one differentiable op: `y = (silu(x·Wgᵀ) ∘ x·Wuᵀ)·Wdᵀ`, with the
//! gradient of `x` only (LoRA on the attention projections, the default, leaves the MLP frozen).
//!
//! As three frozen matmuls and a SwiGLU op, the graph keeps the gate, up and gated activations
//! (3 x `[rows, intermediate]`, 2.7x the width of the hidden state each), and backward allocates
//! the gradients of all three plus one per input branch, then adds the two input gradients in a
//! separate pass. Here forward keeps only the gate and up activations; backward computes the
//! gated gradient, turns the kept activations into their own gradients in place, and sums both
//! branches' input gradients inside the GEMM (`dx = dGate·Wg + dUp·Wu`, the second accumulating).
//! The same GEMM calls as the unfused path, so values match it to rounding (only the order of
//! the final `dx` sum differs); results are bit-identical run to run.
//!
//! With `g = ∂L/∂y`, `a = x·Wgᵀ`, `b = x·Wuᵀ`, `σ = sigmoid(a)`: `dh = g·Wd`,
//! `da = dh·b·σ·(1 + a·(1−σ))`, `db = dh·a·σ`. Given bf16 packings of the three weights, every
//! product runs in bf16 as `frozen_matmul_packed` does.
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::{
    bf16::PackedWeight,
    fast_exp,
    kernels::{View, from_vec, gemm_new, gemm_view, last_dim, slice, with_data},
};

/// Elements per rayon task of the elementwise parts.
const GRAIN: usize = 4096;

/// The three frozen weights of a SwiGLU MLP: gate and up `[i, h]`, down `[h, i]`, with their
/// bf16 packings when the run computes in bf16 (all three or none).
#[derive(Debug, Clone)]
pub struct FrozenMlp {
    pub gate: Tensor,
    pub up: Tensor,
    pub down: Tensor,
    pub packed: Option<[Arc<PackedWeight>; 3]>,
}

impl FrozenMlp {
    /// `y [.., h]` for `x [.., h]`; differentiable in `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let op = MlpOp { w: self.checked(x)?, keep: x.track_op(), saved: Mutex::new(None) };
        x.contiguous()?.apply_op1(op)
    }

    /// These weights, contiguous, after checking that they chain and fit `x [.., h]`.
    pub(super) fn checked(&self, x: &Tensor) -> Result<Self> {
        let ((i, h), (ui, uh), (dh, di)) = (self.gate.dims2()?, self.up.dims2()?, self.down.dims2()?);
        if (ui, uh, dh, di) != (i, h, h, i) || last_dim(x.layout()) != h {
            bail!(
                "frozen mlp: x {:?}, gate {:?}, up {:?}, down {:?} do not chain",
                x.dims(),
                self.gate.dims(),
                self.up.dims(),
                self.down.dims()
            )
        }
        if [x, &self.gate, &self.up, &self.down].iter().any(|t| t.dtype() != DType::F32) {
            bail!("frozen mlp: f32 tensors expected")
        }
        if let Some([g, u, d]) = &self.packed
            && (g.dims() != (i, h) || u.dims() != (i, h) || d.dims() != (h, i))
        {
            bail!("frozen mlp: bf16 packings do not match the weights")
        }
        Ok(Self { gate: self.gate.contiguous()?, up: self.up.contiguous()?, down: self.down.contiguous()?, packed: self.packed.clone() })
    }

    fn packing(&self, k: usize) -> Option<&Arc<PackedWeight>> {
        self.packed.as_ref().map(|p| &p[k])
    }

    /// Forward over rows `x [rows, h]` of checked weights: the gate and up activations (what
    /// backward needs) and the output `y [rows, h]`.
    pub(super) fn forward_rows(&self, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let (i, h) = self.gate.dims2()?;
        let rows = x.len() / h;
        let (a, b) = (project(x, &self.gate, self.packing(0))?, project(x, &self.up, self.packing(1))?);
        // The gated activations, as `train_ops::swiglu` computes them.
        let mut gated = vec![0f32; rows * i];
        gated.par_chunks_mut(GRAIN).zip(a.par_chunks(GRAIN)).zip(b.par_chunks(GRAIN)).for_each(|((ys, as_), bs)| {
            for (y, &a) in ys.iter_mut().zip(as_) {
                *y = -a;
            }
            fast_exp::exp_in_place(ys);
            for ((y, &a), &b) in ys.iter_mut().zip(as_).zip(bs) {
                *y = a * (1.0 / (1.0 + *y)) * b;
            }
        });
        let y = project(&gated, &self.down, self.packing(2))?;
        Ok((a, b, y))
    }

    /// The input gradient `dx [rows, h]` for `g = ∂L/∂y`, given the kept gate and up
    /// activations (turned into their own gradients in place).
    pub(super) fn backward_rows(&self, g: &[f32], mut a: Vec<f32>, mut b: Vec<f32>) -> Result<Vec<f32>> {
        let mut dh = project_back_new(g, &self.down, self.packing(2))?;
        dh.par_chunks_mut(GRAIN).zip(a.par_chunks_mut(GRAIN)).zip(b.par_chunks_mut(GRAIN)).for_each(|((ds, as_), bs)| {
            let mut e: Vec<f32> = as_.iter().map(|&a| -a).collect();
            fast_exp::exp_in_place(&mut e);
            for j in 0..ds.len() {
                let (av, bv, gv) = (as_[j], bs[j], ds[j]);
                let s = 1.0 / (1.0 + e[j]);
                as_[j] = gv * bv * s * (1.0 + av * (1.0 - s));
                bs[j] = gv * av * s;
            }
        });
        let mut dx = project_back_new(&a, &self.gate, self.packing(0))?;
        project_back(&mut dx, &b, &self.up, self.packing(1), true)?;
        Ok(dx)
    }
}

struct MlpOp {
    w: FrozenMlp,
    /// Keep the gate and up activations for backward (only when `x` is in a graph).
    keep: bool,
    saved: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

/// `x·wᵀ` for `w [out, in]` (f32, or its bf16 packing `p`), a new `[rows, out]` vector.
fn project(x: &[f32], w: &Tensor, p: Option<&Arc<PackedWeight>>) -> Result<Vec<f32>> {
    let (out, inp) = w.dims2()?;
    if let Some(p) = p {
        let mut dst = vec![0f32; x.len() / inp * out];
        p.forward(x, &mut dst, false);
        return Ok(dst);
    }
    with_data(w, "mlp weight", |w| Ok(gemm_new(x.len() / inp, out, inp, View::rows(x, inp), View::rows(w, inp).t(), true)))
}

/// `g·w` for `w [out, in]` (the input gradient of `project`), a new `[rows, in]` vector.
fn project_back_new(g: &[f32], w: &Tensor, p: Option<&Arc<PackedWeight>>) -> Result<Vec<f32>> {
    let (out, inp) = w.dims2()?;
    if let Some(p) = p {
        let mut dst = vec![0f32; g.len() / out * inp];
        p.backward(g, &mut dst, false);
        return Ok(dst);
    }
    with_data(w, "mlp weight", |w| Ok(gemm_new(g.len() / out, inp, out, View::rows(g, out), View::rows(w, inp), true)))
}

/// `dst (+)= g·w` for `w [out, in]` (the input gradient of `project`).
fn project_back(dst: &mut [f32], g: &[f32], w: &Tensor, p: Option<&Arc<PackedWeight>>, acc: bool) -> Result<()> {
    if let Some(p) = p {
        p.backward(g, dst, acc);
        return Ok(());
    }
    let (out, inp) = w.dims2()?;
    with_data(w, "mlp weight", |w| {
        let rows = g.len() / out;
        gemm_view(dst, inp, rows, inp, out, View::rows(g, out), View::rows(w, inp), 1.0, acc, true);
        Ok(())
    })
}

impl CustomOp1 for MlpOp {
    fn name(&self) -> &'static str {
        "tf-frozen-mlp"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, b, y) = self.w.forward_rows(slice(s, l, "mlp input")?)?;
        if self.keep {
            *self.saved.lock().unwrap() = Some((a, b));
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let Some((a, b)) = self.saved.lock().unwrap().take() else { bail!("frozen mlp: backward without a kept forward") };
        let dx = with_data(grad, "mlp grad", |g| self.w.backward_rows(g, a, b))?;
        Ok(Some(from_vec(dx, x.dims())?))
    }
}

#[cfg(test)]
mod tests;
