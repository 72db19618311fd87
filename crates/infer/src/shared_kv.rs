//! The KV cache of every slot in one buffer per layer and kind, `[slots, kv_heads, context_len,
//! head_dim]`, bound through an `IoBinding` as both `past_key_values.*` and `present.*` (graphs
//! with `GroupQueryAttention`, which writes the new keys in place), so that a decode step is ONE
//! forward over all slot rows instead of one batch-1 forward per slot.
//!
//! A step feeds every row one token; rows not in the step get a dummy token whose mask covers
//! `len + 1` positions, so (per the graph contract, seqlens_k = Σmask − 1) the kernel writes
//! their dummy key at position `len`, past what they hold, and their length stays `len`: their
//! next real token or prefill chunk overwrites that position before it is ever attended to. A
//! full row (`len == context_len`) can take no more tokens, so its dummy goes to the last
//! position of a cache that is dead until `release`.
//!
//! Prefill runs batch 1 on a staging buffer `[1, kv_heads, context_len, head_dim]`: the row's
//! held positions are copied in, the chunk runs, the new positions are copied back (ort 2.0.0-rc.13
//! binds outputs only as owned values, so a row of the shared buffer cannot be bound as a view).
use ort::memory::MemoryInfo;
use ort::session::{IoBinding, Session};
use ort::value::{DynValue, Tensor};

use crate::decoder::KvShape;
use crate::error::InferError;

const KINDS: [&str; 2] = ["key", "value"];

fn run_err(e: &ort::Error) -> InferError {
    InferError::Run { reason: e.message().to_string() }
}

/// One binding with one zeroed `[rows, kv, ctx, hd]` buffer per layer and kind, and the buffers'
/// data pointers (the binding owns the tensors; their heap data never moves).
struct Bound {
    binding: IoBinding,
    ptrs: Vec<*mut f32>,
}

// SAFETY: the pointers only address buffers owned by `binding`, which moves with them; they are
// dereferenced only through `&SharedKv` between runs, never shared across threads.
unsafe impl Send for Bound {}

impl Bound {
    fn new(session: &Session, shape: KvShape, rows: usize, ctx: usize) -> Result<Self, InferError> {
        let KvShape { layers, kv_heads, head_dim, .. } = shape;
        let mut binding = session.create_binding().map_err(|e| run_err(&e))?;
        let mut ptrs = Vec::with_capacity(layers * 2);
        for i in 0..layers {
            for kind in KINDS {
                // calloc'd: untouched positions cost no memory until written.
                let mut t = Tensor::<f32>::from_array(([rows, kv_heads, ctx, head_dim], vec![0.0; rows * kv_heads * ctx * head_dim]))
                    .map_err(|e| run_err(&e))?;
                ptrs.push(t.extract_tensor_mut().1.as_mut_ptr());
                binding.bind_input(format!("past_key_values.{i}.{kind}"), &t).map_err(|e| run_err(&e))?;
                binding.bind_output(format!("present.{i}.{kind}"), t).map_err(|e| run_err(&e))?;
            }
        }
        Ok(Self { binding, ptrs })
    }

    /// Binds ids/mask/positions, runs, and returns the logits value.
    fn run(
        &mut self,
        session: &mut Session,
        ids: &Tensor<i64>,
        mask: &Tensor<i64>,
        pos: Option<&Tensor<i64>>,
    ) -> Result<DynValue, InferError> {
        self.binding.bind_input("input_ids", ids).map_err(|e| run_err(&e))?;
        self.binding.bind_input("attention_mask", mask).map_err(|e| run_err(&e))?;
        if let Some(p) = pos {
            self.binding.bind_input("position_ids", p).map_err(|e| run_err(&e))?;
        }
        // Rebound every run: a bound logits value keeps its first shape and a later run with
        // another sequence length would be rejected.
        self.binding.bind_output_to_device("logits", &MemoryInfo::default()).map_err(|e| run_err(&e))?;
        let mut out = session.run_binding(&self.binding).map_err(|e| run_err(&e))?;
        out.remove("logits").ok_or_else(|| InferError::Run { reason: "the model returned no `logits`".into() })
    }
}

pub(crate) struct SharedKv {
    shape: KvShape,
    ctx: usize,
    all: Bound,
    staging: Bound,
    lens: Vec<usize>,
}

impl SharedKv {
    pub(crate) fn new(session: &Session, shape: KvShape, slots: usize, ctx: usize) -> Result<Self, InferError> {
        Ok(Self {
            shape,
            ctx,
            all: Bound::new(session, shape, slots, ctx)?,
            staging: Bound::new(session, shape, 1, ctx)?,
            lens: vec![0; slots],
        })
    }

    pub(crate) fn len(&self, slot: usize) -> usize {
        self.lens[slot]
    }

    pub(crate) fn release(&mut self, slot: usize) {
        // The row is kept: a length of 0 makes the kernel ignore what it holds.
        self.lens[slot] = 0;
    }

    /// Copies positions `from..to` of `slot`'s row between the shared buffers and staging.
    fn copy_row(&self, slot: usize, from: usize, to: usize, into_staging: bool) {
        let KvShape { kv_heads, head_dim, .. } = self.shape;
        let row = kv_heads * self.ctx * head_dim;
        for (&shared, &staged) in self.all.ptrs.iter().zip(&self.staging.ptrs) {
            for h in 0..kv_heads {
                let off = h * self.ctx * head_dim + from * head_dim;
                let n = (to - from) * head_dim;
                // SAFETY: both buffers are owned by their bindings for as long as `self` lives,
                // hold `rows * row` f32s, `off + n <= row`, they are distinct allocations, and
                // no ORT run is in progress (we hold `&self`, runs need `&mut self`).
                unsafe {
                    let (a, b) = (shared.add(slot * row + off), staged.add(off));
                    if into_staging { std::ptr::copy_nonoverlapping(a, b, n) } else { std::ptr::copy_nonoverlapping(b, a, n) }
                }
            }
        }
    }

    /// A batch-1 forward of `tokens` appended to `slot`; returns logits `[1, seq, vocab]`.
    pub(crate) fn prefill(&mut self, session: &mut Session, has_pos: bool, slot: usize, tokens: &[u32]) -> Result<DynValue, InferError> {
        let len = self.lens[slot];
        let total = len + tokens.len();
        self.copy_row(slot, 0, len, true);
        let seq = tokens.len();
        let ids = Tensor::from_array(([1, seq], tokens.iter().map(|&t| i64::from(t)).collect::<Vec<_>>())).map_err(|e| run_err(&e))?;
        let mask = Tensor::from_array(([1, total], vec![1_i64; total])).map_err(|e| run_err(&e))?;
        let pos = Tensor::from_array(([1, seq], (len as i64..total as i64).collect::<Vec<_>>())).map_err(|e| run_err(&e))?;
        let logits = self.staging.run(session, &ids, &mask, has_pos.then_some(&pos))?;
        self.copy_row(slot, len, total, false);
        self.lens[slot] = total;
        Ok(logits)
    }

    /// One forward over all rows; `batch` slots (each distinct, prefilled, below the context
    /// length) get their token, the others a dummy. Returns logits `[slots, 1, vocab]`.
    pub(crate) fn step(&mut self, session: &mut Session, has_pos: bool, batch: &[(usize, u32)]) -> Result<DynValue, InferError> {
        let rows = self.lens.len();
        let mut ids = vec![0_i64; rows];
        // Where each row's token lands: its length, or the last position of a full row.
        let at: Vec<usize> = self.lens.iter().map(|&l| l.min(self.ctx - 1)).collect();
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
        let logits = self.all.run(session, &ids, &mask, has_pos.then_some(&pos))?;
        for &(slot, _) in batch {
            self.lens[slot] += 1;
        }
        Ok(logits)
    }
}
