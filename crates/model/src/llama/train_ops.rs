//! Fused training kernels with hand-written backward passes.
//!
//! The differentiable path built from candle primitives (`rms_norm_slow`, `rope_slow`, `softmax`
//! plus an additive mask, `silu() * up`) runs 5 to 15 elementwise ops per call, each allocating a
//! fresh activation-sized tensor and each with its own backward ops. On a 2-core CPU that was
//! about half of a LoRA step next to the GEMMs. Each op here is one pass forward and one pass
//! backward over rows, parallel with rayon (the pool the GEMMs use), and the causal mask is
//! applied inside the softmax instead of being materialised and added.
//!
//! Backward formulas (per row, `g` = upstream gradient):
//! * RMSNorm `y = x·r·w`, `r = 1/sqrt(mean(x²)+eps)`: `dx = r·(g·w − x·r²·mean(g·w·x))`,
//!   `dw = Σ_rows g·x·r`.
//! * RoPE is a rotation per pair `(x_i, x_{i+d/2})`; its gradient is the inverse rotation.
//! * Softmax `p = softmax(s·x)` with `p_j = 0` for `j > i`: `dx = s·p·(g − Σ_j g_j·p_j)`.
//! * SwiGLU `y = silu(a)·b`, `σ = sigmoid(a)`: `da = g·b·σ·(1 + a·(1−σ))`, `db = g·a·σ`.
//!
//! Reductions across rows (the RMSNorm weight gradient) are summed in a fixed block order, so
//! results do not depend on how rayon splits the work: training stays bit-reproducible.
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::{
    fast_exp,
    kernels::{from_vec, last_dim, slice, with_data},
};

/// Rows handed to one rayon task: enough work to amortise the task, small enough to balance.
const ROW_GRAIN: usize = 16;
/// Fixed number of partial sums for cross-row reductions (deterministic, see the module doc).
const REDUCE_BLOCKS: usize = 32;

// ---------------------------------------------------------------- RMSNorm

/// `x [.., d] / rms(x) * w [d]`, differentiable in `x` and `w`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, RmsNormOp { eps })
}

struct RmsNormOp {
    eps: f32,
}

fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ss: f32 = row.iter().map(|v| v * v).sum();
    1.0 / (ss / row.len() as f32 + eps).sqrt()
}

impl CustomOp2 for RmsNormOp {
    fn name(&self) -> &'static str {
        "tf-rms-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (slice(s1, l1, "rms_norm input")?, slice(s2, l2, "rms_norm weight")?);
        let d = w.len();
        if last_dim(l1) != d {
            bail!("rms_norm: input last dim {} != weight size {d}", last_dim(l1))
        }
        Ok((CpuStorage::F32(rms_norm_rows(x, w, self.eps)), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d = w.elem_count();
        let (dx, dw) = with_data(x, "rms_norm input", |x| {
            with_data(w, "rms_norm weight", |w| with_data(grad, "rms_norm grad", |g| Ok(rms_norm_bwd(x, w, g, d, self.eps))))
        })?;
        Ok((Some(from_vec(dx, x.dims())?), Some(from_vec(dw, w.dims())?)))
    }
}

/// RMSNorm forward over rows of `w.len()`.
pub(super) fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let d = w.len();
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(d * ROW_GRAIN).zip(x.par_chunks(d * ROW_GRAIN)).for_each(|(ys, xs)| {
        for (yr, xr) in ys.chunks_mut(d).zip(xs.chunks(d)) {
            let r = inv_rms(xr, eps);
            for ((yv, xv), wv) in yr.iter_mut().zip(xr).zip(w) {
                *yv = xv * r * wv;
            }
        }
    });
    y
}

/// RMSNorm backward over rows of `d`: `(dx, dw)`.
pub(super) fn rms_norm_bwd(x: &[f32], w: &[f32], g: &[f32], d: usize, eps: f32) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / d;
    let mut dx = vec![0f32; x.len()];
    let block_rows = rows.div_ceil(REDUCE_BLOCKS).max(1);
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(d * block_rows)
        .zip(x.par_chunks(d * block_rows))
        .zip(g.par_chunks(d * block_rows))
        .map(|((dxs, xs), gs)| {
            let mut dw = vec![0f32; d];
            for ((dxr, xr), gr) in dxs.chunks_mut(d).zip(xs.chunks(d)).zip(gs.chunks(d)) {
                let r = inv_rms(xr, eps);
                let dot: f32 = gr.iter().zip(w).zip(xr).map(|((g, w), x)| g * w * x).sum();
                let c = r * r * dot / d as f32;
                for i in 0..d {
                    dxr[i] = r * (gr[i] * w[i] - xr[i] * c);
                    dw[i] += gr[i] * xr[i] * r;
                }
            }
            dw
        })
        .collect();
    let mut dw = vec![0f32; d];
    for p in &partials {
        for (a, b) in dw.iter_mut().zip(p) {
            *a += b;
        }
    }
    (dx, dw)
}

// ---------------------------------------------------------------- RoPE

/// Rotary embedding in HF's rotate-half layout on `x [b, h, s, d]` with `cos`/`sin [s, d/2]`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(RopeOp { cos: cos.clone(), sin: sin.clone(), inverse: false })
}

struct RopeOp {
    cos: Tensor,
    sin: Tensor,
    /// Rotate by `-θ` (the gradient of rotating by `θ`).
    inverse: bool,
}

impl CustomOp1 for RopeOp {
    fn name(&self) -> &'static str {
        "tf-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, "rope input")?;
        let dims = l.dims();
        let (seq, d) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        let half = d / 2;
        if self.cos.dims() != [seq, half] || self.sin.dims() != [seq, half] {
            bail!("rope: tables {:?} do not match input {dims:?}", self.cos.dims())
        }
        let sign = if self.inverse { -1.0f32 } else { 1.0 };
        let mut y = vec![0f32; x.len()];
        with_data(&self.cos, "rope cos", |cos| {
            with_data(&self.sin, "rope sin", |sin| {
                // One task per (batch, head): `seq` rows of `d`.
                y.par_chunks_mut(seq * d).zip(x.par_chunks(seq * d)).for_each(|(ys, xs)| {
                    for (p, (yr, xr)) in ys.chunks_mut(d).zip(xs.chunks(d)).enumerate() {
                        let (c, sn) = (&cos[p * half..(p + 1) * half], &sin[p * half..(p + 1) * half]);
                        for i in 0..half {
                            let (a, b, si) = (xr[i], xr[i + half], sign * sn[i]);
                            yr[i] = a * c[i] - b * si;
                            yr[i + half] = b * c[i] + a * si;
                        }
                    }
                });
                Ok(())
            })
        })?;
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let inverse = RopeOp { cos: self.cos.clone(), sin: self.sin.clone(), inverse: !self.inverse };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&inverse)?))
    }
}

// ---------------------------------------------------------------- causal softmax

/// `softmax(scale · x)` over the last dim of `x [.., s, s]` with positions `j > i` masked out.
pub fn causal_softmax(x: &Tensor, scale: f32) -> Result<Tensor> {
    x.contiguous()?.apply_op1(CausalSoftmaxOp { scale })
}

struct CausalSoftmaxOp {
    scale: f32,
}

impl CustomOp1 for CausalSoftmaxOp {
    fn name(&self) -> &'static str {
        "tf-causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, "softmax input")?;
        let dims = l.dims();
        let (q, k) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        if q > k {
            bail!("causal softmax: {q} queries over {k} keys")
        }
        // Queries are the last `q` of `k` positions (k > q with a cache).
        let offset = k - q;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(q * k).zip(x.par_chunks(q * k)).for_each(|(ys, xs)| {
            for (i, (yr, xr)) in ys.chunks_mut(k).zip(xs.chunks(k)).enumerate() {
                let n = i + offset + 1;
                let m = xr[..n].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) * self.scale;
                for (y, x) in yr[..n].iter_mut().zip(&xr[..n]) {
                    *y = x * self.scale;
                }
                let inv = 1.0 / fast_exp::exp_shifted_sum(&mut yr[..n], m);
                yr[..n].iter_mut().for_each(|v| *v *= inv);
            }
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let k = res.dims()[res.rank() - 1];
        let dx = with_data(res, "softmax output", |p| {
            with_data(grad, "softmax grad", |g| {
                let mut dx = vec![0f32; p.len()];
                dx.par_chunks_mut(k * ROW_GRAIN).zip(p.par_chunks(k * ROW_GRAIN)).zip(g.par_chunks(k * ROW_GRAIN)).for_each(
                    |((ds, ps), gs)| {
                        for ((dr, pr), gr) in ds.chunks_mut(k).zip(ps.chunks(k)).zip(gs.chunks(k)) {
                            let dot: f32 = pr.iter().zip(gr).map(|(p, g)| p * g).sum();
                            for j in 0..k {
                                dr[j] = self.scale * pr[j] * (gr[j] - dot);
                            }
                        }
                    },
                );
                Ok(dx)
            })
        })?;
        Ok(Some(from_vec(dx, res.dims())?))
    }
}

// ---------------------------------------------------------------- SwiGLU

/// `silu(a) · b` (Llama's MLP gate), differentiable in both.
pub fn swiglu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.dims() != b.dims() {
        bail!("swiglu: shapes {:?} and {:?} differ", a.dims(), b.dims())
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, SwigluOp)
}

struct SwigluOp;

/// `dst[i] = exp(−a[i])`, from which `sigmoid(a) = 1 / (1 + dst)` (vectorised exp).
fn exp_neg(a: &[f32], dst: &mut [f32]) {
    for (d, &a) in dst.iter_mut().zip(a) {
        *d = -a;
    }
    fast_exp::exp_in_place(dst);
}

const ELEM_GRAIN: usize = 4096;

impl CustomOp2 for SwigluOp {
    fn name(&self) -> &'static str {
        "tf-swiglu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, b) = (slice(s1, l1, "swiglu gate")?, slice(s2, l2, "swiglu up")?);
        let mut y = vec![0f32; a.len()];
        y.par_chunks_mut(ELEM_GRAIN).zip(a.par_chunks(ELEM_GRAIN)).zip(b.par_chunks(ELEM_GRAIN)).for_each(|((ys, as_), bs)| {
            exp_neg(as_, ys);
            for ((y, &a), &b) in ys.iter_mut().zip(as_).zip(bs) {
                *y = a * (1.0 / (1.0 + *y)) * b;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (da, db) = with_data(a, "swiglu gate", |a| {
            with_data(b, "swiglu up", |b| {
                with_data(grad, "swiglu grad", |g| {
                    let (mut da, mut db) = (vec![0f32; a.len()], vec![0f32; a.len()]);
                    da.par_chunks_mut(ELEM_GRAIN)
                        .zip(db.par_chunks_mut(ELEM_GRAIN))
                        .zip(a.par_chunks(ELEM_GRAIN).zip(b.par_chunks(ELEM_GRAIN)).zip(g.par_chunks(ELEM_GRAIN)))
                        .for_each(|((das, dbs), ((as_, bs), gs))| {
                            exp_neg(as_, das);
                            for i in 0..as_.len() {
                                let (a, b, g) = (as_[i], bs[i], gs[i]);
                                let s = 1.0 / (1.0 + das[i]);
                                das[i] = g * b * s * (1.0 + a * (1.0 - s));
                                dbs[i] = g * a * s;
                            }
                        });
                    Ok((da, db))
                })
            })
        })?;
        Ok((Some(from_vec(da, a.dims())?), Some(from_vec(db, b.dims())?)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Var};

    use super::*;
    use crate::llama::{frozen_matmul::frozen_matmul, test_support::rand};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Value and gradients of `loss = Σ f(inputs)·probe` for the fused op and the reference.
    fn check(inputs: &[Tensor], fused: impl Fn(&[Tensor]) -> Tensor, reference: impl Fn(&[Tensor]) -> Tensor) {
        let run = |f: &dyn Fn(&[Tensor]) -> Tensor| {
            let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
            let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
            let y = f(&ts);
            let probe = rand(y.dims(), 99);
            let grads = (&y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let g: Vec<Tensor> = vars.iter().map(|v| grads.get(v).unwrap().clone()).collect();
            (y, g)
        };
        let (y1, g1) = run(&fused);
        let (y2, g2) = run(&reference);
        assert!(max_diff(&y1, &y2) < 1e-5, "values differ by {}", max_diff(&y1, &y2));
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            assert!(max_diff(a, b) < 1e-4, "gradient {i} differs by {}", max_diff(a, b));
        }
    }

    #[test]
    fn frozen_matmul_matches_matmul_and_gives_the_input_gradient() {
        let w = rand(&[7, 12], 11);
        check(&[rand(&[2, 5, 12], 12)], |t| frozen_matmul(&t[0], &w).unwrap(), |t| t[0].broadcast_matmul(&w.t().unwrap()).unwrap());
    }

    #[test]
    fn rms_norm_matches_the_primitive_form() {
        check(
            &[rand(&[3, 5, 40], 1), rand(&[40], 2)],
            |t| rms_norm(&t[0], &t[1], 1e-5).unwrap(),
            |t| candle_nn::ops::rms_norm_slow(&t[0], &t[1], 1e-5).unwrap(),
        );
    }

    #[test]
    fn rope_matches_the_primitive_form() {
        let (s, d) = (7, 16);
        let freqs = rand(&[s, d / 2], 3);
        let (cos, sin) = (freqs.cos().unwrap(), freqs.sin().unwrap());
        check(
            &[rand(&[2, 3, s, d], 4)],
            |t| rope(&t[0], &cos, &sin).unwrap(),
            |t| candle_nn::rotary_emb::rope_slow(&t[0], &cos, &sin).unwrap(),
        );
    }

    #[test]
    fn causal_softmax_matches_mask_plus_softmax() {
        let s = 9;
        let mask: Vec<f32> = (0..s * s).map(|i| if i % s > i / s { f32::NEG_INFINITY } else { 0.0 }).collect();
        let mask = Tensor::from_vec(mask, (s, s), &Device::Cpu).unwrap();
        check(
            &[(rand(&[2, 3, s, s], 5) * 4.0).unwrap()],
            |t| causal_softmax(&t[0], 0.25).unwrap(),
            |t| candle_nn::ops::softmax(&(&t[0] * 0.25).unwrap().broadcast_add(&mask).unwrap(), D::Minus1).unwrap(),
        );
    }

    #[test]
    fn swiglu_matches_silu_times_up() {
        check(
            &[(rand(&[4, 6, 50], 6) * 3.0).unwrap(), rand(&[4, 6, 50], 7)],
            |t| swiglu(&t[0], &t[1]).unwrap(),
            |t| (t[0].silu().unwrap() * &t[1]).unwrap(),
        );
    }

    #[test]
    fn rms_norm_weight_gradient_does_not_depend_on_thread_count() {
        let (x, w, g) = (rand(&[300, 64], 8), rand(&[64], 9), rand(&[300, 64], 10));
        let run = || with_data(&x, "x", |x| with_data(&w, "w", |w| with_data(&g, "g", |g| Ok(rms_norm_bwd(x, w, g, 64, 1e-5))))).unwrap();
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(run);
        let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap().install(run);
        assert_eq!(one, three);
    }
}
