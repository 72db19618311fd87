//! The second half of a pre-norm block as one differentiable op, for a frozen MLP behind a frozen
//! RMSNorm (LoRA on the attention projections, the default): `h = x + o`,
//! `out = h + mlp(rms_norm(h)·w)`, differentiable in `x` (the block input) and `o` (the
//! attention output).
//!
//! Why: candle's graph keeps every op's inputs alive until backward. Built from an add, the
//! RMSNorm op, the fused MLP op and another add, it kept `h`, the normed `h` (read by no
//! backward: the MLP op keeps its own activations) and the MLP output (read by no backward
//! either): three `[rows, hidden]` tensors per layer. Here the graph keeps only `x` (kept
//! anyway, the block's first RMSNorm reads it) and `o`, plus the MLP's gate and up activations;
//! backward recomputes `h` with one add per element. At SmolLM2 shapes that is 3.5 MB per layer
//! per 512 tokens, 212 MB of a two-lane step's peak.
//!
//! The same kernels in the same order as the unfused ops (`train_ops::rms_norm_rows`,
//! `FrozenMlp::forward_rows`, elementwise adds), so values and gradients are bit-identical to
//! them: the gradient of `h` is `g + ∂(mlp∘norm)`, the two terms candle's graph added, and `x`
//! and `o` each receive it as they did from the add.
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::{mlp_op::FrozenMlp, train_ops};
use crate::kernels::{from_vec, slice, with_data};

/// Elements per rayon task of the adds.
const GRAIN: usize = 16 * 1024;

/// `x + o + mlp(rms_norm(x + o)·norm)` for `x`, `o [.., h]`; `norm [h]` and the MLP frozen.
pub fn residual_mlp(x: &Tensor, o: &Tensor, norm: &Tensor, eps: f32, mlp: &FrozenMlp) -> Result<Tensor> {
    let h = norm.elem_count();
    if x.dims() != o.dims() || norm.dims() != [h] {
        bail!("residual mlp: x {:?}, o {:?} and norm {:?} do not match", x.dims(), o.dims(), norm.dims())
    }
    if norm.track_op() || [x, o, norm].iter().any(|t| t.dtype() != DType::F32) {
        bail!("residual mlp: f32 tensors and a frozen norm weight expected")
    }
    let op =
        ResidualMlpOp { norm: norm.contiguous()?, eps, mlp: mlp.checked(x)?, keep: x.track_op() || o.track_op(), saved: Mutex::new(None) };
    x.contiguous()?.apply_op2(&o.contiguous()?, op)
}

struct ResidualMlpOp {
    norm: Tensor,
    eps: f32,
    mlp: FrozenMlp,
    /// Keep the MLP's activations for backward (only when an input is in a graph).
    keep: bool,
    saved: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

/// `a + b`, elementwise, a new vector.
fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; a.len()];
    y.par_chunks_mut(GRAIN).zip(a.par_chunks(GRAIN)).zip(b.par_chunks(GRAIN)).for_each(|((ys, as_), bs)| {
        for ((y, a), b) in ys.iter_mut().zip(as_).zip(bs) {
            *y = a + b;
        }
    });
    y
}

/// `dst += a`, elementwise (IEEE addition commutes: the same bits as `a + dst`).
fn add_into(a: &[f32], dst: &mut [f32]) {
    dst.par_chunks_mut(GRAIN).zip(a.par_chunks(GRAIN)).for_each(|(ds, as_)| {
        for (d, a) in ds.iter_mut().zip(as_) {
            *d += a;
        }
    });
}

impl CustomOp2 for ResidualMlpOp {
    fn name(&self) -> &'static str {
        "tf-residual-mlp"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, o) = (slice(s1, l1, "residual mlp x")?, slice(s2, l2, "residual mlp o")?);
        let h = add(x, o);
        let normed = with_data(&self.norm, "residual mlp norm", |w| Ok(train_ops::rms_norm_rows(&h, w, self.eps)))?;
        let (a, b, mut y) = self.mlp.forward_rows(&normed)?;
        drop(normed);
        add_into(&h, &mut y);
        if self.keep {
            *self.saved.lock().unwrap() = Some((a, b));
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, o: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some((a, b)) = self.saved.lock().unwrap().take() else { bail!("residual mlp: backward without a kept forward") };
        let dh = with_data(grad, "residual mlp grad", |g| {
            let dnormed = self.mlp.backward_rows(g, a, b)?;
            let h = with_data(x, "residual mlp x", |x| with_data(o, "residual mlp o", |o| Ok(add(x, o))))?;
            let (mut dh, _) =
                with_data(&self.norm, "residual mlp norm", |w| Ok(train_ops::rms_norm_bwd(&h, w, &dnormed, w.len(), self.eps)))?;
            add_into(g, &mut dh);
            Ok(dh)
        })?;
        let dh = from_vec(dh, x.dims())?;
        Ok((x.track_op().then(|| dh.clone()), o.track_op().then_some(dh)))
    }
}

#[cfg(test)]
mod tests;
