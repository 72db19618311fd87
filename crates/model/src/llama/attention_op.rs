//! Fused causal self-attention for the training path: RoPE, grouped-query heads, scaled scores,
//! causal softmax and the weighted sum of values in one differentiable op.
//!
//! Built from graph nodes (transpose, RoPE, `repeat_kv`, two batched matmuls, softmax, transpose
//! back) every step allocated and zero-filled about ten activation-sized gradient tensors per
//! layer, and `repeat_kv` copied K and V once per query head. Here each (batch, query head) is
//! one rayon task that reads its Q/K/V head straight out of the projections' `[b, s, n·hd]`
//! output through strided GEMM views (GQA heads share K/V without copies) and writes `[b, s,
//! n_head·hd]`, the layout `o_proj` wants.
//!
//! Backward recomputes the probabilities `P` instead of storing them (a custom op returns one
//! tensor; the scores are a few percent of a step's FLOPs). Per head, with `S = scale·Q·Kᵀ`:
//! `dV = Pᵀ·dY`, `dP = dY·Vᵀ`, `dS = scale·P∘(dP − rowsum(dP∘P))`, `dQ = dS·K`, `dK = dSᵀ·Q`,
//! then the inverse rotation undoes RoPE on `dQ` and `dK`. The query heads sharing a kv head
//! add their `dK`/`dV` in head order after the parallel part, so gradients are bit-identical
//! whatever the thread count or scheduling.
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::{
    fast_exp,
    kernels::{View, from_vec, gemm_view, slice, with_data},
};

/// Query rows per causal block (see `AttentionOp::blocks`).
const BLOCK: usize = 32;

/// Causal attention over `q [b, s, n_head·hd]`, `k`/`v [b, s, n_kv·hd]` (projection outputs,
/// heads side by side) with RoPE tables `cos`/`sin [s, hd/2]` (HF rotate-half layout).
/// Returns `[b, s, n_head·hd]`. Differentiable in `q`, `k` and `v`.
#[allow(clippy::too_many_arguments)]
pub fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    n_head: usize,
    n_kv: usize,
    head_dim: usize,
    scale: f32,
) -> Result<Tensor> {
    let (b, s, qw) = q.dims3()?;
    let kv_dims = [b, s, n_kv * head_dim];
    if qw != n_head * head_dim || k.dims() != kv_dims || v.dims() != kv_dims {
        bail!(
            "causal_attention: q {:?}, k {:?}, v {:?} do not fit {n_head} heads / {n_kv} kv heads of {head_dim}",
            q.dims(),
            k.dims(),
            v.dims()
        )
    }
    if n_kv == 0 || !n_head.is_multiple_of(n_kv) || !head_dim.is_multiple_of(2) {
        bail!("causal_attention: {n_head} heads over {n_kv} kv heads of dim {head_dim}")
    }
    if cos.dims() != [s, head_dim / 2] || sin.dims() != [s, head_dim / 2] {
        bail!("causal_attention: rope tables {:?} do not match {s} positions of dim {head_dim}", cos.dims())
    }
    let op =
        AttentionOp { cos: cos.flatten_all()?.to_vec1()?, sin: sin.flatten_all()?.to_vec1()?, b, s, n_head, n_kv, hd: head_dim, scale };
    q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

struct AttentionOp {
    cos: Vec<f32>,
    sin: Vec<f32>,
    b: usize,
    s: usize,
    n_head: usize,
    n_kv: usize,
    hd: usize,
    scale: f32,
}

/// Roped query and key `[s, hd]` of one head.
struct Roped {
    q: Vec<f32>,
    k: Vec<f32>,
}

impl AttentionOp {
    fn qw(&self) -> usize {
        self.n_head * self.hd
    }

    fn kvw(&self) -> usize {
        self.n_kv * self.hd
    }

    /// Column of task `t = batch·n_head + head` in the kv tensors, and its batch offset in rows.
    fn kv_col(&self, t: usize) -> (usize, usize) {
        let (bi, h) = (t / self.n_head, t % self.n_head);
        ((h / (self.n_head / self.n_kv)) * self.hd, bi * self.s)
    }

    /// `dst [s, hd]` = rows `x[p·w + col ..][..hd]` rotated by `sign·θ_p`.
    fn rotate(&self, x: &[f32], w: usize, col: usize, sign: f32) -> Vec<f32> {
        let (hd, half) = (self.hd, self.hd / 2);
        let mut dst = vec![0f32; self.s * hd];
        for (p, d) in dst.chunks_mut(hd).enumerate() {
            // Zipped equal-length halves: no bounds checks, so the loop vectorises.
            let (a, b) = x[p * w + col..][..hd].split_at(half);
            let (da, db) = d.split_at_mut(half);
            let (c, sn) = (&self.cos[p * half..][..half], &self.sin[p * half..][..half]);
            let pairs = da.iter_mut().zip(db.iter_mut()).zip(a.iter().zip(b));
            for (((da, db), (&a, &b)), (&c, &sn)) in pairs.zip(c.iter().zip(sn)) {
                let sn = sign * sn;
                *da = a * c - b * sn;
                *db = b * c + a * sn;
            }
        }
        dst
    }

    /// Row blocks `r0..r1` of the `s` queries: block `r0..r1` sees keys `0..r1` only, so the
    /// GEMMs skip most of the masked upper triangle (9/16 of the full products at s = 256).
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let s = self.s;
        (0..s).step_by(BLOCK).map(move |r0| (r0, (r0 + BLOCK).min(s)))
    }

    /// Fills `p [s, s]` with the causal attention probabilities of task `t`. `p` is scratch
    /// reused across tasks (fresh `s²` buffers cost page faults); every element is written.
    fn probs(&self, q: &[f32], k: &[f32], t: usize, p: &mut Vec<f32>) -> Roped {
        let (s, hd) = (self.s, self.hd);
        let (bi, h) = (t / self.n_head, t % self.n_head);
        let (kcol, row0) = self.kv_col(t);
        let qr = self.rotate(&q[bi * s * self.qw()..], self.qw(), h * hd, 1.0);
        let kr = self.rotate(&k[row0 * self.kvw()..], self.kvw(), kcol, 1.0);
        p.resize(s * s, 0.0);
        let kv = View::rows(&kr, hd).t();
        for (r0, r1) in self.blocks() {
            let qb = View::rows(&qr[r0 * hd..], hd);
            gemm_view(&mut p[r0 * s..], s, r1 - r0, r1, hd, qb, kv, self.scale, false, false);
        }
        for (i, row) in p.chunks_mut(s).enumerate() {
            let (seen, masked) = row.split_at_mut(i + 1);
            let m = seen.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let inv = 1.0 / fast_exp::exp_shifted_sum(seen, m);
            for v in seen.iter_mut() {
                *v *= inv;
            }
            masked.fill(0.0);
        }
        Roped { q: qr, k: kr }
    }

    fn v_view<'a>(&self, v: &'a [f32], t: usize) -> View<'a> {
        let (col, row0) = self.kv_col(t);
        View::rows(&v[row0 * self.kvw() + col..], self.kvw())
    }

    fn forward_head(&self, (q, k, v): (&[f32], &[f32], &[f32]), t: usize, p: &mut Vec<f32>) -> Vec<f32> {
        let (s, hd) = (self.s, self.hd);
        self.probs(q, k, t, p);
        let mut y = vec![0f32; s * hd];
        for (r0, r1) in self.blocks() {
            let pb = View::rows(&p[r0 * s..], s);
            let yb = &mut y[r0 * hd..];
            gemm_view(yb, hd, r1 - r0, hd, r1, pb, self.v_view(v, t), 1.0, false, false);
        }
        y
    }

    /// `(dQ, dK, dV)` of one (batch, query head), each `[s, hd]`, RoPE already undone.
    fn backward_head(&self, (q, k, v, g): (&[f32], &[f32], &[f32], &[f32]), t: usize, (p, ds): &mut (Vec<f32>, Vec<f32>)) -> [Vec<f32>; 3] {
        let (s, hd, qw) = (self.s, self.hd, self.qw());
        let (bi, h) = (t / self.n_head, t % self.n_head);
        let hp = self.probs(q, k, t, p);
        // Rows r0..r1 of dS are written (cols 0..r1) before they are read, so no zeroing.
        ds.resize(s * s, 0.0);
        let vt = self.v_view(v, t).t();
        let kr = View::rows(&hp.k, hd);
        let (mut dq, mut dk, mut dv) = (vec![0f32; s * hd], vec![0f32; s * hd], vec![0f32; s * hd]);
        for (r0, r1) in self.blocks() {
            let m = r1 - r0;
            let dy = View::rows(&g[(bi * s + r0) * qw + h * hd..], qw);
            let pb = View::rows(&p[r0 * s..], s);
            gemm_view(&mut dv, hd, r1, hd, m, pb.t(), dy, 1.0, true, false);
            let dsb = &mut ds[r0 * s..r1 * s];
            gemm_view(dsb, s, m, r1, hd, dy, vt, 1.0, false, false);
            for (dr, pr) in dsb.chunks_mut(s).zip(p[r0 * s..].chunks(s)) {
                // P is exactly zero above the diagonal, so dS is too.
                let (dr, pr) = (&mut dr[..r1], &pr[..r1]);
                let dot: f32 = dr.iter().zip(pr).map(|(d, p)| d * p).sum();
                for (d, p) in dr.iter_mut().zip(pr) {
                    *d = self.scale * p * (*d - dot);
                }
            }
            let dsb = View::rows(&ds[r0 * s..], s);
            gemm_view(&mut dq[r0 * hd..], hd, m, hd, r1, dsb, kr, 1.0, false, false);
            let qb = View::rows(&hp.q[r0 * hd..], hd);
            gemm_view(&mut dk, hd, r1, hd, m, dsb.t(), qb, 1.0, true, false);
        }
        [self.rotate(&dq, hd, 0, -1.0), self.rotate(&dk, hd, 0, -1.0), dv]
    }

    /// Copies (or adds) task `t`'s `[s, hd]` block into `dst [b, s, w]` at column `col`.
    fn scatter(&self, dst: &mut [f32], w: usize, col: usize, bi: usize, src: &[f32], add: bool) {
        for (p, r) in src.chunks(self.hd).enumerate() {
            let d = &mut dst[(bi * self.s + p) * w + col..][..self.hd];
            if add {
                d.iter_mut().zip(r).for_each(|(d, r)| *d += r);
            } else {
                d.copy_from_slice(r);
            }
        }
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "tf-causal-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let q = slice(s1, l1, "attention q")?;
        let k = slice(s2, l2, "attention k")?;
        let v = slice(s3, l3, "attention v")?;
        let heads: Vec<Vec<f32>> =
            (0..self.b * self.n_head).into_par_iter().map_init(Vec::new, |p, t| self.forward_head((q, k, v), t, p)).collect();
        let mut y = vec![0f32; q.len()];
        for (t, yh) in heads.iter().enumerate() {
            let (bi, h) = (t / self.n_head, t % self.n_head);
            self.scatter(&mut y, self.qw(), h * self.hd, bi, yh, false);
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let heads: Vec<[Vec<f32>; 3]> = with_data(q, "attention q", |q| {
            with_data(k, "attention k", |k| {
                with_data(v, "attention v", |v| {
                    with_data(grad, "attention grad", |g| {
                        Ok((0..self.b * self.n_head)
                            .into_par_iter()
                            .map_init(Default::default, |scratch, t| self.backward_head((q, k, v, g), t, scratch))
                            .collect())
                    })
                })
            })
        })?;
        let (mut dq, mut dk) = (vec![0f32; q.elem_count()], vec![0f32; k.elem_count()]);
        let mut dv = vec![0f32; v.elem_count()];
        // Serial, in head order: the kv gradients are sums over query heads (see module doc).
        for (t, [hq, hk, hv]) in heads.iter().enumerate() {
            let (bi, h) = (t / self.n_head, t % self.n_head);
            let (kcol, _) = self.kv_col(t);
            self.scatter(&mut dq, self.qw(), h * self.hd, bi, hq, false);
            self.scatter(&mut dk, self.kvw(), kcol, bi, hk, true);
            self.scatter(&mut dv, self.kvw(), kcol, bi, hv, true);
        }
        Ok((Some(from_vec(dq, q.dims())?), Some(from_vec(dk, k.dims())?), Some(from_vec(dv, v.dims())?)))
    }
}

#[cfg(test)]
mod tests;
