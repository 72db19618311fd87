//! What each weight of the exported decoder is stored as, and the report of what was done.
//!
//! `Quantization` is the user-facing choice (`int8` / `int4`); `Scheme` is what it means tensor
//! group by tensor group; `QuantReport` (serde) records it with the measured rounding error for
//! `tinyforge.json`. The choices and the measurements behind them are in the crate README
//! ("Quantization").
use serde::Serialize;

/// The user-facing quantization choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantization {
    /// SmoothQuant int8 (`smooth.rs`): the decoder projections as per-token (row) dynamic int8
    /// activations x per-output-channel int8 weights (`MatMulInteger`), after smoothing the
    /// activations' outlier channels into the weights (alpha 0.5, calibrated on
    /// `data/general-replay.txt`); the tied embedding/head in 8-bit blocks of 32 (`MatMulNBits`).
    /// Measured on SmolLM2 (crate README, "Quantization"): perplexity within 1% of fp32 and
    /// prefill about 2.4x faster than `Int8Blocks`.
    Int8,
    /// The previous int8 default: weight-only 8-bit blocks along the input dim (`MatMulNBits`,
    /// uint8 zero points): blocks of 64 in the decoder layers, 32 in the tied embedding/head;
    /// `accuracy_level` 4 (activations quantized to int8 per block inside the kernel).
    Int8Blocks,
    /// Weight-only 4-bit blocks of 32 (`MatMulNBits`) with block offsets (`blockwise.rs`) for the
    /// decoder layers; the tied embedding/head split by vocabulary rows (`head.rs`): the first
    /// quarter (the frequent tokens) 8-bit blocks of 32 (exact for a GGUF Q8_0 table), the rest
    /// 4-bit blocks of 16. Measured on SmolLM2: 18.0% of fp32 (goal 18%), perplexity +1.8%,
    /// teacher-forced top-1 96.4%; the whole table at 8 bits: 19.8%, +0.29%, 97.3%.
    Int4,
    /// The first INT8 scheme (7-bit per-channel weights, per-tensor dynamic activations,
    /// `MatMulInteger`), kept as the measured baseline: perplexity +70% on SmolLM2.
    Int8Dynamic,
}

impl Quantization {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Int8 => "int8",
            Self::Int4 => "int4",
            Self::Int8Dynamic => "int8-dynamic",
            Self::Int8Blocks => "int8-blocks",
        }
    }

    /// `"int8"`, `"int4"`, `"int8-blocks"`, `"int8-dynamic"`; `None` for anything else.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Int8, Self::Int4, Self::Int8Blocks, Self::Int8Dynamic].into_iter().find(|q| q.name() == name)
    }

    /// The per-tensor-group formats this choice stands for. Block sizes are set by the size
    /// goals (int8 ≤ 28%, int4 ≤ 18% of the f32 file): an f32 scale + a zero point cost 1.25
    /// bits a weight at block 32, 0.625 at block 64 (README, "Quantization").
    #[must_use]
    pub fn scheme(self) -> Scheme {
        let nbits = |bits, block, offsets| Format::NBits { bits, block, accuracy_level: 4, offsets };
        let head = nbits(8, 32, false);
        match self {
            Self::Int8 => {
                let q = Format::Int8PerToken;
                Scheme {
                    name: self.name(),
                    linear: q,
                    down_proj: q,
                    head,
                    head_tail: None,
                    fused: true,
                    smooth_alpha: Some(0.5),
                    last_layer: Some(nbits(8, 64, false)),
                }
            }
            Self::Int8Blocks => Scheme {
                name: self.name(),
                linear: nbits(8, 64, false),
                down_proj: nbits(8, 64, false),
                head,
                head_tail: None,
                fused: true,
                smooth_alpha: None,
                last_layer: None,
            },
            Self::Int4 => {
                // The rare three quarters of the vocabulary at 4 bits in blocks of 16 (`head.rs`;
                // the measured alternatives are in the crate README, "Quantization").
                let head_tail = Some(HeadTail { from: (1, 4), format: nbits(4, 16, false) });
                Scheme {
                    name: self.name(),
                    linear: nbits(4, 32, true),
                    down_proj: nbits(4, 32, true),
                    head,
                    head_tail,
                    fused: true,
                    smooth_alpha: None,
                    last_layer: None,
                }
            }
            Self::Int8Dynamic => {
                let q = Format::Int8Dynamic;
                Scheme {
                    name: self.name(),
                    linear: q,
                    down_proj: q,
                    head: q,
                    head_tail: None,
                    fused: false,
                    smooth_alpha: None,
                    last_layer: None,
                }
            }
        }
    }
}

/// How one weight is stored and multiplied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    F32,
    /// Symmetric per-output-channel int8 weights (codes in `[-127, 127]`) x activations
    /// quantized per token (row) to uint8 at run time, codes `[1, 255]` around 128
    /// (`MatMulInteger`, `quantize.rs`). Exact in ONNX Runtime on CPUs with VNNI and on any CPU
    /// with the session option `session.x64quantprecision` = 1, which our sessions set (crate
    /// README, "Quantization": without it, x86 CPUs without VNNI saturate int16 pair sums).
    Int8PerToken,
    /// 7-bit per-output-channel weights + `DynamicQuantizeLinear` per tensor (`quantize.rs`).
    Int8Dynamic,
    /// `com.microsoft.MatMulNBits` block-wise weights (`blockwise.rs`).
    NBits {
        bits: u32,
        block: usize,
        accuracy_level: i64,
        /// Block offsets: each block's mean residual as extra input columns (`blockwise.rs`).
        offsets: bool,
    },
}

impl Format {
    #[must_use]
    pub fn describe(self) -> String {
        match self {
            Self::F32 => "f32".into(),
            Self::Int8Dynamic => "int8 per-channel weights (7-bit), per-tensor dynamic int8 activations (MatMulInteger)".into(),
            Self::Int8PerToken => "int8 per-output-channel symmetric weights x per-token (row) dynamic uint8 activations (MatMulInteger; ONNX Runtime session option session.x64quantprecision=1 on x86 CPUs without VNNI)".into(),
            Self::NBits { bits, block, accuracy_level, offsets } => {
                let extra = if offsets { " + block offsets (each block's mean residual, applied to its input sum)" } else { "" };
                format!("{bits}-bit asymmetric blocks of {block}{extra} (MatMulNBits, accuracy_level {accuracy_level})")
            }
        }
    }
}

/// Formats per tensor group. `linear`: q/k/v/o/gate/up projections of every layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scheme {
    pub name: &'static str,
    pub linear: Format,
    pub down_proj: Format,
    /// The output head; when the head is tied, also the token embedding (one table).
    pub head: Format,
    /// The tail rows of the head/embedding table stored in another format than `head`
    /// (`head.rs`: the rare tail of a BPE vocabulary in fewer bits).
    pub head_tail: Option<HeadTail>,
    /// Attention and norms as ORT's fused contrib ops (`fused_ops.rs`, right padding only) instead
    /// of plain opset-21 ops (`plain_ops.rs`, any padding, slower).
    pub fused: bool,
    /// SmoothQuant's alpha (`smooth.rs`), applied when the export is given calibration text.
    pub smooth_alpha: Option<f32>,
    /// The last decoder layer's projections in this format instead of `linear`/`down_proj`.
    pub last_layer: Option<Format>,
}

impl Scheme {
    /// (`linear`, `down_proj`) formats of decoder layer `i` of `layers`.
    #[must_use]
    pub fn layer_formats(&self, i: usize, layers: usize) -> (Format, Format) {
        match self.last_layer {
            Some(f) if i + 1 == layers => (f, f),
            _ => (self.linear, self.down_proj),
        }
    }

    /// True when layer `i`'s projection of kind `down` (else q/k/v/o/gate/up) is per-token int8,
    /// the only format smoothing is for.
    #[must_use]
    pub fn smooths(&self, i: usize, layers: usize, down: bool) -> bool {
        let (linear, down_proj) = self.layer_formats(i, layers);
        self.smooth_alpha.is_some() && (if down { down_proj } else { linear }) == Format::Int8PerToken
    }
}

impl Scheme {
    #[must_use]
    pub fn f32() -> Self {
        Self {
            name: "none",
            linear: Format::F32,
            down_proj: Format::F32,
            head: Format::F32,
            head_tail: None,
            fused: true,
            smooth_alpha: None,
            last_layer: None,
        }
    }

    /// int4 with the whole tied head/embedding at 4 bits + offsets (the embedding read by
    /// `GatherBlockQuantized`): 17.2% of fp32, perplexity +6.4%, but teacher-forced top-1 83.9%;
    /// the default's split head is 18.0%, +1.8%, 96.4% (crate README, "Quantization").
    #[must_use]
    pub fn int4_small() -> Self {
        let q4 = Format::NBits { bits: 4, block: 32, accuracy_level: 4, offsets: true };
        Self { head: q4, head_tail: None, ..Quantization::Int4.scheme() }
    }
}

/// The tail of the head/embedding table in another format (see [`Scheme::head_tail`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadTail {
    /// The first tail row as a fraction `num / den` of the vocabulary (rows `vocab·num/den..`).
    pub from: (usize, usize),
    pub format: Format,
}

impl HeadTail {
    /// The first tail row for a vocabulary of `vocab` rows.
    #[must_use]
    pub fn first_row(&self, vocab: usize) -> usize {
        vocab * self.from.0 / self.from.1.max(1)
    }
}

/// One group of tensors in the report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GroupReport {
    /// e.g. `model.layers.*.mlp.down_proj`.
    pub tensors: String,
    pub count: usize,
    pub params: u64,
    pub format: String,
    /// Stored bytes of the group (codes + scales + zero points).
    pub bytes: u64,
    /// sqrt(Σ(w - ŵ)² / Σw²) over the group: the weight rounding error alone.
    pub relative_rmse: f64,
    pub reason: String,
}

/// What the export did to the weights, for `tinyforge.json` (`serde_json::to_value(&report)`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct QuantReport {
    pub quantization: String,
    pub groups: Vec<GroupReport>,
    /// Kept in f32 whatever the choice: norms' weights, RoPE tables, the KV cache.
    pub kept_f32: Vec<String>,
    /// SmoothQuant's parameters and calibration, when the scheme smoothed (`smooth.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoothing: Option<crate::smooth::SmoothReport>,
}

/// Accumulates [`GroupReport`]s while the graph is built.
#[derive(Debug)]
pub(crate) struct ReportBuilder {
    scheme: Scheme,
    groups: Vec<(GroupReport, f64, f64)>,
}

impl ReportBuilder {
    pub(crate) fn new(scheme: Scheme) -> Self {
        Self { scheme, groups: Vec::new() }
    }

    /// Records weight `name` (`model.layers.3.mlp.down_proj`) stored as `format`.
    pub(crate) fn add(&mut self, name: &str, format: Format, params: usize, stored: crate::quantize::Stored) {
        // A layer stored unlike its siblings (`Scheme::last_layer`) is reported under its own name.
        let pattern = group_of(name);
        let described = format.describe();
        let group =
            if self.groups.iter().any(|(g, ..)| g.tensors == pattern && g.format != described) { name.to_string() } else { pattern };
        let idx = self.groups.iter().position(|(g, ..)| g.tensors == group).unwrap_or_else(|| {
            let reason = reason(&self.scheme, &group, format);
            let empty =
                GroupReport { tensors: group, count: 0, params: 0, format: format.describe(), bytes: 0, relative_rmse: 0.0, reason };
            self.groups.push((empty, 0.0, 0.0));
            self.groups.len() - 1
        });
        let (g, err2, norm2) = &mut self.groups[idx];
        g.count += 1;
        g.params += params as u64;
        g.bytes += stored.bytes;
        *err2 += stored.err2;
        *norm2 += stored.norm2;
        g.relative_rmse = if *norm2 > 0.0 { (*err2 / *norm2).sqrt() } else { 0.0 };
    }

    pub(crate) fn finish(self) -> QuantReport {
        QuantReport {
            quantization: self.scheme.name.to_string(),
            groups: self.groups.into_iter().map(|(g, ..)| g).collect(),
            kept_f32: vec![
                "model.layers.*.input_layernorm / post_attention_layernorm, model.norm (RMSNorm weights)".into(),
                "RoPE cos/sin tables".into(),
                "KV cache, activations between ops".into(),
            ],
            smoothing: None,
        }
    }
}

/// `model.layers.12.self_attn.q_proj` → `model.layers.*.self_attn.q_proj`.
fn group_of(name: &str) -> String {
    name.split('.').map(|part| if part.bytes().all(|b| b.is_ascii_digit()) { "*" } else { part }).collect::<Vec<_>>().join(".")
}

/// Why a group got its format (the measurements are in the crate README, "Quantization").
fn reason(scheme: &Scheme, group: &str, format: Format) -> String {
    let is_head = group.contains("embed_tokens") || group.contains("lm_head");
    if is_head && scheme.head_tail.is_some() {
        return split_head_reason(group, format);
    }
    if scheme.last_layer == Some(format) && !group.contains('*') && group.starts_with("model.layers.") {
        return "the last decoder layer kept in 8-bit blocks (weight-only, no smoothing): its output reaches the head with no later layer to dilute its rounding, and it is the decoder layer int8 hurts most (per-layer KL on SmolLM2, crate README); on SmolLM2 keeping it moved perplexity vs fp32 from +0.91% to +0.74% and teacher-forced top-1 from 93.1% to 93.3%".into();
    }
    match (format, is_head) {
        (Format::F32, _) => "not quantized".into(),
        (Format::Int8Dynamic, _) => "baseline scheme: one activation scale per tensor; an outlier token coarsens every token".into(),
        (Format::Int8PerToken, _) => {
            "one activation scale per token, so an outlier token only coarsens itself; SmoothQuant (see `smoothing`) first moves the outlier channels' range into the weights, which get one scale per output channel; on SmolLM2 perplexity +0.9% vs fp32 where the same matmuls without smoothing give +4.1%, and the integer GEMM (MLAS u8 x s8) prefills about 2.4x faster than 8-bit MatMulNBits blocks".into()
        }
        (Format::NBits { bits: 8, .. }, true) if scheme.linear != scheme.head => {
            "head/embedding kept at 8 bits: its rounding error reaches every logit directly, and as the tied embedding it feeds every layer"
                .into()
        }
        (Format::NBits { bits: 4, .. }, true) => {
            "tied embedding + head at 4 bits to meet the 18% size goal (8-bit: 19.8% of fp32, perplexity +0.3%; 4-bit: +5.9% on SmolLM2): one table, read by MatMulNBits for the logits and by GatherBlockQuantized (+ offsets) for the embedding".into()
        }
        (Format::NBits { .. }, true) => {
            "tied embedding + head: one table, read by MatMulNBits for the logits and by Gather + dequantize for the embedding".into()
        }
        (Format::NBits { bits, block, offsets, .. }, false) => {
            let why = if offsets {
                "; block offsets restore each block's constant part, which a uint8 zero point rounds off (from a Q4_1 source: perplexity +25% without, +0.3% with, on SmolLM2)"
            } else {
                ""
            };
            format!(
                "weight-only {bits}-bit blocks of {block}; activations quantized per block of {block} inside the kernel, so one outlier channel only coarsens its own block{why}"
            )
        }
    }
}

/// Why the head/embedding table is split and how (int4's default; SmolLM2 measurements with the
/// Python harness, onnxruntime 1.30, fp32 file 538.3 MB, size goal 18%).
fn split_head_reason(group: &str, format: Format) -> String {
    let what = format.describe();
    if group.ends_with("frequent_rows") {
        format!(
            "first quarter of the vocabulary (BPE ids follow merge order: ids < 12288 are 89.7% of the held-out tokens) kept as {what}, exact for a GGUF Q8_0 table; one table for the logits (MatMulNBits) and the embedding (Gather + dequantize)"
        )
    } else {
        format!(
            "the rare three quarters of the vocabulary as {what} (embedding through GatherBlockQuantized) to meet the 18% size goal. Measured on SmolLM2 (size of fp32 / perplexity vs fp32 / teacher-forced top-1 / free-running greedy): whole table 8-bit 19.8% / +0.29% / 97.3% / 34.7%; whole table 4-bit blocks 32 + offsets 17.2% / +6.4% / 83.9% / 14.2%; 4-bit blocks 16 17.8% / +6.8% / 88.6% / 22.8%; this split 18.0% / +1.8% / 96.4% / 42.2%; 8-bit up to 20480 with a 4-bit blocks-32 + offsets tail 18.0% / +1.2% / 95.5% / 34.5%"
        )
    }
}
