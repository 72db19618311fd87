//! The AVX512_BF16 side of `bf16`: row conversion (`vcvtneps2bf16`) and the register tile
//! (`vdpbf16ps`). Callers check `is_x86_feature_detected!("avx512bf16")` first (`bf16::fast`).
#![cfg(target_arch = "x86_64")]
#![allow(clippy::cast_possible_wrap)]

use std::arch::x86_64::{
    __m256bh, __m256i, __m512, __m512bh, __m512i, _mm256_storeu_si256, _mm512_add_ps, _mm512_cvtneps_pbh, _mm512_dpbf16_ps,
    _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_set1_epi32, _mm512_setzero_ps,
};

use super::{MR, NR};

/// `dst[..n] = bf16(src[..n])`, round to nearest even with denormals flushed (the instruction's
/// own rounding, which `round_bits` reproduces bit for bit); the tail goes through `round_bits`.
///
/// # Safety
/// The CPU must support AVX512F and AVX512_BF16; `dst.len() >= src.len()`.
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn convert_row(src: &[f32], dst: &mut [u16]) {
    let full = src.len() / 16 * 16;
    for i in (0..full).step_by(16) {
        // SAFETY: `i + 16 <= full <= src.len() <= dst.len()`; unaligned loads and stores.
        unsafe {
            let v = _mm512_cvtneps_pbh(_mm512_loadu_ps(src.as_ptr().add(i)));
            _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), std::mem::transmute::<__m256bh, __m256i>(v));
        }
    }
    for i in full..src.len() {
        dst[i] = super::round_bits(src[i]);
    }
}

/// One `rows x NR` tile over one block of `pairs` k-pairs: `dst (+)= a·b`.
///
/// `a` points at the tile's first row of bf16 activations (row stride `lda` u16, pairs of k
/// adjacent), `b` at the block's first pair in a packed panel (`NR` columns x 2 bf16 per pair),
/// `dst` at the tile's first output (row stride `ldd`), of which the first `cols` columns are
/// written; `accumulate` adds to what is there instead of overwriting it.
///
/// # Safety
/// AVX512F + AVX512_BF16; `a` readable for `rows` rows of `2·pairs` u16, `b` for `pairs·NR·2`
/// u16, `dst` writable for `rows` rows of `cols` f32; `rows == R`, `cols <= NR`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn tile<const R: usize>(
    a: *const u16,
    lda: usize,
    b: *const u16,
    pairs: usize,
    dst: *mut f32,
    ldd: usize,
    cols: usize,
    accumulate: bool,
) {
    const { assert!(R <= MR && NR == 64) };
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    for q in 0..pairs {
        // SAFETY: the caller guarantees `pairs` packed pairs at `b` and `2·pairs` u16 per row at `a`.
        unsafe {
            let bp = b.add(q * NR * 2);
            let bv: [__m512bh; 4] =
                std::array::from_fn(|t| std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.add(t * 32).cast())));
            for (i, row) in acc.iter_mut().enumerate() {
                let pair = a.add(i * lda + 2 * q).cast::<i32>().read_unaligned();
                let av = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(pair));
                for (t, c) in row.iter_mut().enumerate() {
                    *c = _mm512_dpbf16_ps(*c, av, bv[t]);
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (t, c) in row.iter().enumerate() {
            let valid = cols.saturating_sub(t * 16).min(16);
            if valid == 0 {
                continue;
            }
            let mask = if valid == 16 { u16::MAX } else { (1u16 << valid) - 1 };
            // SAFETY: masked lanes address only the first `cols` columns of row `i` of `dst`.
            unsafe {
                let p = dst.add(i * ldd + t * 16);
                let v: __m512 = if accumulate { _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), *c) } else { *c };
                _mm512_mask_storeu_ps(p, mask, v);
            }
        }
    }
}
