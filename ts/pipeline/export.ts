// `exportModel`: a run (or a base, or an adapter over a base) → a model folder that ONNX Runtime
// and `@huggingface/transformers` load as is. Layout (transformers.js reads `onnx/<file>` and
// picks the file from `transformers.js_config.dtype` in config.json):
//
//   onnx/model_quantized.onnx   int8 (dtype q8)            onnx/model_q4.onnx   int4 (dtype q4)
//   onnx/model.onnx             fp32 (--quantize none, or --keep-fp32 beside a quantized one)
//   config.json  generation_config.json  tokenizer.json  tokenizer_config.json  tinyforge.json
//   server.mjs  package.json  .npmrc  Dockerfile  .dockerignore  README.md  vendor/*.tar
//                               the standalone service (export-service.ts)
//
// The folder is built in a staging sibling and renamed into place at the end (export-folder.ts);
// the serving command only adds files next to these. The CLI and the API call this, not the binding.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { OnnxExport } from '@tinyforge/native';
import { tinyforgeHome } from '../config/project.js';
import { ForgeError } from '../errors.js';
import { native } from '../native.js';
import { Registry } from '../registry/registry.js';
import { type ExportCheck, checkExport } from './export-check.js';
import { type TransformersJsDtype, TRANSFORMERS_JS_FILES, writeHfFiles } from './export-files.js';
import { StagingFolder, checkOut, removeStaleStaging } from './export-folder.js';
import { writeServiceFiles } from './export-service.js';
import { type ExportManifestInput, writeExportManifest } from './export-manifest.js';
import { type Lineage, ensureLineage, registerExport } from './export-register.js';
import { type ExportQuality, describeQuality, measureQuality } from './export-quality.js';
import { type ExportSource, resolveExportSource } from './export-source.js';

/** int8: SmoothQuant per-token int8 (fast prefill and batches); int8-blocks: 8-bit weight blocks
 * (the earlier int8: slower prefill, higher per-token agreement with fp32); int4; none = fp32. */
export type Quantize = 'int8' | 'int8-blocks' | 'int4' | 'none';
export const QUANTIZE_CHOICES: readonly Quantize[] = ['int8', 'int8-blocks', 'int4', 'none'];

const DTYPE: Record<Quantize, TransformersJsDtype> = { int8: 'q8', 'int8-blocks': 'q8', int4: 'q4', none: 'fp32' };

export type ExportStage = 'resolve' | 'export' | 'fp32' | 'files' | 'check' | 'quality' | 'service' | 'finish';

export interface ExportProgress {
  stage: ExportStage;
  state: 'start' | 'done';
  /** What the stage does, for a progress line. */
  label: string;
  /** Seconds the stage took (on 'done'). */
  seconds?: number;
  /** A short result, e.g. the file size (on 'done'). */
  detail?: string;
}

export interface ExportOptions {
  /** Run folder, its tinyforge.json, registry id/name, base folder, .gguf file or catalog name. */
  model?: string;
  /** PEFT adapter folder (instead of `model`), merged over `base`. */
  adapter?: string;
  /** Base model under `adapter`, or the moved base of a run. */
  base?: string;
  out: string;
  /** Default int8. */
  quantize?: Quantize;
  /** Replace an existing export in `out`. */
  overwrite?: boolean;
  /** Also write the fp32 model (onnx/model.onnx) beside a quantized one. */
  keepFp32?: boolean;
  /** Registry name. Default: the folder name. */
  name?: string;
  /** Measure perplexity on the shipped held-out text, with the fp32 reference (export-quality.ts). Default true. */
  quality?: boolean;
  onProgress?: (p: ExportProgress) => void;
  /** Stops between stages (a native stage runs to its end first); nothing is left behind. */
  signal?: AbortSignal;
  /** Registry home. Default: tinyforgeHome(). */
  home?: string;
}

export interface ExportResult {
  out: string;
  /** Registry id of the export row. */
  id: string;
  parentId: string | null;
  /** The default model file, relative to `out`. */
  model: string;
  quantize: Quantize;
  files: { path: string; size: number }[];
  seconds: number;
  source: ExportSource['kind'];
  check: ExportCheck;
  /** Perplexity of the written model and of fp32 on the held-out text (absent with quality: false). */
  quality?: ExportQuality;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function checkName(name: string | undefined): void {
  if (name === undefined) return;
  if (!NAME.test(name) || name.includes('..')) {
    throw new ForgeError(
      'INVALID_ARGUMENT',
      `--name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-' (no path separators or '..')`
    );
  }
}

const mb = (n: number): string => `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} MB`;

/** A short prompt for the check: the chat template's rendering when there is one. */
function checkPrompt(dir: string): number[] {
  const tok = native().Tokenizer.fromFile(dir);
  const text = tok.chatTemplate
    ? tok.applyChatTemplate([{ role: 'user', content: 'What is the capital of France?' }], { addGenerationPrompt: true })
    : 'The capital of France is';
  return Array.from(tok.encode(text, { addSpecialTokens: !tok.chatTemplate }));
}

export async function exportModel(options: ExportOptions): Promise<ExportResult> {
  const t0 = performance.now();
  const quantize = options.quantize ?? 'int8';
  if (!QUANTIZE_CHOICES.includes(quantize)) {
    throw new ForgeError('INVALID_ARGUMENT', `--quantize ${String(quantize)}: expected ${QUANTIZE_CHOICES.join(', ')}`);
  }
  checkName(options.name);
  const report = options.onProgress ?? (() => {});
  const home = options.home ?? tinyforgeHome();
  const stopIfAborted = () => {
    if (options.signal?.aborted)
      throw new ForgeError('ABORTED', 'export interrupted; nothing was written', { suggestion: 'run the same command again' });
  };
  let stageStart = 0;
  const start = (stage: ExportStage, label: string) => {
    stopIfAborted();
    stageStart = performance.now();
    report({ stage, state: 'start', label });
  };
  const done = (stage: ExportStage, label: string, detail?: string) =>
    report({ stage, state: 'done', label, seconds: (performance.now() - stageStart) / 1000, ...(detail ? { detail } : {}) });

  const registry = Registry.open({ home });
  try {
    start('resolve', 'resolve the model');
    const source = await resolveExportSource({ ...options, registry, ...(options.signal ? { signal: options.signal } : {}) });
    const inputs = [
      source.modelPath,
      source.base.path,
      ...(source.adapter ? [source.adapter.path] : []),
      ...(source.run ? [source.run.path] : []),
    ];
    // First, so an export killed between its two renames gets its previous folder back before
    // --out is judged.
    removeStaleStaging(path.resolve(options.out));
    const out = checkOut({ out: options.out, overwrite: options.overwrite === true, sources: inputs, home });
    done('resolve', 'resolve the model', `${source.kind}${source.adapter ? ' + adapter' : ''}`);

    const dtype = DTYPE[quantize];
    const modelFile = `onnx/${TRANSFORMERS_JS_FILES[dtype]}`;
    let check: ExportCheck;
    let quality: ExportQuality | undefined;
    let lineage: Lineage;

    const staging = new StagingFolder(out);
    try {
      const onnxDir = path.join(staging.dir, 'onnx');
      mkdirSync(onnxDir);
      const steps = [source.adapter ? 'merge adapter' : undefined, 'write graph', quantize !== 'none' ? `quantize ${quantize}` : undefined]
        .filter(Boolean)
        .join(' + ');
      start('export', steps);
      const exportOpts = { quantize, ...(source.adapter ? { adapter: source.adapter.path } : {}) };
      const written: OnnxExport = await native().exportOnnx(source.modelPath, path.join(staging.dir, modelFile), exportOpts);
      done('export', steps, mb(written.bytes));
      let fp32: OnnxExport | undefined;
      if (options.keepFp32 && quantize !== 'none') {
        start('fp32', 'write the fp32 graph (--keep-fp32)');
        fp32 = await native().exportOnnx(source.modelPath, path.join(onnxDir, TRANSFORMERS_JS_FILES.fp32), {
          quantize: 'none',
          ...(source.adapter ? { adapter: source.adapter.path } : {}),
        });
        done('fp32', 'write the fp32 graph (--keep-fp32)', mb(fp32.bytes));
      }

      start('files', 'tokenizer and config files');
      const hf = writeHfFiles(source.modelPath, staging.dir, dtype);
      done('files', 'tokenizer and config files');

      start('check', 'check in ONNX Runtime');
      check = await checkExport(
        path.join(staging.dir, modelFile),
        checkPrompt(staging.dir),
        quantize !== 'none',
        fp32 ? path.join(onnxDir, TRANSFORMERS_JS_FILES.fp32) : undefined
      );
      done('check', 'check in ONNX Runtime', `ok, cached step vs recompute: cosine ${check.kvCache.cosine.toFixed(4)}`);

      if (options.quality !== false) {
        start('quality', 'perplexity on the held-out text (ONNX Runtime)');
        const fp32File = quantize === 'none' ? modelFile : fp32 ? `onnx/${TRANSFORMERS_JS_FILES.fp32}` : undefined;
        quality = await measureQuality({
          dir: staging.dir,
          modelFile,
          ...(fp32File ? { fp32File } : {}),
          // About 26% (int8) and 18% (int4) of fp32 on SmolLM2: the estimate only gates the reference.
          fp32Bytes: written.bytes * (quantize === 'int4' ? 5.5 : 3.7),
          writeFp32: async (file) =>
            (
              await native().exportOnnx(source.modelPath, file, {
                quantize: 'none',
                ...(source.adapter ? { adapter: source.adapter.path } : {}),
              })
            ).bytes,
        });
        done('quality', 'perplexity on the held-out text (ONNX Runtime)', describeQuality(quality).replace(/^quality: /, ''));
      }

      start('service', 'service files (server.mjs, Dockerfile, packed server)');
      writeServiceFiles(staging.dir, modelFile);
      done('service', 'service files (server.mjs, Dockerfile, packed server)');

      start('finish', 'write tinyforge.json, move into place, register');
      // Registered only now: a failed export must not leave rows for a broken base behind.
      lineage = await ensureLineage(registry, source);
      const manifest: ExportManifestInput = {
        source,
        lineage,
        name: options.name ?? path.basename(out),
        quantize,
        dtype,
        modelFile,
        written,
        ...(fp32 ? { fp32 } : {}),
        eosTokenIds: hf.eosTokenIds,
        check,
        ...(quality ? { quality } : {}),
        seconds: (performance.now() - t0) / 1000,
      };
      writeExportManifest(staging.dir, manifest);
      stopIfAborted();
      staging.commit();
    } catch (err) {
      staging.discard();
      throw err;
    }
    const row = await registerExport(registry, out, lineage);
    done('finish', 'write tinyforge.json, move into place, register', row.id);
    return {
      out,
      id: row.id,
      parentId: row.parentId,
      model: modelFile,
      quantize,
      files: row.files.map((f) => ({ path: f.path, size: f.size })),
      seconds: (performance.now() - t0) / 1000,
      source: source.kind,
      check,
      ...(quality ? { quality } : {}),
    };
  } finally {
    registry.close();
  }
}
