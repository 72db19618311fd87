//! The KV cache of every slot in one buffer per layer and kind, `[slots, kv_heads, context_len,
//! head_dim]`, bound through an `IoBinding` as both `past_key_values.*` and `present.*` (graphs
//! with `GroupQueryAttention`, which writes the new keys in place), so that a decode step is ONE
//! forward over the slot rows instead of one batch-1 forward per slot.
//!
//! The bound tensors are views into our buffers (ORT tensors over our memory, created through
//! the C API because ort 2.0.0-rc.13 binds outputs only as owned values): a step binds the first
//! `k` rows, `k` = 1 + the highest slot in use (the engine fills the lowest free slot first, so
//! one request computes one row), and a prefill binds its slot's row alone, with no copy.
//!
//! Rows below `k` that are not in the step get a dummy token whose mask covers `len + 1`
//! positions, so (per the graph contract, seqlens_k = Σmask − 1) the kernel writes their dummy
//! key at position `len`, past what they hold, and their length stays `len`: their next real
//! token or prefill chunk overwrites that position before it is ever attended to. A full row
//! (`len == context_len`) can take no more tokens, so its dummy goes to its last position, in a
//! cache that is dead until `release`.
use std::ptr::NonNull;

use ort::AsPointer;
use ort::memory::MemoryInfo;
use ort::session::{IoBinding, Session, SessionInputValue};
use ort::sys::ONNXTensorElementDataType;
use ort::value::{DynValue, Tensor};

use crate::decoder::KvShape;
use crate::error::InferError;
use crate::last_logits::{LOGITS_ROWS, rows_at};

const KINDS: [&str; 2] = ["key", "value"];

fn run_err(e: &ort::Error) -> InferError {
    InferError::Run { reason: e.message().to_string() }
}

pub(crate) struct SharedKv {
    // Declared before `bufs`: the bindings hold tensors over the buffers' memory.
    /// `steps[k - 1]` binds rows `0..k`; `rows[s]` binds row `s` alone (for prefill).
    steps: Vec<Option<IoBinding>>,
    rows: Vec<Option<IoBinding>>,
    bufs: Vec<Box<[f32]>>,
    shape: KvShape,
    ctx: usize,
    lens: Vec<usize>,
    /// Rows `0..written` may hold pages written since the last `forget_free_rows`.
    written: usize,
    /// The graph takes `logits_rows` (see `last_logits`): only the rows read are computed.
    rows_input: bool,
}

impl SharedKv {
    pub(crate) fn new(shape: KvShape, slots: usize, ctx: usize, rows_input: bool) -> Self {
        let n = slots * shape.kv_heads * ctx * shape.head_dim;
        Self {
            steps: (0..slots).map(|_| None).collect(),
            rows: (0..slots).map(|_| None).collect(),
            // calloc'd: untouched positions cost no memory until written.
            bufs: (0..shape.layers * 2).map(|_| vec![0.0_f32; n].into_boxed_slice()).collect(),
            shape,
            ctx,
            lens: vec![0; slots],
            written: 0,
            rows_input,
        }
    }

    pub(crate) fn len(&self, slot: usize) -> usize {
        self.lens[slot]
    }

    pub(crate) fn release(&mut self, slot: usize) {
        // The row is kept: a length of 0 makes the kernel ignore what it holds.
        self.lens[slot] = 0;
    }

    /// Drops the resident pages of every free row (length 0): anonymous memory that refaults as
    /// zeros, which a free row may hold (the kernel reads no position of a row beyond its
    /// length). 46 KB per position written for SmolLM2-135M, 6 MB for a 130-token request.
    pub(crate) fn forget_free_rows(&mut self) {
        let per_row = self.shape.kv_heads * self.ctx * self.shape.head_dim;
        for slot in (0..self.written).filter(|&s| self.lens[s] == 0) {
            for buf in &mut self.bufs {
                crate::memory::forget(&mut buf[slot * per_row..(slot + 1) * per_row]);
            }
        }
        // Rows still holding a sequence stay to be forgotten once free.
        self.written = self.lens.iter().rposition(|&l| l > 0).map_or(0, |s| s + 1);
    }

    /// A binding of every past/present pair to rows `first..first + rows` of the buffers.
    fn bind(&mut self, session: &Session, first: usize, rows: usize) -> Result<IoBinding, InferError> {
        let KvShape { layers, kv_heads, head_dim, .. } = self.shape;
        let per_row = kv_heads * self.ctx * head_dim;
        let dims = [rows as i64, kv_heads as i64, self.ctx as i64, head_dim as i64];
        let info = MemoryInfo::default();
        let mut binding = session.create_binding().map_err(|e| run_err(&e))?;
        for i in 0..layers {
            for (k, kind) in KINDS.iter().enumerate() {
                let part = &mut self.bufs[i * 2 + k][first * per_row..(first + rows) * per_row];
                let mut raw = std::ptr::null_mut();
                // SAFETY: `part` is valid for `part.len()` f32s for as long as `self.bufs` lives,
                // which outlives every binding (field order; bindings are only replaced, never
                // leaked elsewhere); the tensor does not own or free the memory; `dims` has 4
                // entries whose product is `part.len()`.
                let view = unsafe {
                    ort::Error::result_from_status((ort::api().CreateTensorWithDataAsOrtValue)(
                        info.ptr(),
                        part.as_mut_ptr().cast(),
                        std::mem::size_of_val(part),
                        dims.as_ptr(),
                        dims.len(),
                        ONNXTensorElementDataType::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                        &raw mut raw,
                    ))
                    .map_err(|e| run_err(&e))?;
                    let ptr = NonNull::new(raw).ok_or_else(|| InferError::Run { reason: "ORT returned no tensor".into() })?;
                    DynValue::from_ptr(ptr, None)
                };
                binding.bind_input(format!("past_key_values.{i}.{kind}"), &view).map_err(|e| run_err(&e))?;
                binding.bind_output(format!("present.{i}.{kind}"), view).map_err(|e| run_err(&e))?;
            }
        }
        Ok(binding)
    }

    fn run(
        binding: &mut IoBinding,
        session: &mut Session,
        ids: &Tensor<i64>,
        mask: &Tensor<i64>,
        pos: Option<&Tensor<i64>>,
        logits_rows: Option<&Tensor<i64>>,
    ) -> Result<DynValue, InferError> {
        binding.bind_input("input_ids", ids).map_err(|e| run_err(&e))?;
        binding.bind_input("attention_mask", mask).map_err(|e| run_err(&e))?;
        if let Some(p) = pos {
            binding.bind_input("position_ids", p).map_err(|e| run_err(&e))?;
        }
        if let Some(r) = logits_rows {
            binding.bind_input(LOGITS_ROWS, r).map_err(|e| run_err(&e))?;
        }
        // Rebound every run: a bound logits value keeps its first shape and a later run with
        // another sequence length would be rejected.
        binding.bind_output_to_device("logits", &MemoryInfo::default()).map_err(|e| run_err(&e))?;
        let mut out = session.run_binding(binding).map_err(|e| run_err(&e))?;
        out.remove("logits").ok_or_else(|| InferError::Run { reason: "the model returned no `logits`".into() })
    }

    /// A batch-1 forward of `tokens` appended to `slot`'s row; returns logits `[1, seq, vocab]`.
    pub(crate) fn prefill(&mut self, session: &mut Session, has_pos: bool, slot: usize, tokens: &[u32]) -> Result<DynValue, InferError> {
        let len = self.lens[slot];
        let total = len + tokens.len();
        let seq = tokens.len();
        let ids = Tensor::from_array(([1, seq], tokens.iter().map(|&t| i64::from(t)).collect::<Vec<_>>())).map_err(|e| run_err(&e))?;
        let mask = Tensor::from_array(([1, total], vec![1_i64; total])).map_err(|e| run_err(&e))?;
        let pos = Tensor::from_array(([1, seq], (len as i64..total as i64).collect::<Vec<_>>())).map_err(|e| run_err(&e))?;
        let last = Tensor::from_array(([1, 1], vec![seq as i64 - 1])).map_err(|e| run_err(&e))?;
        self.written = self.written.max(slot + 1);
        let mut binding = match self.rows[slot].take() {
            Some(b) => b,
            None => self.bind(session, slot, 1)?,
        };
        let out = Self::run(&mut binding, session, &ids, &mask, has_pos.then_some(&pos), self.rows_input.then_some(&last));
        self.rows[slot] = Some(binding);
        let logits = out?;
        self.lens[slot] = total;
        Ok(logits)
    }

    /// One first-prompt forward over several empty slots (`rows`: distinct, empty, each with 1
    /// to `ctx` tokens), right padded to the longest; returns each row's logits at its last
    /// token, row-major `[rows.len() x vocab]`.
    ///
    /// GroupQueryAttention takes a multi-token batch only as a first prompt (ORT rejects
    /// `batch > 1` with `sequence_length > 1` once a past is given), i.e. with every row
    /// starting at position 0, which the shared view over rows `0..k` cannot express for a few
    /// scattered slots. So this runs on an empty past with ORT-allocated `present` outputs
    /// `[b, kv, s, hd]` and copies each row's first `n` positions into its slot (46 KB a token
    /// for SmolLM2-135M, well under 1% of the forward). Every row's mask covers all `s`
    /// positions: a padded row's filler tokens then attend like real ones (finite values; a
    /// row masked shorter than `s` would let them read uninitialised scores), they come after
    /// the real tokens so causality keeps them out of the real rows, and their keys are not
    /// copied.
    pub(crate) fn prefill_first(&mut self, session: &mut Session, has_pos: bool, rows: &[(usize, &[u32])]) -> Result<Vec<f32>, InferError> {
        let KvShape { layers, kv_heads, head_dim, vocab_size: vocab } = self.shape;
        let (b, s) = (rows.len(), rows.iter().map(|r| r.1.len()).max().unwrap_or(0));
        let mut ids = Vec::with_capacity(b * s);
        for &(_, toks) in rows {
            // Filler: the row's last token again, so the activations stay in the real rows'
            // range (the INT8 graph quantizes each activation tensor with one scale).
            let last = toks.last().copied().unwrap_or(0);
            ids.extend(toks.iter().chain(std::iter::repeat_n(&last, s - toks.len())).map(|&t| i64::from(t)));
        }
        let pos: Vec<i64> = (0..b).flat_map(|_| 0..s as i64).collect();
        let ids = Tensor::from_array(([b, s], ids)).map_err(|e| run_err(&e))?;
        let mask = Tensor::from_array(([b, s], vec![1_i64; b * s])).map_err(|e| run_err(&e))?;
        let pos = Tensor::from_array(([b, s], pos)).map_err(|e| run_err(&e))?;
        let empty = Tensor::<f32>::from_array(([b, kv_heads, 0, head_dim], Vec::<f32>::new())).map_err(|e| run_err(&e))?;
        let mut inputs: Vec<(String, SessionInputValue<'_>)> = Vec::with_capacity(3 + layers * 2);
        inputs.push(("input_ids".into(), (&ids).into()));
        inputs.push(("attention_mask".into(), (&mask).into()));
        if has_pos {
            inputs.push(("position_ids".into(), (&pos).into()));
        }
        let last = rows_at(s, rows.iter().map(|r| r.1.len() - 1));
        let last = Tensor::from_array(([b, 1], last)).map_err(|e| run_err(&e))?;
        if self.rows_input {
            inputs.push((LOGITS_ROWS.into(), (&last).into()));
        }
        for i in 0..layers {
            for kind in KINDS {
                inputs.push((format!("past_key_values.{i}.{kind}"), (&empty).into()));
            }
        }
        let out = session.run(inputs).map_err(|e| run_err(&e))?;
        let per_row = kv_heads * self.ctx * head_dim;
        self.written = self.written.max(rows.iter().map(|r| r.0 + 1).max().unwrap_or(0));
        for i in 0..layers {
            for (k, kind) in KINDS.iter().enumerate() {
                let name = format!("present.{i}.{kind}");
                let v = out.get(&name).ok_or_else(|| InferError::Run { reason: format!("the model returned no `{name}`") })?;
                let (_, data) = v.try_extract_tensor::<f32>().map_err(|e| run_err(&e))?;
                if data.len() != b * kv_heads * s * head_dim {
                    return Err(InferError::Run {
                        reason: format!("`{name}` has {} values, expected [{b}, {kv_heads}, {s}, {head_dim}]", data.len()),
                    });
                }
                let buf = &mut self.bufs[i * 2 + k];
                for (r, &(slot, toks)) in rows.iter().enumerate() {
                    let n = toks.len() * head_dim;
                    for h in 0..kv_heads {
                        let src = ((r * kv_heads + h) * s) * head_dim;
                        let dst = slot * per_row + h * self.ctx * head_dim;
                        buf[dst..dst + n].copy_from_slice(&data[src..src + n]);
                    }
                }
            }
        }
        let (shape, data) = out["logits"].try_extract_tensor::<f32>().map_err(|e| run_err(&e))?;
        let per_row = if self.rows_input { 1 } else { s };
        if data.len() != b * per_row * vocab {
            return Err(InferError::Run { reason: format!("logits have shape {:?}, expected [{b}, {per_row}, {vocab}]", &shape[..]) });
        }
        let mut logits = Vec::with_capacity(b * vocab);
        for (r, &(slot, toks)) in rows.iter().enumerate() {
            let at = if self.rows_input { r * vocab } else { (r * s + toks.len() - 1) * vocab };
            logits.extend_from_slice(&data[at..at + vocab]);
            self.lens[slot] = toks.len();
        }
        Ok(logits)
    }

    /// One forward over rows `0..k` (k = 1 + the highest slot in use); `batch` slots (each
    /// distinct, prefilled, below the context length) get their token, the others a dummy.
    /// Returns the logits rows of `batch`, in order.
    pub(crate) fn step(&mut self, session: &mut Session, has_pos: bool, batch: &[(usize, u32)]) -> Result<Vec<f32>, InferError> {
        let vocab = self.shape.vocab_size;
        let in_use = self.lens.iter().rposition(|&l| l > 0).unwrap_or(0);
        let rows = 1 + batch.iter().map(|b| b.0).max().unwrap_or(0).max(in_use);
        let mut ids = vec![0_i64; rows];
        // Where each row's token lands: its length, or the last position of a full row.
        let at: Vec<usize> = self.lens[..rows].iter().map(|&l| l.min(self.ctx - 1)).collect();
        for &(slot, token) in batch {
            ids[slot] = i64::from(token);
        }
        let width = at.iter().max().copied().unwrap_or(0) + 1;
        let mut mask = vec![0_i64; rows * width];
        for (r, &a) in at.iter().enumerate() {
            mask[r * width..=r * width + a].fill(1);
        }
        let pos: Vec<i64> = at.iter().map(|&a| a as i64).collect();
        let ids = Tensor::from_array(([rows, 1], ids)).map_err(|e| run_err(&e))?;
        let mask = Tensor::from_array(([rows, width], mask)).map_err(|e| run_err(&e))?;
        let pos = Tensor::from_array(([rows, 1], pos)).map_err(|e| run_err(&e))?;
        // Only the batch's rows get logits, in batch order (idle rows' dummies are not projected).
        let read = Tensor::from_array(([batch.len(), 1], batch.iter().map(|b| b.0 as i64).collect::<Vec<_>>())).map_err(|e| run_err(&e))?;
        self.written = self.written.max(rows);
        let mut binding = match self.steps[rows - 1].take() {
            Some(b) => b,
            None => self.bind(session, 0, rows)?,
        };
        let out = Self::run(&mut binding, session, &ids, &mask, has_pos.then_some(&pos), self.rows_input.then_some(&read));
        self.steps[rows - 1] = Some(binding);
        let out = out?;
        let (shape, data) = out.try_extract_tensor::<f32>().map_err(|e| run_err(&e))?;
        let want = if self.rows_input { batch.len() } else { rows };
        if shape.last().copied() != Some(vocab as i64) || data.len() != want * vocab {
            return Err(InferError::Run { reason: format!("logits have shape {:?}, expected [{want}, 1, {vocab}]", &shape[..]) });
        }
        let mut logits = Vec::with_capacity(batch.len() * vocab);
        for (r, &(slot, _)) in batch.iter().enumerate() {
            let at = if self.rows_input { r } else { slot };
            logits.extend_from_slice(&data[at * vocab..(at + 1) * vocab]);
            self.lens[slot] += 1;
        }
        Ok(logits)
    }
}
