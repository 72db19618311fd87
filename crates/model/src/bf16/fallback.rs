//! The portable reference tile: what `vdpbf16ps` computes, in plain f32 arithmetic. Each lane
//! adds the odd-index product, then the even one (products of two bf16 values are exact in f32),
//! and the block's sum is added to the destination last, exactly as the AVX-512 tile does.
use super::{NR, widen};

/// Same contract as `avx512::tile` on slices: `rows` rows from `a` (stride `lda`), a packed
/// block `b` of `pairs` pairs, `dst` (stride `ldd`) written in its first `cols` columns.
#[allow(clippy::too_many_arguments)]
pub fn tile(rows: usize, a: &[u16], lda: usize, b: &[u16], pairs: usize, dst: &mut [f32], ldd: usize, cols: usize, accumulate: bool) {
    let (b_even, b_odd): (Vec<f32>, Vec<f32>) = b[..pairs * NR * 2].chunks(2).map(|p| (widen(p[0]), widen(p[1]))).unzip();
    for i in 0..rows {
        let ar = &a[i * lda..][..2 * pairs];
        let mut t = [0f32; NR];
        for q in 0..pairs {
            let (a0, a1) = (widen(ar[2 * q]), widen(ar[2 * q + 1]));
            let (be, bo) = (&b_even[q * NR..][..NR], &b_odd[q * NR..][..NR]);
            for ((t, &o), &e) in t.iter_mut().zip(bo).zip(be) {
                *t = (*t + a1 * o) + a0 * e;
            }
        }
        let d = &mut dst[i * ldd..][..cols];
        for (d, t) in d.iter_mut().zip(t) {
            *d = if accumulate { *d + t } else { t };
        }
    }
}
