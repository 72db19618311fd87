//! The served graph computes logits only where the engine reads them.
//!
//! The export's `logits` are `[batch, seq, vocab]`: every prompt position, which the export's
//! quality scorer needs. The engine reads one row per sequence (the last prompt token, or the
//! decoded token), so at load it rewrites the graph in memory: the final norm's output
//! `[b, s, h]` is flattened to `[b·s, h]` and `Gather`ed at a new input `logits_rows` `[b, 1]`
//! (flat row indices) before the head, so `logits` becomes `[b, 1, vocab]`. For SmolLM2-135M the
//! head is 28 M of the 134 M weights (~21% of a prefill's matmul work) and its output was
//! 196 KB per prompt token in ORT's arena (100 MB for a 506-token prompt). The file on disk
//! is untouched; the weights stay in its external-data file (ORT is told where it lives).
use std::path::Path;

use prost::Message;
use tinyforge_onnx::proto::{Dimension, DimensionValue, NodeProto};
use tinyforge_onnx::{DataType, Dim, tensor_i64, value_info};

use crate::error::InferError;

/// The added input: `[batch, 1]` int64 rows of the flattened `[batch·seq, hidden]` activations.
pub(crate) const LOGITS_ROWS: &str = "logits_rows";
/// The final norm's weight, whose node's first output feeds the head in both export layouts
/// (`SkipSimplifiedLayerNormalization` fused, `Mul` in the plain-op graph).
const FINAL_NORM: &str = "model.norm.weight";

/// The rewritten model bytes, or `None` when the graph is not the shape this rewrite knows
/// (then the original file is loaded as it is and every position's logits come back).
pub(crate) fn rewrite(path: &Path) -> Result<Option<Vec<u8>>, InferError> {
    let bytes = std::fs::read(path).map_err(|e| InferError::ModelLoad { path: path.to_path_buf(), reason: e.to_string() })?;
    let Ok(mut model) = tinyforge_onnx::decode(&bytes) else { return Ok(None) };
    let Some(g) = model.graph.as_mut() else { return Ok(None) };
    if g.input.iter().any(|i| i.name == LOGITS_ROWS) {
        return Ok(None);
    }
    let Some(norm_at) = g.node.iter().position(|n| n.input.iter().any(|i| i == FINAL_NORM)) else { return Ok(None) };
    let Some(hidden) = g.initializer.iter().find(|t| t.name == FINAL_NORM).and_then(|t| t.dims.first().copied()) else {
        return Ok(None);
    };
    let xn = g.node[norm_at].output[0].clone();
    // Everything reading the final norm's output is the head (one matmul, or several over
    // vocabulary ranges joined into `logits`): all of it moves to the gathered rows.
    if g.output.iter().any(|o| o.name == xn) || !g.output.iter().any(|o| o.name == "logits") {
        return Ok(None);
    }
    let (flat, shape, last) = (format!("{xn}_flat"), format!("{xn}_flat_shape"), format!("{xn}_last"));
    for n in &mut g.node {
        for i in &mut n.input {
            if *i == xn {
                i.clone_from(&last);
            }
        }
    }
    let node = |op: &str, inputs: &[&str], output: &str, attribute| NodeProto {
        input: inputs.iter().map(|s| (*s).to_string()).collect(),
        output: vec![output.to_string()],
        name: format!("tinyforge_{output}"),
        op_type: op.into(),
        attribute,
        ..NodeProto::default()
    };
    let reshape = node("Reshape", &[&xn, &shape], &flat, vec![]);
    let gather = node("Gather", &[&flat, LOGITS_ROWS], &last, vec![tinyforge_onnx::Attr::int("axis", 0)]);
    // Right after the norm, so the node list stays in topological order.
    g.node.insert(norm_at + 1, gather);
    g.node.insert(norm_at + 1, reshape);
    g.initializer.push(tensor_i64(&shape, &[2], &[-1, hidden]));
    g.input.push(value_info(LOGITS_ROWS, DataType::Int64, &[Dim::sym("batch_size"), Dim::Fixed(1)]));
    if let Some(dims) = g
        .output
        .iter_mut()
        .find(|o| o.name == "logits")
        .and_then(|o| o.r#type.as_mut()?.tensor_type.as_mut()?.shape.as_mut())
        .filter(|s| s.dim.len() == 3)
    {
        dims.dim[1] = Dimension { value: Some(DimensionValue::DimValue(1)), denotation: String::new() };
    }
    Ok(Some(model.encode_to_vec()))
}

/// `logits_rows` for `rows` sequences padded to `seq` tokens, each read at its `last` token
/// (index within its row).
pub(crate) fn rows_at(seq: usize, last: impl IntoIterator<Item = usize>) -> Vec<i64> {
    last.into_iter().enumerate().map(|(r, l)| (r * seq + l) as i64).collect()
}
