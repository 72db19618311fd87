//! Weights for ONNX `MatMul`: a Hugging Face `Linear.weight` `[out, in]` becomes ONNX's `B`
//! `[in, out]` (transposed), either f32, block-wise `MatMulNBits` (`blockwise.rs`, not
//! transposed: that op reads `[N, K]` blocks), or the first INT8 scheme in the exact `quantize_dynamic` pattern
//! (`DynamicQuantizeLinear` → `MatMulInteger` → `Cast` → `Mul` by `X_scale · W_scale`) that
//! ONNX Runtime fuses into `DynamicQuantizeMatMul` at optimization level ≥ extended.
//!
//! INT8 weights are symmetric per output channel: `scale[n] = max_k |W[n,k]| / QMAX`,
//! `q = round(W / scale)` in `[-QMAX, QMAX]`, zero points all 0. Symmetric keeps the zero point
//! out of the integer GEMM; per channel keeps one large row from flattening every other row.
//!
//! `QMAX` is 63 (7-bit weights, `quantize_dynamic`'s `reduce_range=True`), not 127: on x86 CPUs
//! without VNNI (AVX2, plain AVX-512) ORT's u8×s8 kernel sums pairs of products in saturating
//! int16 (`vpmaddubsw`), and 255·127·2 overflows it. Measured on the tiny test model (Zen 3,
//! AVX2): full-range weights gave a max logit error of 8.3% of the logit range, 7-bit weights
//! 0.9% (weight rounding alone: 0.8%).
use crate::blockwise::{NBitsWeight, quantize_nbits, quantize_nbits_offsets};
use crate::graph::Graph;
use crate::proto::DataType;
use crate::scheme::Format;
use crate::tensor::Attr;

/// `w [rows, cols]` (row-major) → `[cols, rows]`.
#[must_use]
pub fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

/// Largest stored weight magnitude (see the module doc: 7 bits avoid int16 saturation).
pub const QMAX: f32 = 63.0;

/// INT8 symmetric per-row quantization of `w [rows, cols]`: the values stored transposed
/// (`[cols, rows]`, ready to be `MatMulInteger`'s B) and one scale per row.
#[must_use]
pub fn quantize_rows_transposed(w: &[f32], rows: usize, cols: usize) -> (Vec<i8>, Vec<f32>) {
    quantize_rows_transposed_to(w, rows, cols, QMAX)
}

/// [`quantize_rows_transposed`] onto `[-qmax, qmax]`.
#[must_use]
pub fn quantize_rows_transposed_to(w: &[f32], rows: usize, cols: usize, qmax: f32) -> (Vec<i8>, Vec<f32>) {
    let mut q = vec![0i8; w.len()];
    let mut scales = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        // An all-zero row gets scale 1 so dequantization stays 0 instead of 0/0.
        let scale = if max > 0.0 { max / qmax } else { 1.0 };
        for (c, v) in row.iter().enumerate() {
            q[c * rows + r] = (v / scale).round().clamp(-qmax, qmax) as i8;
        }
        scales.push(scale);
    }
    (q, scales)
}

/// A weight `[out, in]` stored in the graph, ready for [`WeightRef::matmul`].
#[derive(Clone, Debug)]
pub enum WeightRef {
    /// `B [in, out]`.
    F32 { b: String },
    /// `B [in, out]` 7-bit codes, per-output-channel scales (`Format::Int8Dynamic`).
    Int8 { b: String, scale: String, zero_point: String },
    /// `B [in, out]` codes, per-output-channel scales; activations quantized per token
    /// (`Format::Int8PerToken`).
    Int8PerToken { b: String, scale: String },
    /// `MatMulNBits` blocks `[out, in/block, block·bits/8]`.
    NBits {
        b: String,
        scales: String,
        zero_points: String,
        n: usize,
        /// The kernel's K: the input width plus `offset_cols`.
        k: usize,
        bits: u32,
        block: usize,
        accuracy_level: i64,
        /// Block-offset columns after the input's own (0 = none): the input gets its block sums
        /// appended (`blockwise.rs`).
        offset_cols: usize,
    },
}

/// What [`WeightRef::add`] stored, for the quantization report.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stored {
    pub bytes: u64,
    /// Σ(w - ŵ)² and Σw² (0 for f32).
    pub err2: f64,
    pub norm2: f64,
}

impl WeightRef {
    /// Adds the initializers for `w [out, in]` under `name` (HF module path) in `format`.
    pub fn add(g: &mut Graph, name: &str, w: &[f32], out: usize, inp: usize, format: Format) -> (Self, Stored) {
        let dims = [inp as i64, out as i64];
        match format {
            Format::F32 => {
                let b = format!("{name}.weight_transposed");
                g.b.initializer_f32(&b, &dims, &transpose(w, out, inp));
                (Self::F32 { b }, Stored { bytes: 4 * w.len() as u64, ..Stored::default() })
            }
            Format::Int8PerToken => {
                let (q, scales) = quantize_rows_transposed_to(w, out, inp, 127.0);
                let stored = Stored { bytes: (w.len() + 4 * out) as u64, ..rounding_error(w, &q, &scales, out, inp) };
                let (b, scale) = (format!("{name}.weight_quantized"), format!("{name}.weight_scale"));
                g.b.initializer_i8(&b, &dims, &q).initializer_f32(&scale, &[out as i64], &scales);
                (Self::Int8PerToken { b, scale }, stored)
            }
            Format::Int8Dynamic => {
                let (q, scales) = quantize_rows_transposed(w, out, inp);
                let Stored { err2, norm2, .. } = rounding_error(w, &q, &scales, out, inp);
                let b = format!("{name}.weight_quantized");
                let scale = format!("{name}.weight_scale");
                let zero_point = format!("{name}.weight_zero_point");
                g.b.initializer_i8(&b, &dims, &q).initializer_f32(&scale, &[out as i64], &scales).initializer_i8(
                    &zero_point,
                    &[out as i64],
                    &vec![0; out],
                );
                (Self::Int8 { b, scale, zero_point }, Stored { bytes: (w.len() + 5 * out) as u64, err2, norm2 })
            }
            Format::NBits { bits, block, accuracy_level, offsets } => {
                // Offsets need whole blocks (true of every Llama width we export); else plain.
                let q = if offsets && inp.is_multiple_of(block) {
                    quantize_nbits_offsets(w, out, inp, bits, block)
                } else {
                    quantize_nbits(w, out, inp, bits, block)
                };
                Self::add_nbits(g, name, &q, accuracy_level)
            }
        }
    }

    fn add_nbits(g: &mut Graph, name: &str, q: &NBitsWeight, accuracy_level: i64) -> (Self, Stored) {
        let (b, scales, zero_points) =
            (format!("{name}.weight_q{}", q.bits), format!("{name}.weight_scales"), format!("{name}.weight_zero_points"));
        let nb = q.blocks_per_row() as i64;
        g.b.initializer_u8(&b, &[q.n as i64, nb, q.blob_size() as i64], &q.blob)
            .initializer_f32(&scales, &[q.n as i64 * nb], &q.scales)
            .initializer_u8(&zero_points, &[(q.n * q.zero_point_row_bytes()) as i64], &q.zero_points)
            .opset("com.microsoft", 1);
        let bytes = (q.blob.len() + 4 * q.scales.len() + q.zero_points.len()) as u64;
        let wr = Self::NBits {
            b,
            scales,
            zero_points,
            n: q.n,
            k: q.k,
            bits: q.bits,
            block: q.block,
            accuracy_level,
            offset_cols: q.offset_cols,
        };
        (wr, Stored { bytes, err2: q.err2, norm2: q.norm2 })
    }

    /// `x [.., in] · Wᵀ` → `[.., out]`, written to `out` if given.
    #[allow(clippy::too_many_lines)]
    pub fn matmul(&self, g: &mut Graph, x: &str, out: Option<&str>) -> String {
        let y = out.map_or_else(|| g.fresh("matmul"), str::to_string);
        match self {
            Self::F32 { b } => {
                g.b.node("MatMul", &[x, b], &[&y], vec![]);
            }
            Self::Int8 { b, scale, zero_point } => {
                let (xq, xs, xz) = (g.fresh("x_quantized"), g.fresh("x_scale"), g.fresh("x_zero_point"));
                g.b.node("DynamicQuantizeLinear", &[x], &[&xq, &xs, &xz], vec![]);
                let acc = g.op("MatMulInteger", &[&xq, b, &xz, zero_point], vec![]);
                let acc_f = g.op("Cast", &[&acc], vec![Attr::int("to", DataType::Float as i64)]);
                let scales = g.op("Mul", &[&xs, scale], vec![]);
                g.b.node("Mul", &[&acc_f, &scales], &[&y], vec![]);
            }
            Self::Int8PerToken { b, scale } => {
                let (xq, xs, zp) = per_token_u8(g, x);
                let acc = g.op("MatMulInteger", &[&xq, b, &zp], vec![]);
                let acc_f = g.op("Cast", &[&acc], vec![Attr::int("to", DataType::Float as i64)]);
                let rows = g.op("Mul", &[&acc_f, &xs], vec![]);
                g.b.node("Mul", &[&rows, scale], &[&y], vec![]);
            }
            Self::NBits { b, scales, zero_points, n, k, bits, block, accuracy_level, offset_cols } => {
                let x = if *offset_cols > 0 { with_block_sums(g, x, *offset_cols, *block) } else { x.to_string() };
                let x = x.as_str();
                let attrs = vec![
                    Attr::int("K", *k as i64),
                    Attr::int("N", *n as i64),
                    Attr::int("bits", i64::from(*bits)),
                    Attr::int("block_size", *block as i64),
                    Attr::int("accuracy_level", *accuracy_level),
                ];
                g.b.node_in("com.microsoft", "MatMulNBits", &[x, b, scales, zero_points], &[&y], attrs);
            }
        }
        y
    }

    /// Rows `ids` of the original `[out, in]` matrix as `[.., in]` f32: the token embedding read
    /// from the (tied) head's table, dequantized after the `Gather` so only the looked-up rows
    /// are touched.
    pub fn gather_rows(&self, g: &mut Graph, ids: &str, rank_of_ids: usize) -> String {
        match self {
            Self::F32 { b } | Self::Int8 { b, .. } | Self::Int8PerToken { b, .. } => {
                // Stored transposed: Gather on axis 1, then [in, ids...] → [ids..., in].
                let cols = g.op("Gather", &[b, ids], vec![Attr::int("axis", 1)]);
                let perm: Vec<i64> = (1..=rank_of_ids as i64).chain([0]).collect();
                let rows = g.op("Transpose", &[&cols], vec![Attr::ints("perm", &perm)]);
                let (Self::Int8 { scale, .. } | Self::Int8PerToken { scale, .. }) = self else { return rows };
                let rows_f = g.op("Cast", &[&rows], vec![Attr::int("to", DataType::Float as i64)]);
                let s = g.op("Gather", &[scale, ids], vec![Attr::int("axis", 0)]);
                let last = g.const_i64(&[1], &[-1]);
                let s = g.op("Unsqueeze", &[&s, &last], vec![]);
                g.op("Mul", &[&rows_f, &s], vec![])
            }
            Self::NBits { bits: 4, .. } => {
                assert_eq!(rank_of_ids, 2, "a 4-bit table is gathered for [batch, seq] ids");
                self.gather_rows_4bit(g, ids)
            }
            Self::NBits { b, scales, zero_points, n, k, bits, block, offset_cols, .. } => {
                assert_eq!(*bits, 8, "an embedding table is read with plain ops only from 8-bit blocks");
                assert_eq!(*offset_cols, 0, "an 8-bit embedding table has no block offsets");
                let nb = k.div_ceil(*block) as i64;
                let table = g.const_i64(&[2], &[*n as i64, nb]);
                let last = g.const_i64(&[1], &[-1]);
                // [.., nb, block] codes and [.., nb, 1] zero points / scales.
                let codes = g.op("Gather", &[b, ids], vec![Attr::int("axis", 0)]);
                let codes = g.op("Cast", &[&codes], vec![Attr::int("to", DataType::Float as i64)]);
                let per_block = |g: &mut Graph, t: &str, cast: bool| {
                    let t = g.op("Reshape", &[t, &table], vec![]);
                    let t = g.op("Gather", &[&t, ids], vec![Attr::int("axis", 0)]);
                    let t = if cast { g.op("Cast", &[&t], vec![Attr::int("to", DataType::Float as i64)]) } else { t };
                    g.op("Unsqueeze", &[&t, &last], vec![])
                };
                let zp = per_block(g, zero_points, true);
                let s = per_block(g, scales, false);
                let centered = g.op("Sub", &[&codes, &zp], vec![]);
                let rows = g.op("Mul", &[&centered, &s], vec![]);
                let mut shape = vec![0i64; rank_of_ids];
                shape.push(nb * *block as i64);
                let flat = g.const_i64(&[shape.len() as i64], &shape);
                let rows = g.op("Reshape", &[&rows, &flat], vec![]);
                if nb as usize * block == *k {
                    return rows;
                }
                // A padded last block: drop the padding.
                let (zero, end, axis) = (g.const_i64(&[1], &[0]), g.const_i64(&[1], &[*k as i64]), g.const_i64(&[1], &[-1]));
                g.op("Slice", &[&rows, &zero, &end, &axis], vec![])
            }
        }
    }
}

impl WeightRef {
    /// The 4-bit table's rows through `com.microsoft.GatherBlockQuantized` (its data `[N, K'/2]`,
    /// scales `[N, K'/block]` and packed zero points are the `MatMulNBits` initializers
    /// reshaped), with the block offsets added back when the table has them.
    fn gather_rows_4bit(&self, g: &mut Graph, ids: &str) -> String {
        let Self::NBits { b, scales, zero_points, n, k, block, offset_cols, .. } = self else { unreachable!("4-bit table") };
        let nb = k.div_ceil(*block);
        let shape = |g: &mut Graph, cols: usize| g.const_i64(&[2], &[*n as i64, cols as i64]);
        let data_shape = shape(g, nb * block / 2);
        let data = g.op("Reshape", &[b, &data_shape], vec![]);
        let scales_shape = shape(g, nb);
        let s = g.op("Reshape", &[scales, &scales_shape], vec![]);
        let zp_shape = shape(g, nb.div_ceil(2));
        let zp = g.op("Reshape", &[zero_points, &zp_shape], vec![]);
        let rows = g.fresh("embedding");
        g.b.node_in(
            "com.microsoft",
            "GatherBlockQuantized",
            &[&data, ids, &s, &zp],
            &[&rows],
            vec![Attr::int("gather_axis", 0), Attr::int("quantize_axis", 1), Attr::int("block_size", *block as i64), Attr::int("bits", 4)],
        );
        let width = k - offset_cols;
        let slice = |g: &mut Graph, x: &str, from: usize, to: usize| {
            let (a, z, axis) = (g.const_i64(&[1], &[from as i64]), g.const_i64(&[1], &[to as i64]), g.const_i64(&[1], &[-1]));
            g.op("Slice", &[x, &a, &z, &axis], vec![])
        };
        let main = slice(g, &rows, 0, width);
        if *offset_cols == 0 {
            return main;
        }
        // [.., K] + offsets: per block of `block` columns, one offset value.
        let blocks = g.const_i64(&[4], &[0, 0, *offset_cols as i64, *block as i64]);
        let main = g.op("Reshape", &[&main, &blocks], vec![]);
        let off = slice(g, &rows, width, *k);
        let last = g.const_i64(&[1], &[-1]);
        let off = g.op("Unsqueeze", &[&off, &last], vec![]);
        let sum = g.op("Add", &[&main, &off], vec![]);
        let flat = g.const_i64(&[3], &[0, 0, width as i64]);
        g.op("Reshape", &[&sum, &flat], vec![])
    }
}

/// Σ(w - ŵ)² and Σw² of `w [out, inp]` against its transposed codes `q` and per-row `scales`.
fn rounding_error(w: &[f32], q: &[i8], scales: &[f32], out: usize, inp: usize) -> Stored {
    let (mut err2, mut norm2) = (0.0, 0.0);
    for (i, &v) in w.iter().enumerate() {
        let (r, c) = (i / inp, i % inp);
        err2 += f64::from(v - f32::from(q[c * out + r]) * scales[r]).powi(2);
        norm2 += f64::from(v).powi(2);
    }
    Stored { bytes: 0, err2, norm2 }
}

/// `x [.., in]` quantized per token (row): `scale = max(max_j |x_j|, ε) / 127`, codes
/// `round(x / scale) + 128` as uint8 (`[1, 255]` around the zero point 128). Returns (codes,
/// scale `[.., 1]`, zero point). Built once per input and shared by every matmul reading it
/// (q/k/v, gate/up). A row depends on no other row, so batching never changes a result.
fn per_token_u8(g: &mut Graph, x: &str) -> (String, String, String) {
    let act_max: u8 = 127;
    let key = format!("per_token/{x}");
    if let Some(v) = g.derived.get(&key) {
        let mut parts = v.split('\n').map(str::to_string);
        let (q, s, z) = (parts.next(), parts.next(), parts.next());
        return (q.unwrap_or_default(), s.unwrap_or_default(), z.unwrap_or_default());
    }
    let zp_name = "per_token_zero_point".to_string();
    if !g.derived.contains_key(&zp_name) {
        g.b.initializer_u8(&zp_name, &[], &[act_max + 1]);
        g.derived.insert(zp_name.clone(), zp_name.clone());
    }
    let (eps, qmax, shift) =
        (g.const_f32(&[], &[1e-8]), g.const_f32(&[], &[f32::from(act_max)]), g.const_f32(&[], &[f32::from(act_max) + 1.0]));
    let last = g.const_i64(&[1], &[-1]);
    let abs = g.op("Abs", &[x], vec![]);
    let max = g.op("ReduceMax", &[&abs, &last], vec![Attr::int("keepdims", 1)]);
    let max = g.op("Max", &[&max, &eps], vec![]);
    let scale = g.op("Div", &[&max, &qmax], vec![]);
    let div = g.op("Div", &[x, &scale], vec![]);
    let round = g.op("Round", &[&div], vec![]);
    let shifted = g.op("Add", &[&round, &shift], vec![]);
    let q = g.op("Cast", &[&shifted], vec![Attr::int("to", DataType::Uint8 as i64)]);
    g.derived.insert(key, format!("{q}\n{scale}\n{zp_name}"));
    (q, scale, zp_name)
}

/// `[x, S(x)]` for `x [b, s, nb·block]`: the input with its `nb` block sums appended (the inputs
/// of a block-offset matrix). Built once per input and shared by every matmul reading it.
fn with_block_sums(g: &mut Graph, x: &str, nb: usize, block: usize) -> String {
    let key = format!("block_sums/{block}/{x}");
    if let Some(v) = g.derived.get(&key) {
        return v.clone();
    }
    let shape = g.const_i64(&[4], &[0, 0, nb as i64, block as i64]);
    let last = g.const_i64(&[1], &[-1]);
    let blocks = g.op("Reshape", &[x, &shape], vec![]);
    let sums = g.op("ReduceSum", &[&blocks, &last], vec![Attr::int("keepdims", 0)]);
    let out = g.op("Concat", &[x, &sums], vec![Attr::int("axis", -1)]);
    g.derived.insert(key, out.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_moves_rows_to_columns() {
        assert_eq!(transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn per_row_symmetric_int8_round_trips_within_half_a_step() {
        let w = [0.4, -1.0, 0.25, 0.0, 0.0, 0.0, 2.0, 1.0, -0.3];
        let (q, s) = quantize_rows_transposed(&w, 3, 3);
        assert_eq!(s, vec![1.0 / QMAX, 1.0, 2.0 / QMAX]);
        // Row 0 = column 0 of the transposed values.
        assert_eq!((q[0], q[3], q[6]), (25, -63, 16));
        assert_eq!((q[1], q[4], q[7]), (0, 0, 0));
        for r in 0..3 {
            for c in 0..3 {
                let back = f32::from(q[c * 3 + r]) * s[r];
                assert!((back - w[r * 3 + c]).abs() <= s[r] / 2.0 + 1e-7);
            }
        }
    }
}
