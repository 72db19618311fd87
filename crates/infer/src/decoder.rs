//! The exported decoder (tinyforge-onnx `export_llama`) on ONNX Runtime as a
//! `tinyforge_generate::Decoder`, so the one generation loop drives it.
//!
//! Two ways to keep the KV cache, picked from the graph at load:
//! - `Shared` (graphs with `GroupQueryAttention`): one preallocated buffer per layer and kind for
//!   all slots, `[slots, kv_heads, context_len, head_dim]`, bound as both `past_key_values.*`
//!   and `present.*` (see `shared_kv`). The kernel writes the new keys in place, so a step
//!   copies nothing, and `step` is ONE forward over every slot row (idle rows get a dummy token
//!   that cannot touch what they hold), so concurrent requests share the weight reads.
//! - `Chained` (the plain-op graph, which concatenates): each run's `present.*` values are fed
//!   back as the next `past_key_values.*` as they are; `step` runs the slots one forward each.
use std::path::{Path, PathBuf};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor};
use tinyforge_generate::{CodedError, Decoder, Slot};

use crate::error::InferError;
use crate::runtime::active_runtime;
use crate::shared_kv::SharedKv;

impl CodedError for InferError {
    fn code(&self) -> &'static str {
        InferError::code(self)
    }
}

/// The cache geometry of an exported decoder (from its config.json).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvShape {
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvMode {
    /// `Shared` when the graph has `GroupQueryAttention`, `Chained` otherwise.
    #[default]
    Auto,
    Shared,
    Chained,
}

#[derive(Clone, Debug)]
pub struct DecoderOptions {
    /// Sequences live at once (at least 1).
    pub slots: usize,
    /// Positions per slot (prompt + generated); each shared slot preallocates this many.
    pub context_len: usize,
    /// ORT intra-op threads; `None` = ORT's default (one per core).
    pub threads: Option<usize>,
    /// How ORT's pool threads wait for work (`Spinning`).
    pub spinning: Spinning,
    pub kv: KvMode,
    /// Run the graph as exported, with logits for every position, instead of rewriting it to
    /// compute only the rows read (`last_logits`); for A/B measurements.
    pub all_logits: bool,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        Self { slots: 1, context_len: 2048, threads: None, spinning: Spinning::Off, kv: KvMode::Auto, all_logits: false }
    }
}

/// How ORT's intra-op pool threads wait between ops. Spinning saves a wake-up per op: the int8
/// graph runs about 1,000 small ops per decode step, and on the 2-core Xeon a step took 1.6-1.9x
/// less time with spinning (quiet machine; on a busy one spinning steals the cores others need).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spinning {
    /// Threads sleep whenever they have no work (`session.intra_op.allow_spinning` = 0).
    Off,
    /// Threads spin between the ops of a run and stop when it returns
    /// (`session.force_spinning_stop`): nothing spins between calls. About 94% of `Always`'s
    /// decode speed in a Python loop (109 vs 116 tok/s).
    DuringRuns,
    /// Threads keep spinning after a run too (ORT's default), for back-to-back runs (`serve`).
    Always,
}

struct SlotCache {
    past: Vec<DynValue>,
    len: usize,
}

pub struct OrtDecoder {
    session: Session,
    path: PathBuf,
    shape: KvShape,
    mode: KvMode,
    context_len: usize,
    has_position_ids: bool,
    caches: Vec<Option<SlotCache>>,
    shared: Option<SharedKv>,
    /// The graph takes `logits_rows` and returns only those rows (see `last_logits`).
    rows_input: bool,
}

/// ORT session option: run u8×s8 integer matmuls (the int8 export's `MatMulInteger`) as exact
/// u8×u8. On x86 CPUs without VNNI (AVX2, plain AVX-512) the fast u8×s8 kernel sums pairs of
/// products in saturating int16 (`vpmaddubsw`), so it is needed there; ORT also applies it on
/// VNNI CPUs, where u8×s8 is exact and u8×u8 measured 4x slower (576 vs 148 GOPS at 32 rows on
/// the Xeon), so it is set only where [`needs_exact_int8_matmul`].
pub const X64_QUANT_PRECISION: &str = "session.x64quantprecision";

/// True on x86-64 CPUs without AVX512-VNNI or AVX-VNNI: ORT's u8×s8 GEMM could saturate.
#[must_use]
pub fn needs_exact_int8_matmul() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !(std::arch::is_x86_feature_detected!("avx512vnni") || std::arch::is_x86_feature_detected!("avxvnni"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Loads a decoder graph into a CPU session with `options` (graph optimisation level 3); from
/// `bytes` (a rewrite of `path`, whose external data stays beside `path`) when given.
pub(crate) fn build_session(path: &Path, bytes: Option<&[u8]>, threads: Option<usize>, spinning: Spinning) -> Result<Session, InferError> {
    active_runtime()?;
    if !path.is_file() {
        return Err(InferError::ModelNotFound { path: path.to_path_buf() });
    }
    let load_err = |e: ort::Error| InferError::ModelLoad { path: path.to_path_buf(), reason: e.message().to_string() };
    let mut b = Session::builder()
        .map_err(load_err)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| load_err(e.into()))?
        .with_intra_op_spinning(spinning != Spinning::Off)
        .map_err(|e| load_err(e.into()))?;
    if spinning == Spinning::DuringRuns {
        b = b.with_config_entry("session.force_spinning_stop", "1").map_err(|e| load_err(e.into()))?;
    }
    if needs_exact_int8_matmul() {
        b = b.with_config_entry(X64_QUANT_PRECISION, "1").map_err(|e| load_err(e.into()))?;
    }
    if let Some(n) = threads {
        if n == 0 {
            return Err(InferError::InvalidOption { option: "threads".into(), reason: "must be at least 1".into() });
        }
        b = b.with_intra_threads(n).map_err(|e| load_err(e.into()))?;
    }
    match bytes {
        Some(bytes) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            b = b
                .with_config_entry("session.model_external_initializers_file_folder_path", dir.to_string_lossy())
                .map_err(|e| load_err(e.into()))?;
            b.commit_from_memory(bytes).map_err(load_err)
        }
        None => b.commit_from_file(path).map_err(load_err),
    }
}

fn run_err(e: &ort::Error) -> InferError {
    InferError::Run { reason: e.message().to_string() }
}

fn past_name(layer: usize, kind: &str) -> String {
    format!("past_key_values.{layer}.{kind}")
}

fn present_name(layer: usize, kind: &str) -> String {
    format!("present.{layer}.{kind}")
}

const KINDS: [&str; 2] = ["key", "value"];

impl OrtDecoder {
    pub fn load(path: &Path, shape: KvShape, options: &DecoderOptions) -> Result<Self, InferError> {
        if options.slots == 0 {
            return Err(InferError::InvalidOption { option: "slots".into(), reason: "must be at least 1".into() });
        }
        if options.context_len < 2 {
            return Err(InferError::InvalidOption { option: "contextLen".into(), reason: "must be at least 2".into() });
        }
        let rewritten = if options.all_logits { None } else { crate::last_logits::rewrite(path)? };
        let session = build_session(path, rewritten.as_deref(), options.threads, options.spinning)?;
        let rows_input = rewritten.is_some();
        let names: Vec<String> = session.inputs().iter().map(|o| o.name().to_owned()).collect();
        for need in ["input_ids", "attention_mask"]
            .into_iter()
            .map(String::from)
            .chain((0..shape.layers).flat_map(|i| KINDS.map(|k| past_name(i, k))))
        {
            if !names.contains(&need) {
                return Err(InferError::ModelLoad {
                    path: path.to_path_buf(),
                    reason: format!(
                        "not a decoder with KV cache for {} layers: no input `{need}` (inputs: {})",
                        shape.layers,
                        names.join(", ")
                    ),
                });
            }
        }
        let has_position_ids = names.iter().any(|n| n == "position_ids");
        let mode = match options.kv {
            KvMode::Auto => {
                if crate::folder::model_mentions(path, "GroupQueryAttention")? {
                    KvMode::Shared
                } else {
                    KvMode::Chained
                }
            }
            m => m,
        };
        let shared = if mode == KvMode::Shared { Some(SharedKv::new(shape, options.slots, options.context_len, rows_input)) } else { None };
        // What load left resident and no request needs: see `memory`.
        drop(rewritten);
        crate::memory::release_file_pages(path.parent().unwrap_or(Path::new(".")));
        crate::memory::trim_heap();
        Ok(Self {
            shared,
            session,
            path: path.to_path_buf(),
            shape,
            mode,
            context_len: options.context_len,
            has_position_ids,
            caches: (0..options.slots).map(|_| None).collect(),
            rows_input,
        })
    }

    /// Nothing is running: returns the memory of the free cache rows and glibc's free heap to
    /// the system, so a burst of requests does not keep its peak resident while the service
    /// idles. The next request refaults the rows it writes (zero pages, about a millisecond for
    /// a few hundred positions).
    pub fn idle(&mut self) {
        if let Some(sh) = self.shared.as_mut() {
            sh.forget_free_rows();
        }
        crate::memory::trim_heap();
    }

    /// The cache strategy in use (`Shared` or `Chained`).
    pub fn kv_mode(&self) -> KvMode {
        self.mode
    }

    /// Whether the graph was rewritten to compute logits only for the rows read (`last_logits`).
    pub fn logits_rows_only(&self) -> bool {
        self.rows_input
    }

    pub fn model_path(&self) -> &Path {
        &self.path
    }

    /// Positions `slot` holds, or `None` when it is empty.
    pub fn slot_len(&self, slot: Slot) -> Option<usize> {
        if slot >= self.caches.len() {
            return None;
        }
        if let Some(sh) = &self.shared {
            return Some(sh.len(slot)).filter(|&l| l > 0);
        }
        self.caches[slot].as_ref().map(|c| c.len)
    }

    fn new_cache(&self) -> Result<SlotCache, InferError> {
        let KvShape { layers, kv_heads, head_dim, .. } = self.shape;
        let mut past = Vec::with_capacity(layers * 2);
        for _ in 0..layers * 2 {
            past.push(Tensor::<f32>::from_array(([1, kv_heads, 0, head_dim], Vec::<f32>::new())).map_err(|e| run_err(&e))?.into_dyn());
        }
        Ok(SlotCache { past, len: 0 })
    }

    /// One forward of `tokens` on `slot`; returns the logits of the last position.
    fn forward(&mut self, slot: Slot, tokens: &[u32]) -> Result<Vec<f32>, InferError> {
        let n = self.caches.len();
        if slot >= n {
            return Err(InferError::InvalidInput { name: "slot".into(), reason: format!("{slot} out of range (0..{n})") });
        }
        if tokens.is_empty() {
            return Err(InferError::InvalidInput { name: "tokens".into(), reason: "at least one token is needed".into() });
        }
        if self.shared.is_none() && self.caches[slot].is_none() {
            self.caches[slot] = Some(self.new_cache()?);
        }
        let len = self.slot_len(slot).unwrap_or(0);
        let total = len + tokens.len();
        if total > self.context_len {
            return Err(InferError::InvalidInput {
                name: "tokens".into(),
                reason: format!("slot {slot} would hold {total} positions, more than the context length {}", self.context_len),
            });
        }
        let vocab = self.shape.vocab_size;
        if let Some(sh) = self.shared.as_mut() {
            let out = sh.prefill(&mut self.session, self.has_position_ids, slot, tokens)?;
            return last_row(&out, vocab);
        }
        let seq = tokens.len();
        let ids = Tensor::from_array(([1, seq], tokens.iter().map(|&t| i64::from(t)).collect::<Vec<_>>())).map_err(|e| run_err(&e))?;
        let mask = Tensor::from_array(([1, total], vec![1_i64; total])).map_err(|e| run_err(&e))?;
        let pos = Tensor::from_array(([1, seq], (len as i64..total as i64).collect::<Vec<_>>())).map_err(|e| run_err(&e))?;
        let layers = self.shape.layers;
        let cache = self.caches[slot].as_mut().expect("cache created above");
        let mut inputs: Vec<(String, SessionInputValue<'_>)> = Vec::with_capacity(3 + cache.past.len());
        inputs.push(("input_ids".into(), ids.into()));
        inputs.push(("attention_mask".into(), mask.into()));
        if self.has_position_ids {
            inputs.push(("position_ids".into(), pos.into()));
        }
        if self.rows_input {
            let rows = Tensor::from_array(([1, 1], vec![seq as i64 - 1])).map_err(|e| run_err(&e))?;
            inputs.push((crate::last_logits::LOGITS_ROWS.into(), rows.into()));
        }
        for (j, v) in cache.past.iter().enumerate() {
            inputs.push((past_name(j / 2, KINDS[j % 2]), v.into()));
        }
        let mut out = self.session.run(inputs).map_err(|e| run_err(&e))?;
        let logits = last_row(&out["logits"], vocab)?;
        let mut next = Vec::with_capacity(layers * 2);
        for i in 0..layers {
            for kind in KINDS {
                let name = present_name(i, kind);
                next.push(out.remove(&name).ok_or_else(|| InferError::Run { reason: format!("the model returned no `{name}`") })?);
            }
        }
        drop(out);
        cache.past = next;
        cache.len = total;
        Ok(logits)
    }

    /// Appends each row's tokens to its slot and returns each row's last logits, row-major
    /// `[rows.len() x vocab]`: in ONE forward when the cache is shared and every slot is empty
    /// (the first chunk of new requests, the case GroupQueryAttention batches), else one
    /// forward per row.
    pub fn prefill_rows(&mut self, rows: &[(Slot, &[u32])]) -> Result<Vec<f32>, InferError> {
        let n = self.caches.len();
        let mut seen = vec![false; n];
        let mut all_empty = true;
        for &(slot, toks) in rows {
            if slot >= n || std::mem::replace(&mut seen[slot], true) {
                return Err(InferError::InvalidInput {
                    name: "slot".into(),
                    reason: format!("prefill: slot {slot} out of range (0..{n}) or listed twice"),
                });
            }
            if toks.is_empty() || toks.len() > self.context_len {
                return Err(InferError::InvalidInput {
                    name: "tokens".into(),
                    reason: format!("prefill: slot {slot} gets {} tokens (1 to the context length {})", toks.len(), self.context_len),
                });
            }
            all_empty &= self.slot_len(slot).is_none();
        }
        match self.shared.as_mut() {
            Some(sh) if all_empty && rows.len() > 1 => sh.prefill_first(&mut self.session, self.has_position_ids, rows),
            _ => {
                let mut out = Vec::with_capacity(rows.len() * self.shape.vocab_size);
                for &(slot, toks) in rows {
                    out.extend(self.forward(slot, toks)?);
                }
                Ok(out)
            }
        }
    }

    /// One forward over all shared rows for `batch`; the logits rows of `batch`, in order.
    fn step_shared(&mut self, batch: &[(Slot, u32)]) -> Result<Vec<f32>, InferError> {
        let mut seen = vec![false; self.caches.len()];
        for &(slot, _) in batch {
            let len = self.slot_len(slot).unwrap_or(0);
            if len == 0 {
                return Err(InferError::InvalidInput { name: "slot".into(), reason: format!("step: slot {slot} was not prefilled") });
            }
            if len >= self.context_len {
                return Err(InferError::InvalidInput {
                    name: "tokens".into(),
                    reason: format!("slot {slot} would hold {} positions, more than the context length {}", len + 1, self.context_len),
                });
            }
            if std::mem::replace(&mut seen[slot], true) {
                return Err(InferError::InvalidInput { name: "slot".into(), reason: format!("step: slot {slot} listed twice") });
            }
        }
        let sh = self.shared.as_mut().expect("shared mode");
        sh.step(&mut self.session, self.has_position_ids, batch)
    }
}

/// The last `[vocab]` row of logits `[1, seq, vocab]` (`[1, 1, vocab]` from a rewritten graph).
fn last_row(v: &DynValue, vocab: usize) -> Result<Vec<f32>, InferError> {
    let (shape, data) = v.try_extract_tensor::<f32>().map_err(|e| run_err(&e))?;
    if shape.last().copied() != Some(vocab as i64) || data.len() < vocab {
        return Err(InferError::Run { reason: format!("logits have shape {:?}, expected [1, seq, {vocab}]", &shape[..]) });
    }
    Ok(data[data.len() - vocab..].to_vec())
}

impl Decoder for OrtDecoder {
    type Error = InferError;

    fn context_len(&self) -> usize {
        self.context_len
    }

    fn vocab_size(&self) -> usize {
        self.shape.vocab_size
    }

    fn slots(&self) -> usize {
        self.caches.len()
    }

    fn prefill(&mut self, slot: Slot, tokens: &[u32]) -> Result<Vec<f32>, InferError> {
        self.forward(slot, tokens)
    }

    fn step(&mut self, batch: &[(Slot, u32)]) -> Result<Vec<f32>, InferError> {
        if self.shared.is_some() {
            return self.step_shared(batch);
        }
        let mut out = Vec::with_capacity(batch.len() * self.shape.vocab_size);
        for &(slot, token) in batch {
            if self.slot_len(slot).unwrap_or(0) == 0 {
                return Err(InferError::InvalidInput { name: "slot".into(), reason: format!("step: slot {slot} was not prefilled") });
            }
            out.extend(self.forward(slot, &[token])?);
        }
        Ok(out)
    }

    fn release(&mut self, slot: Slot) {
        if let Some(sh) = self.shared.as_mut() {
            if slot < self.caches.len() {
                sh.release(slot);
            }
        } else if let Some(c) = self.caches.get_mut(slot) {
            *c = None;
        }
    }
}
