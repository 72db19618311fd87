//! Saving a model with its large initializers in a side file (`<model file>_data`, the name
//! transformers.js 4.x looks for with `use_external_data_format: true`), using the standard ONNX
//! external-data fields (`data_location = EXTERNAL`, `external_data` = location/offset/length).
//!
//! Why: ONNX Runtime memory-maps an external data file instead of parsing the weights out of
//! the protobuf, so the SmolLM2 int8 export (150 MB) loads in ~245 ms of CPU instead of
//! 385–430 ms (Python onnxruntime 1.30), and `folder::model_mentions` sniffs a ~1 MB `.onnx`.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::OnnxError;
use crate::proto::{GraphProto, ModelProto, StringStringEntryProto, TensorProto};

/// Initializers smaller than this stay inline: shapes, axes and norm weights are read while the
/// graph is resolved, and a 4 KiB-aligned slot for a 16-byte tensor would waste the page.
pub const EXTERNAL_MIN_BYTES: usize = 1024;
/// Tensors of at least 1 MiB start on a 4 KiB page boundary, so a mapping of the tensor alone
/// starts at its first byte (ORT maps from the page below an unaligned offset, which works but
/// pulls in the neighbour's bytes); smaller ones are only 64-byte aligned (a cache line, enough for
/// the SIMD kernels that read them in place) to keep the padding small.
const PAGE_ALIGN_MIN_BYTES: usize = 1 << 20;
const PAGE: u64 = 4096;
const LINE: u64 = 64;
/// `TensorProto.DataLocation.EXTERNAL`.
const EXTERNAL: i32 = 1;

/// The data file that goes with `model` (`onnx/model.onnx` → `onnx/model.onnx_data`).
#[must_use]
pub fn data_path(model: &Path) -> PathBuf {
    let mut name = model.file_name().unwrap_or_default().to_os_string();
    name.push("_data");
    model.with_file_name(name)
}

/// Writes `model` to `path` and every initializer of at least [`EXTERNAL_MIN_BYTES`] to
/// [`data_path`]`(path)`, both atomically (temp + rename; the data file is renamed first, so a
/// new `.onnx` never points into an old data file). A model with no large initializer gets no
/// data file, and a stale one from an earlier export is removed.
pub(crate) fn save_split(model: &ModelProto, path: &Path, max_proto_bytes: usize) -> Result<(), OnnxError> {
    let data = data_path(path);
    let location = data.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let write_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| OnnxError::Write { path: p, source }
    };
    let graph = model.graph.as_ref();
    let initializers = graph.map_or(&[][..], |g| g.initializer.as_slice());
    let mut stubs = Vec::with_capacity(initializers.len());
    let data_tmp = temp_path(&data);
    let mut writer: Option<BufWriter<File>> = None;
    let mut offset = 0_u64;
    let result = (|| -> std::io::Result<()> {
        for t in initializers {
            if t.raw_data.len() < EXTERNAL_MIN_BYTES {
                stubs.push(t.clone());
                continue;
            }
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(BufWriter::with_capacity(1 << 20, File::create(&data_tmp)?)),
            };
            let align = if t.raw_data.len() >= PAGE_ALIGN_MIN_BYTES { PAGE } else { LINE };
            let start = offset.next_multiple_of(align);
            w.write_all(&vec![0_u8; usize::try_from(start - offset).unwrap_or(0)])?;
            w.write_all(&t.raw_data)?;
            offset = start + t.raw_data.len() as u64;
            stubs.push(external_stub(t, &location, start));
        }
        if let Some(w) = writer.take() {
            w.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_all()?;
            std::fs::rename(&data_tmp, &data)?;
        } else {
            match std::fs::remove_file(&data) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&data_tmp);
        return Err(write_err(&data)(e));
    }
    let split = ModelProto {
        graph: graph.map(|g| GraphProto {
            node: g.node.clone(),
            name: g.name.clone(),
            initializer: stubs,
            doc_string: g.doc_string.clone(),
            input: g.input.clone(),
            output: g.output.clone(),
            value_info: g.value_info.clone(),
        }),
        ir_version: model.ir_version,
        opset_import: model.opset_import.clone(),
        producer_name: model.producer_name.clone(),
        producer_version: model.producer_version.clone(),
        domain: model.domain.clone(),
        model_version: model.model_version,
        doc_string: model.doc_string.clone(),
        metadata_props: model.metadata_props.clone(),
    };
    let len = prost::Message::encoded_len(&split);
    if len > max_proto_bytes {
        return Err(OnnxError::TooLarge { bytes: len });
    }
    crate::builder::write_atomic(path, &prost::Message::encode_to_vec(&split))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn external_stub(t: &TensorProto, location: &str, offset: u64) -> TensorProto {
    let entry = |key: &str, value: String| StringStringEntryProto { key: key.to_string(), value };
    TensorProto {
        name: t.name.clone(),
        dims: t.dims.clone(),
        data_type: t.data_type,
        doc_string: t.doc_string.clone(),
        data_location: EXTERNAL,
        external_data: vec![
            entry("location", location.to_string()),
            entry("offset", offset.to_string()),
            entry("length", t.raw_data.len().to_string()),
        ],
        ..Default::default()
    }
}

/// Reads the external initializers of `model` (loaded from `path`) back into `raw_data`, so
/// code that inspects weights sees one form whatever the layout on disk.
pub fn load_external(model: &mut ModelProto, path: &Path) -> Result<(), OnnxError> {
    let Some(graph) = model.graph.as_mut() else { return Ok(()) };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut cache: Option<(String, Vec<u8>)> = None;
    for t in graph.initializer.iter_mut().filter(|t| t.data_location == EXTERNAL) {
        let field = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.clone());
        let location = field("location").unwrap_or_default();
        let bad = |what: String| OnnxError::Read {
            path: dir.join(&location),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("initializer `{}`: {what}", t.name)),
        };
        // Only a plain file name next to the model: a location may not climb out of the folder.
        if location.is_empty() || Path::new(&location).components().count() != 1 || location.contains("..") {
            return Err(bad(format!("bad external data location `{location}`")));
        }
        let num = |k: &str| field(k).map(|v| v.parse::<usize>().map_err(|_| bad(format!("bad {k} `{v}`")))).transpose();
        let offset = num("offset")?.unwrap_or(0);
        if cache.as_ref().is_none_or(|(l, _)| *l != location) {
            let p = dir.join(&location);
            let bytes = std::fs::read(&p).map_err(|source| OnnxError::Read { path: p, source })?;
            cache = Some((location.clone(), bytes));
        }
        let bytes = cache.as_ref().map_or(&[][..], |(_, b)| b.as_slice());
        let length = num("length")?.unwrap_or(bytes.len().saturating_sub(offset));
        let slice = bytes
            .get(offset..offset.saturating_add(length))
            .ok_or_else(|| bad(format!("{offset}+{length} is past the end of the file")))?;
        t.raw_data = slice.to_vec();
        t.external_data.clear();
        t.data_location = 0;
    }
    Ok(())
}
