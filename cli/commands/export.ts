// `foremforge export --model RUN --out DIR [--quantize int8|int8-blocks|int4|none] [--overwrite] [--keep-fp32]`:
// a run (or a base model, or --adapter over --base) → an ONNX model folder that ONNX Runtime and
// @huggingface/transformers load as is, registered with its lineage. The seed's spelling works
// too: --model-path, --output-dir, --export-onnx. Ctrl-C stops after the current stage and
// leaves nothing behind; a second Ctrl-C removes the partial folder and exits at once.
import { Command } from 'commander';
import { ForgeError } from '../../ts/errors.js';
import { formatBytes } from './models.js';
// Types only: the pipeline (native core, registry) loads when the command runs.
import type { ExportOptions, ExportProgress, ExportResult, Quantize } from '../../ts/pipeline/export.js';

interface ExportFlags {
  model?: string;
  modelPath?: string;
  out?: string;
  outputDir?: string;
  adapter?: string;
  base?: string;
  quantize?: string;
  overwrite?: boolean;
  keepFp32?: boolean;
  exportOnnx?: boolean;
  quality?: boolean;
  name?: string;
  json?: boolean;
}

/** --model / --model-path (and --out / --output-dir) are one option under two names. */
function oneOf(flags: ExportFlags, a: 'model' | 'out', b: 'modelPath' | 'outputDir', names: [string, string]): string | undefined {
  const [x, y] = [flags[a], flags[b]];
  if (x !== undefined && y !== undefined && x !== y) {
    throw new ForgeError('INVALID_ARGUMENT', `${names[0]} ${x} and ${names[1]} ${y} disagree`, { suggestion: `pass only ${names[0]}` });
  }
  return x ?? y;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** One line per stage: redrawn with elapsed time on a terminal, printed once when done elsewhere. */
function progressDisplay(out: NodeJS.WriteStream = process.stderr): { onProgress: (p: ExportProgress) => void; stop: () => void } {
  const tty = out.isTTY === true;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  return {
    onProgress(p) {
      stop();
      if (p.state === 'start') {
        if (!tty) return;
        const t0 = Date.now();
        let i = 0;
        const draw = () => out.write(`\r\x1b[K${SPINNER[i++ % SPINNER.length]} ${p.label} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
        draw();
        timer = setInterval(draw, 100);
        timer.unref();
        return;
      }
      const line = `✓ ${p.label}  ${(p.seconds ?? 0).toFixed(1)}s${p.detail ? `  (${p.detail})` : ''}`;
      out.write(tty ? `\r\x1b[K${line}\n` : `${line}\n`);
    },
    stop() {
      stop();
      if (tty) out.write('\r\x1b[K');
    },
  };
}

function printSummary(r: ExportResult, source: string, qualityLine?: string): void {
  const lines = [`exported ${r.source} ${source} → ${r.out} in ${r.seconds.toFixed(1)}s (${r.quantize === 'none' ? 'fp32' : r.quantize})`];
  const width = Math.max(...r.files.map((f) => f.path.length));
  for (const f of r.files) lines.push(`  ${f.path.padEnd(width)}  ${formatBytes(f.size)}`);
  const agree = r.check.top1AgreementWithFp32;
  lines.push(
    `check: loads in ONNX Runtime ${r.check.onnxruntime}; cached decode step vs full recompute: cosine ${r.check.kvCache.cosine.toFixed(4)}, ` +
      `max diff ${r.check.kvCache.maxDiff.toPrecision(2)}${r.check.kvCache.sameTop1 ? '' : ', top-1 differs'}` +
      (agree !== undefined ? `, top-1 agreement with fp32 ${(agree * 100).toFixed(0)}% of ${r.check.promptTokens} positions` : ''),
    ...(qualityLine ? [qualityLine] : []),
    `registry: ${r.id}${r.parentId ? ` (parent ${r.parentId})` : ''}; lineage: foremforge models show ${r.id}`,
    `load: transformers.js pipeline('text-generation', '${r.out}') (offline: env.localModelPath), or ONNX Runtime on ${r.model}`,
    `serve: foremforge serve --dir ${r.out}, or standalone: cd ${r.out} && npm install --omit=dev && node server.mjs (README.md, Dockerfile)`
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

export const exportCommand = new Command('export')
  .description(
    'Export a run (LoRA merged), a base model or an adapter as an ONNX model folder (INT8 by default) that ONNX Runtime and transformers.js load as is.'
  )
  .option('--model <run>', 'run folder, its tinyforge.json, registry id or name, model folder, .gguf file or catalog name')
  .option('--model-path <run>', "same as --model (the seed's spelling)")
  .option('--out <dir>', 'folder to write (must be new or empty unless --overwrite)')
  .option('--output-dir <dir>', "same as --out (the seed's spelling)")
  .option('--adapter <dir>', 'a PEFT LoRA adapter folder to merge, instead of --model')
  .option('--base <model>', "base model under --adapter (default: the adapter's base_model_name_or_path), or a moved base of a run")
  .option('--quantize <kind>', 'int8 (default; tinyforge.config.json export.quantize), int8-blocks, int4 or none (fp32)')
  .option('--keep-fp32', 'also write the fp32 model (onnx/model.onnx) beside the quantized one')
  .option('--overwrite', 'replace an earlier export in --out')
  .option('--name <name>', 'registry name (default: the folder name)')
  .option('--export-onnx', "accepted for the seed's spelling: the export is always ONNX")
  .option('--no-quality', 'skip the perplexity measurement on the held-out text (and its fp32 reference)')
  .option('--json', 'print the result as JSON')
  .exitOverride()
  .action(async (flags: ExportFlags) => {
    const model = oneOf(flags, 'model', 'modelPath', ['--model', '--model-path']);
    const out = oneOf(flags, 'out', 'outputDir', ['--out', '--output-dir']);
    if (out === undefined)
      throw new ForgeError('INVALID_ARGUMENT', 'missing --out DIR', {
        suggestion: 'pass --out with the folder to write, e.g. --out exports/my-model',
      });
    const { applyFlags, loadConfig } = await import('../../ts/config/load.js');
    const quantize = applyFlags(loadConfig().config, { quantize: flags.quantize }, { group: 'export' }).export.quantize as Quantize;
    const { exportModel } = await import('../../ts/pipeline/export.js');
    const { discardOwnStaging } = await import('../../ts/pipeline/export-folder.js');

    const controller = new AbortController();
    const display = progressDisplay();
    let interrupts = 0;
    const onSigint = () => {
      interrupts += 1;
      if (interrupts === 1) {
        display.stop();
        process.stderr.write('\nstopping after the current stage (nothing will be left behind); Ctrl-C again to stop now\n');
        controller.abort();
        return;
      }
      try {
        discardOwnStaging(out);
      } catch {
        // The native writer may still be adding files; the next export removes what is left
        // (removeStaleStaging: its process is gone by then).
      }
      process.stderr.write('error[ABORTED]: export interrupted; nothing was written\n');
      process.exit(130);
    };
    process.on('SIGINT', onSigint);
    // A file-size limit (ulimit -f) should fail the write with EFBIG like a full disk, which the
    // export cleans up after, instead of killing the process mid-file.
    const onXfsz = () => {};
    process.on('SIGXFSZ', onXfsz);
    const options: ExportOptions = {
      out,
      quantize,
      overwrite: flags.overwrite === true,
      keepFp32: flags.keepFp32 === true,
      quality: flags.quality !== false,
      onProgress: flags.json ? () => {} : display.onProgress,
      signal: controller.signal,
      ...(model !== undefined ? { model } : {}),
      ...(flags.adapter !== undefined ? { adapter: flags.adapter } : {}),
      ...(flags.base !== undefined ? { base: flags.base } : {}),
      ...(flags.name !== undefined ? { name: flags.name } : {}),
    };
    try {
      const result = await exportModel(options);
      display.stop();
      if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        const { describeQuality } = await import('../../ts/pipeline/export-quality.js');
        printSummary(result, model ?? flags.adapter ?? '', result.quality ? describeQuality(result.quality) : undefined);
      }
    } finally {
      display.stop();
      process.removeListener('SIGINT', onSigint);
      process.removeListener('SIGXFSZ', onXfsz);
    }
  });
