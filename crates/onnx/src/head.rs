//! The output head (and, when tied, the token embedding): one table, or split by vocabulary
//! rows into two tables of different precision.
//!
//! Why split: int4's size goal (18% of fp32) leaves SmolLM2's tied 49152×576 table about 25 MB
//! once the 4-bit decoder layers are in. 8 bits for every row (Q8_0-exact) is 32.7 MB; 4 bits
//! for every row fits but flips tokens (teacher-forced top-1 vs fp32 ~84% with 4-bit blocks of
//! 32). A BPE vocabulary's ids follow merge order, so the low ids are the frequent tokens: the
//! first `rows` rows stay 8-bit and only the rare tail goes 4-bit. The logits are the two
//! products concatenated (ids keep their order); the embedding gathers from both tables with
//! clamped ids and picks by `id < rows`.
use crate::graph::Graph;
use crate::quantize::WeightRef;

/// A head table: whole, or the first `rows` vocabulary rows and the rest.
#[derive(Clone, Debug)]
pub(crate) enum Head {
    One(WeightRef),
    Split { rows: usize, first: WeightRef, rest: WeightRef },
}

impl Head {
    /// Logits `x [.., hidden] → [.., vocab]`, written to `out` if given.
    pub(crate) fn matmul(&self, g: &mut Graph, x: &str, out: Option<&str>) -> String {
        match self {
            Self::One(w) => w.matmul(g, x, out),
            Self::Split { first, rest, .. } => {
                let (a, b) = (first.matmul(g, x, None), rest.matmul(g, x, None));
                let y = out.map_or_else(|| g.fresh("logits"), str::to_string);
                g.op_to("Concat", &[&a, &b], &y, vec![crate::tensor::Attr::int("axis", -1)]);
                y
            }
        }
    }

    /// The embedding rows of `ids` (`[batch, seq]` int64) as `[batch, seq, hidden]` f32.
    pub(crate) fn gather_rows(&self, g: &mut Graph, ids: &str) -> String {
        match self {
            Self::One(w) => w.gather_rows(g, ids, 2),
            Self::Split { rows, first, rest } => {
                let n = *rows as i64;
                let (last_first, zero, split) = (g.const_i64(&[], &[n - 1]), g.const_i64(&[], &[0]), g.const_i64(&[], &[n]));
                // Each table is read at a clamped id; `Where` keeps the row from the right one.
                let ids_first = g.op("Min", &[ids, &last_first], vec![]);
                let shifted = g.op("Sub", &[ids, &split], vec![]);
                let ids_rest = g.op("Max", &[&shifted, &zero], vec![]);
                let a = first.gather_rows(g, &ids_first, 2);
                let b = rest.gather_rows(g, &ids_rest, 2);
                let in_first = g.op("Less", &[ids, &split], vec![]);
                let axis = g.const_i64(&[1], &[-1]);
                let in_first = g.op("Unsqueeze", &[&in_first, &axis], vec![]);
                g.op("Where", &[&in_first, &a, &b], vec![])
            }
        }
    }
}
