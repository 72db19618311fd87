//! Block-wise weight quantization in the layout of ONNX Runtime's `com.microsoft.MatMulNBits`:
//! a Hugging Face `Linear.weight` `[N, K]` (N outputs, K inputs) is cut along K into blocks of
//! `block` values; each block gets an f32 scale and a uint8 zero point, and stores `bits`-bit
//! codes `q` with `w ≈ (q - zero_point) · scale`.
//!
//! Layout (ORT's contrib-op spec): `B` uint8 `[N, K/block, block·bits/8]` (4-bit: element 2j in
//! the low nibble, 2j+1 in the high one), `scales` f32 `[N · K/block]`, `zero_points` uint8
//! `[N · ceil(K/block · bits / 8)]` (4-bit: two per byte, low nibble first, a row padded to a
//! whole byte). Row-major over N, so the same table serves the tied embedding's `Gather`.
//!
//! Asymmetric (min/max with 0 included) rather than symmetric: a block of a Q4_1-quantized GGUF
//! (SmolLM2's shipped file) is an affine grid with a min, which symmetric codes waste a level or
//! more on. Zero points are integers (uint8) because ORT 1.30 only has fast kernels for those:
//! measured 576×1536 at M=1, 1 thread: 8-bit 37 µs with uint8 zero points vs an error with f32
//! ones; 4-bit 28 µs vs 2.0 ms (f32 zero points fall back to dequantize-then-GEMM).
//!
//! The codes are chosen per block by a small search over the clipping range (the min/max range
//! and shrunk versions of it, and for 8 bits the symmetric grid with zero point 128, on which a
//! GGUF Q8_0 block lands exactly), keeping the one with the least squared error.
//!
//! Block offsets ([`quantize_nbits_offsets`]): a uint8 zero point puts 0 exactly on the grid, so
//! a Q4_1 block (`w = d·q + m`, any `m`) is reproduced with scale `d` only up to a constant
//! `m - d·round(m/d)` of up to `d/2` over the whole block. That constant, not the rounding, is
//! what cost int4 its perplexity on SmolLM2 (Q4_1 source): +25% with it, +0.3% once it is added
//! back (Python onnxruntime A/B, `test/python`). So the mean residual `r[n, b]` of every block is
//! stored as `K/block` extra input columns of the same matrix, and the graph feeds the block
//! sums `Σ_{k∈b} x_k` as the matching extra inputs: `y = x·Ŵᵀ + S(x)·rᵀ` in one `MatMulNBits`,
//! exact for Q4_1 up to the 4-bit rounding of `r` itself. Cost: `1/block` more weights (3% at 32)
//! and a Reshape + ReduceSum + Concat per distinct input. (`MatMulNBits` also takes f32 zero
//! points, which would be exact, but ORT 1.30 runs them through dequantize + GEMM: 576×1536 at
//! M=1, 1 thread, 3.5 ms vs 49 µs with uint8 zero points at `accuracy_level` 4.)

/// One weight matrix in `MatMulNBits` layout.
#[derive(Clone, Debug)]
pub struct NBitsWeight {
    pub n: usize,
    pub k: usize,
    pub bits: u32,
    pub block: usize,
    pub blob: Vec<u8>,
    pub scales: Vec<f32>,
    pub zero_points: Vec<u8>,
    /// Block-offset columns at the end of each row (`k` counts them): 0, or the original
    /// `K / block` (see the module doc).
    pub offset_cols: usize,
    /// Sum of squared rounding errors and of squared weights, for the quantization report.
    pub err2: f64,
    pub norm2: f64,
}

impl NBitsWeight {
    #[must_use]
    pub fn blocks_per_row(&self) -> usize {
        self.k.div_ceil(self.block)
    }

    /// Bytes of one row's block codes.
    #[must_use]
    pub fn blob_size(&self) -> usize {
        self.block * self.bits as usize / 8
    }

    /// Zero-point bytes per row (4-bit: two per byte, padded to whole bytes per row).
    #[must_use]
    pub fn zero_point_row_bytes(&self) -> usize {
        (self.blocks_per_row() * self.bits as usize).div_ceil(8)
    }

    /// `w[row, col]` as the kernel will see it (for tests and error reports).
    #[must_use]
    pub fn dequantize(&self, row: usize, col: usize) -> f32 {
        let (blk, j) = (col / self.block, col % self.block);
        let nb = self.blocks_per_row();
        let base = (row * nb + blk) * self.blob_size();
        let q = if self.bits == 8 { self.blob[base + j] } else { (self.blob[base + j / 2] >> (4 * (j % 2))) & 0x0f };
        let zb = self.zero_points[row * self.zero_point_row_bytes() + blk * self.bits as usize / 8];
        let z = if self.bits == 8 { zb } else { (zb >> (4 * (blk % 2))) & 0x0f };
        (f32::from(q) - f32::from(z)) * self.scales[row * nb + blk]
    }
}

/// Candidate clipping ranges: fractions of the block's full min/max range tried by the search.
const SHRINK: [f32; 8] = [1.0, 0.97, 0.94, 0.91, 0.88, 0.85, 0.82, 0.79];

/// Quantizes `w [n, k]` (row-major, HF `[out, in]`) to `bits` ∈ {4, 8} in blocks of `block`
/// (a power of two ≥ 16) along k. A partial last block is zero-padded, as the kernel expects.
#[must_use]
pub fn quantize_nbits(w: &[f32], n: usize, k: usize, bits: u32, block: usize) -> NBitsWeight {
    // The clipping search is the slow part for 4 bits; 8 bits gains nothing measurable from it.
    quantize_nbits_search(w, n, k, bits, block, if bits == 4 { &SHRINK } else { &SHRINK[..1] })
}

/// [`quantize_nbits`] trying the clipping fractions `shrinks` (the first must be 1.0).
fn quantize_nbits_search(w: &[f32], n: usize, k: usize, bits: u32, block: usize, shrinks: &[f32]) -> NBitsWeight {
    assert!(bits == 4 || bits == 8, "MatMulNBits bits must be 4 or 8");
    assert!(block >= 16 && block.is_power_of_two(), "MatMulNBits block_size must be a power of two >= 16");
    assert_eq!(w.len(), n * k, "weight size");
    let levels = ((1u32 << bits) - 1) as f32;
    let mut out = NBitsWeight {
        n,
        k,
        bits,
        block,
        blob: Vec::new(),
        scales: Vec::new(),
        zero_points: Vec::new(),
        offset_cols: 0,
        err2: 0.0,
        norm2: 0.0,
    };
    let (nb, blob_size, zp_row) = (out.blocks_per_row(), out.blob_size(), out.zero_point_row_bytes());
    out.blob = vec![0u8; n * nb * blob_size];
    out.scales = vec![0f32; n * nb];
    out.zero_points = vec![0u8; n * zp_row];
    let mut codes = vec![0u8; block];
    for r in 0..n {
        for b in 0..nb {
            let lo = b * block;
            let vals = &w[r * k + lo..r * k + (lo + block).min(k)];
            let (mn, mx) = vals.iter().fold((0f32, 0f32), |(a, z), &v| (a.min(v), z.max(v)));
            let mut best = (f64::INFINITY, 1.0f32, 0u8);
            let absmax = mx.max(-mn);
            // 8 bits: also the symmetric grid (zero point 128, ±127 steps), exact for Q8_0.
            let symmetric = (bits == 8 && absmax > 0.0).then(|| (absmax / 127.0, 128u8));
            for cand in shrinks.iter().map(|&s| scale_zero_point(mn * s, mx * s, levels)).chain(symmetric) {
                let e = block_error(vals, cand.0, cand.1, levels);
                if e < best.0 {
                    best = (e, cand.0, cand.1);
                }
            }
            let (e, scale, zp) = best;
            codes.fill(zp);
            for (c, &v) in codes.iter_mut().zip(vals) {
                *c = code(v, scale, zp, levels);
            }
            out.err2 += e;
            out.norm2 += vals.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
            out.scales[r * nb + b] = scale;
            let dst = &mut out.blob[(r * nb + b) * blob_size..(r * nb + b + 1) * blob_size];
            if bits == 8 {
                dst.copy_from_slice(&codes);
                out.zero_points[r * zp_row + b] = zp;
            } else {
                for (d, pair) in dst.iter_mut().zip(codes.chunks_exact(2)) {
                    *d = pair[0] | (pair[1] << 4);
                }
                out.zero_points[r * zp_row + b / 2] |= zp << (4 * (b % 2));
            }
        }
    }
    out
}

/// [`quantize_nbits`] of `w [n, k]` with block offsets (module doc): the result has
/// `k + k/block` columns, the last `k/block` of each row holding the mean rounding residual of
/// each block (themselves quantized in the same format). `k` must be a multiple of `block`.
/// `err2` is measured on the effective weights `ŵ + r̂` the graph computes with.
#[must_use]
pub fn quantize_nbits_offsets(w: &[f32], n: usize, k: usize, bits: u32, block: usize) -> NBitsWeight {
    assert!(k.is_multiple_of(block), "block offsets need whole blocks");
    let nb = k / block;
    // No clipping search here: with the full min/max range a Q4_1 block gets scale d and its
    // error is the constant the offset then removes; a clipped scale spreads it unevenly.
    let plain = quantize_nbits_search(w, n, k, bits, block, &SHRINK[..1]);
    let k2 = k + nb;
    let mut aug = Vec::with_capacity(n * k2);
    for r in 0..n {
        aug.extend_from_slice(&w[r * k..(r + 1) * k]);
        for b in 0..nb {
            let resid: f64 = (b * block..(b + 1) * block).map(|c| f64::from(w[r * k + c] - plain.dequantize(r, c))).sum();
            aug.push((resid / block as f64) as f32);
        }
    }
    let mut q = quantize_nbits_search(&aug, n, k2, bits, block, &SHRINK[..1]);
    q.offset_cols = nb;
    let (mut err2, mut norm2) = (0.0, 0.0);
    for r in 0..n {
        for c in 0..k {
            let v = w[r * k + c];
            let back = q.dequantize(r, c) + q.dequantize(r, k + c / block);
            err2 += f64::from(v - back).powi(2);
            norm2 += f64::from(v).powi(2);
        }
    }
    (q.err2, q.norm2) = (err2, norm2);
    q
}

/// Scale and integer zero point mapping `[mn, mx]` (which contains 0) onto `0..=levels`.
fn scale_zero_point(mn: f32, mx: f32, levels: f32) -> (f32, u8) {
    let range = mx - mn;
    if range <= 0.0 {
        // An all-zero block: any scale reproduces it; 1 keeps dequantization finite.
        return (1.0, 0);
    }
    let scale = range / levels;
    (scale, (-mn / scale).round().clamp(0.0, levels) as u8)
}

fn code(v: f32, scale: f32, zp: u8, levels: f32) -> u8 {
    (v / scale + f32::from(zp)).round().clamp(0.0, levels) as u8
}

fn block_error(vals: &[f32], scale: f32, zp: u8, levels: f32) -> f64 {
    vals.iter()
        .map(|&v| {
            let back = (f32::from(code(v, scale, zp, levels)) - f32::from(zp)) * scale;
            f64::from(v - back).powi(2)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(n: usize, k: usize) -> Vec<f32> {
        // Deterministic, uneven values with an outlier per row.
        (0..n * k).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * if i % 97 == 0 { 8.0 } else { 1.0 }).collect()
    }

    #[test]
    fn eight_bit_blocks_round_trip_within_half_a_step() {
        let (n, k) = (3, 64);
        let w = weights(n, k);
        let q = quantize_nbits(&w, n, k, 8, 32);
        assert_eq!((q.blob.len(), q.scales.len(), q.zero_points.len()), (n * 2 * 32, n * 2, n * 2));
        for r in 0..n {
            for c in 0..k {
                let s = q.scales[r * 2 + c / 32];
                assert!((q.dequantize(r, c) - w[r * k + c]).abs() <= s / 2.0 + 1e-6, "({r},{c})");
            }
        }
    }

    #[test]
    fn four_bit_codes_pack_low_nibble_first_and_zero_is_exact() {
        let (n, k) = (2, 48);
        let mut w = weights(n, k);
        w[5] = 0.0;
        let q = quantize_nbits(&w, n, k, 4, 16);
        // 3 blocks per row → 2 zero-point bytes per row (the last nibble is padding).
        assert_eq!((q.blob.len(), q.zero_points.len()), (n * 3 * 8, n * 2));
        assert!(q.dequantize(0, 5).abs() < 1e-7, "0 must stay exactly 0");
        let rel = (q.err2 / q.norm2).sqrt();
        assert!(rel < 0.12, "4-bit relative error {rel}");
        // The stored values are what `dequantize` reads back: recompute one by hand.
        let (c, blk) = (17, 1);
        let code = (q.blob[blk * 8 + (c % 16) / 2] >> 4) & 0x0f;
        let zp = (q.zero_points[0] >> 4) & 0x0f;
        assert_eq!(q.dequantize(0, c), (f32::from(code) - f32::from(zp)) * q.scales[blk]);
    }

    #[test]
    fn block_offsets_make_a_q4_1_grid_exact_in_four_bits() {
        // Two rows of Q4_1-like blocks: w = d·q + m with m off the d-grid (so a uint8 zero point
        // alone leaves a constant error of up to d/2 over the block).
        let (n, k, block) = (2, 64, 32);
        let w: Vec<f32> = (0..n * k)
            .map(|i| {
                let blk = i / block;
                let (d, m) = (0.01 + 0.003 * blk as f32, -0.073 + 0.011 * blk as f32);
                m + d * ((i * 7) % 16) as f32
            })
            .collect();
        let plain = quantize_nbits(&w, n, k, 4, block);
        let with = quantize_nbits_offsets(&w, n, k, 4, block);
        assert_eq!((with.k, with.offset_cols, with.blocks_per_row()), (k + 2, 2, 3));
        let (rel_plain, rel_with) = ((plain.err2 / plain.norm2).sqrt(), (with.err2 / with.norm2).sqrt());
        assert!(rel_plain > 0.02, "the offset error is there without correction: {rel_plain}");
        assert!(rel_with < rel_plain / 5.0, "offsets cut the error: {rel_with} vs {rel_plain}");
        // The effective weight of column c is code + offset column of its block.
        let c = 40;
        let back = with.dequantize(1, c) + with.dequantize(1, k + c / block);
        assert!((back - w[k + c]).abs() < 0.004, "{back} vs {}", w[k + c]);
    }

    #[test]
    fn a_q8_0_block_is_exact_in_eight_bits() {
        // Q8_0: d · q with q in -127..=127 and |q| = 127 present.
        let d = 0.0037f32;
        let w: Vec<f32> = (0..32).map(|i| d * (((i * 37) % 255) as f32 - 127.0)).collect();
        let q = quantize_nbits(&w, 1, 32, 8, 32);
        for (c, v) in w.iter().enumerate() {
            assert!((q.dequantize(0, c) - v).abs() < 1e-6, "{c}");
        }
    }

    #[test]
    fn an_affine_grid_is_reproduced_exactly() {
        // A Q4_1-like block: min + d·q for q in 0..=15, with both ends present.
        let (d, m) = (0.01f32, -0.07f32);
        let w: Vec<f32> = (0..32).map(|i| m + d * (i % 16) as f32).collect();
        let q = quantize_nbits(&w, 1, 32, 8, 32);
        for (c, v) in w.iter().enumerate() {
            assert!((q.dequantize(0, c) - v).abs() < 2e-4, "{c}");
        }
    }
}
