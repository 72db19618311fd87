// The export folder's tinyforge.json: where the model came from (base + SHA-256, run, dataset
// + SHA-256, adapter config + SHA-256), how it was made (quantization and its parameters, tool
// versions, time), what was checked, and the size of every file. The registry reads it
// (registerExportFromFolder) and the serving command reads it to describe the model.
import { readdirSync, statSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { OnnxExport } from '@tinyforge/native';
import { packageVersion } from '../config/project.js';
import { native } from '../native.js';
import { MANIFEST_FILE } from '../registry/lineage.js';
import type { ExportCheck } from './export-check.js';
import type { ExportQuality } from './export-quality.js';
import type { Lineage } from './export-register.js';
import type { ExportSource } from './export-source.js';

export interface ExportManifestInput {
  source: ExportSource;
  lineage: Lineage;
  name: string;
  quantize: string;
  /** transformers.js dtype of the default model file. */
  dtype: string;
  /** Relative to the folder, e.g. onnx/model_quantized.onnx. */
  modelFile: string;
  written: OnnxExport;
  fp32?: OnnxExport;
  eosTokenIds: number[];
  check: ExportCheck;
  /** Perplexity on the held-out text (export-quality.ts); replaces any quality the core reports. */
  quality?: ExportQuality;
  seconds: number;
}

/** Every file under `dir` with its size, relative paths with '/' (the manifest itself excluded). */
function sizes(dir: string, rel = ''): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of readdirSync(path.join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = statSync(path.join(dir, r));
    if (st.isDirectory()) Object.assign(out, sizes(dir, r));
    else if (r !== MANIFEST_FILE) out[r] = st.size;
  }
  return out;
}

/**
 * The native export report beyond path/bytes/layers: the quantization's parameters (per tensor
 * group: format, bytes, rounding error, reason) and any quality report, whatever the core adds.
 * A field given as JSON text is parsed; an object with `groups` (the core's QuantReport) is
 * spread into `quantization`.
 */
function reportExtras(r: OnnxExport): { quantization: Record<string, unknown>; quality: unknown } {
  const { path: _p, bytes: _b, layers: _l, quantization: _q, ...rest } = r as OnnxExport & Record<string, unknown>;
  const quantization: Record<string, unknown> = {};
  let quality: unknown = null;
  for (const [key, raw] of Object.entries(rest)) {
    let value = raw;
    if (typeof raw === 'string' && /^\s*[[{]/.test(raw)) {
      try {
        value = JSON.parse(raw);
      } catch {
        value = raw;
      }
    }
    if (key === 'quality') quality = value;
    else if (value && typeof value === 'object' && !Array.isArray(value) && 'groups' in value) Object.assign(quantization, value);
    else quantization[key] = value;
  }
  return { quantization, quality };
}

export function writeExportManifest(dir: string, m: ExportManifestInput): string {
  const { source, lineage } = m;
  const run = lineage.run;
  const { quantization, quality } = reportExtras(m.written);
  const files = sizes(dir);
  const manifest = {
    kind: 'tinyforge.export',
    formatVersion: 1,
    name: m.name,
    createdAt: new Date().toISOString(),
    source: source.kind,
    run: source.run ? source.run.path : null,
    base: { name: lineage.base.name, path: source.base.path, format: source.base.format, sha256: source.base.sha256 },
    ...(run?.datasetPath
      ? {
          data: {
            path: run.datasetPath,
            ...(run.datasetSha256 ? { sha256: run.datasetSha256 } : {}),
            ...(run.datasetRecords !== null ? { records: run.datasetRecords } : {}),
          },
        }
      : {}),
    adapter: source.adapter ? { path: source.adapter.path, sha256: source.adapter.sha256, config: source.adapter.config } : null,
    ...(run ? { hyperparameters: run.hyperparameters } : {}),
    model: {
      file: m.modelFile,
      bytes: m.written.bytes,
      layers: m.written.layers,
      io: 'decoder with KV cache, Optimum names (input_ids, attention_mask, position_ids, past_key_values.N.key|value → logits, present.N.key|value)',
    },
    ...(m.fp32 ? { fp32: { file: 'onnx/model.onnx', bytes: m.fp32.bytes } } : {}),
    quantization: { scheme: m.quantize, ...quantization },
    quality: m.quality ?? quality,
    check: m.check,
    generation: { eosTokenIds: m.eosTokenIds },
    transformersJs: { dtype: m.dtype, file: m.modelFile },
    metrics: {
      exportSeconds: Math.round(m.seconds * 100) / 100,
      modelBytes: m.written.bytes,
      ...(m.fp32 ? { fp32Bytes: m.fp32.bytes, sizeRatio: m.written.bytes / m.fp32.bytes } : {}),
      ...(m.check.top1AgreementWithFp32 !== undefined ? { top1AgreementWithFp32: m.check.top1AgreementWithFp32 } : {}),
    },
    files,
    totalBytes: Object.values(files).reduce((a, b) => a + b, 0),
    versions: { tinyforge: packageVersion(), native: native().nativeVersion(), onnxruntime: m.check.onnxruntime, node: process.version },
  };
  const file = path.join(dir, MANIFEST_FILE);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(tmp, file);
  return file;
}
