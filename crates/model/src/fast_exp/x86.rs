//! The AVX-512 (16 lanes) and AVX2 + FMA (8 lanes) sides of `fast_exp`: the portable `exp`'s
//! operations one for one, so every lane's result is bit-identical to it. Tails too short for a
//! vector use a masked vector (AVX-512) or the portable `exp` inlined here (AVX2, where
//! `mul_add` compiles to the same FMA instruction).
#![allow(clippy::wildcard_imports)]

use std::arch::x86_64::*;

use super::{C1, C2, HI, LANES, LO, LOG2E, P, exp};

const ROUND: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

#[target_feature(enable = "avx512f")]
fn exp16(x: __m512) -> __m512 {
    let xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(LO)), _mm512_set1_ps(HI));
    let n = _mm512_roundscale_ps::<ROUND>(_mm512_mul_ps(xc, _mm512_set1_ps(LOG2E)));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C1), xc);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C2), r);
    let z = _mm512_mul_ps(r, r);
    let mut p = _mm512_set1_ps(P[0]);
    for c in &P[1..] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(*c));
    }
    let y = _mm512_add_ps(_mm512_fmadd_ps(p, z, r), _mm512_set1_ps(1.0));
    let ni = _mm512_cvtps_epi32(n);
    let n1 = _mm512_srai_epi32::<1>(ni);
    let n2 = _mm512_sub_epi32(ni, n1);
    let bias = _mm512_set1_epi32(127);
    let s1 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n1, bias)));
    let s2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n2, bias)));
    let y = _mm512_mul_ps(_mm512_mul_ps(y, s1), s2);
    // max/min turned NaN into LO: put it back.
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x), y, x)
}

#[target_feature(enable = "avx2,fma")]
fn exp8(x: __m256) -> __m256 {
    let xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(LO)), _mm256_set1_ps(HI));
    let n = _mm256_round_ps::<ROUND>(_mm256_mul_ps(xc, _mm256_set1_ps(LOG2E)));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C1), xc);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C2), r);
    let z = _mm256_mul_ps(r, r);
    let mut p = _mm256_set1_ps(P[0]);
    for c in &P[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*c));
    }
    let y = _mm256_add_ps(_mm256_fmadd_ps(p, z, r), _mm256_set1_ps(1.0));
    let ni = _mm256_cvtps_epi32(n);
    let n1 = _mm256_srai_epi32::<1>(ni);
    let n2 = _mm256_sub_epi32(ni, n1);
    let bias = _mm256_set1_epi32(127);
    let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias)));
    let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias)));
    let y = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
    _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x))
}

/// Mask of the first `n < 16` lanes.
fn head_mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// # Safety
/// The CPU must support AVX512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn exp_in_place_512(v: &mut [f32]) {
    let mut chunks = v.chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: `c` holds exactly 16 floats; unaligned load and store.
        unsafe { _mm512_storeu_ps(c.as_mut_ptr(), exp16(_mm512_loadu_ps(c.as_ptr()))) };
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let m = head_mask(tail.len());
        // SAFETY: the mask covers only the `tail.len()` floats of `tail`.
        unsafe { _mm512_mask_storeu_ps(tail.as_mut_ptr(), m, exp16(_mm512_maskz_loadu_ps(m, tail.as_ptr()))) };
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn exp_in_place_256(v: &mut [f32]) {
    let mut chunks = v.chunks_exact_mut(8);
    for c in &mut chunks {
        // SAFETY: `c` holds exactly 8 floats; unaligned load and store.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), exp8(_mm256_loadu_ps(c.as_ptr()))) };
    }
    for x in chunks.into_remainder() {
        *x = exp(*x);
    }
}

/// `v[i] = exp(v[i] − shift)`, lane `i % 16` of `lanes` accumulating them.
///
/// # Safety
/// The CPU must support AVX512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn exp_shifted_sum_512(v: &mut [f32], shift: f32, lanes: &mut [f32; LANES]) {
    let s = _mm512_set1_ps(shift);
    let mut acc = _mm512_setzero_ps();
    let mut chunks = v.chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: `c` holds exactly 16 floats.
        unsafe {
            let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(c.as_ptr()), s));
            _mm512_storeu_ps(c.as_mut_ptr(), e);
            acc = _mm512_add_ps(acc, e);
        }
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let m = head_mask(tail.len());
        // SAFETY: the mask covers only the floats of `tail`.
        unsafe {
            let e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, tail.as_ptr()), s));
            _mm512_mask_storeu_ps(tail.as_mut_ptr(), m, e);
            acc = _mm512_mask_add_ps(acc, m, acc, e);
        }
    }
    // SAFETY: `lanes` is 16 floats.
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), acc) };
}

/// As `exp_shifted_sum_512` with two 8-lane accumulators (lanes 0-7 and 8-15).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn exp_shifted_sum_256(v: &mut [f32], shift: f32, lanes: &mut [f32; LANES]) {
    let s = _mm256_set1_ps(shift);
    let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut chunks = v.chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: `c` holds exactly 16 floats: two 8-float halves.
        unsafe {
            let p = c.as_mut_ptr();
            let e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(p), s));
            let e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(p.add(8)), s));
            _mm256_storeu_ps(p, e0);
            _mm256_storeu_ps(p.add(8), e1);
            lo = _mm256_add_ps(lo, e0);
            hi = _mm256_add_ps(hi, e1);
        }
    }
    // SAFETY: `lanes` is 16 floats: two 8-float halves.
    unsafe {
        _mm256_storeu_ps(lanes.as_mut_ptr(), lo);
        _mm256_storeu_ps(lanes.as_mut_ptr().add(8), hi);
    }
    for (i, x) in chunks.into_remainder().iter_mut().enumerate() {
        *x = exp(*x - shift);
        lanes[i] += *x;
    }
}
