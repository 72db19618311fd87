// `foremforge demo` (what `npm run demo` runs): the main job on the default model and the sample
// data, printed step by step: pull, check, fine-tune, export INT8, serve, ask over HTTP, stop.
import { Command } from 'commander';
import path from 'node:path';
import { numberOption } from '../flags.js';

export const demoCommand = new Command('demo')
  .description('Fine-tune the default model on the sample data, export it to INT8 ONNX, serve it and ask it a question over HTTP.')
  .option('--out <dir>', 'run folder (default: runs/demo-<timestamp>)')
  .option('--epochs <n>', 'training epochs', numberOption('--epochs', { above: 0 }), 3)
  .option('--lr <x>', 'learning rate', numberOption('--lr', { above: 0 }), 2e-3)
  .option('--question <text>', 'what to ask (default: a held-out question from examples/sample_qna.eval.jsonl)')
  .action(async (flags: { out?: string; epochs: number; lr: number; question?: string }) => {
    const out = flags.out ?? path.join('runs', `demo-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    const tty = process.stderr.isTTY === true;
    // Loaded on use: the native core is not needed for `foremforge --help`.
    const { runDemo } = await import('../../ts/pipeline/demo.js');
    const result = await runDemo({
      out,
      epochs: flags.epochs,
      lr: flags.lr,
      ...(flags.question ? { question: flags.question } : {}),
      log: (line) => process.stdout.write(`${line}\n`),
      onProgress: (p) => {
        const line = `    step ${p.step}/${p.totalSteps}  loss ${p.loss.toFixed(3)}  ${Math.round(p.tokensPerSecond)} tok/s  eta ${Math.round(p.etaSeconds)}s`;
        if (tty) process.stderr.write(`\r${line}`);
        else if (p.step % 10 === 0 || p.step === p.totalSteps) process.stderr.write(`${line}\n`);
      },
      onExportProgress: (p) => {
        if (p.state === 'done')
          process.stderr.write(`    ${p.label}: ${(p.seconds ?? 0).toFixed(1)} s${p.detail ? ` (${p.detail})` : ''}\n`);
      },
      signal: controller.signal,
    });
    if (tty) process.stderr.write('\n');
    const show = (label: string, g: { text: string; confidence: number }) =>
      `    ${label}: ${g.text.trim()}\n    ${' '.repeat(label.length)}  (confidence ${g.confidence.toFixed(2)})\n`;
    process.stdout.write(
      show('served (fine-tuned, INT8, over HTTP)', { text: result.served.output, confidence: result.served.confidence })
    );
    process.stdout.write(show('base model (untuned)                ', result.base));
    if (result.expected) process.stdout.write(`    reference                           : ${result.expected}\n`);
    const s = result.seconds;
    const steps: [string, number][] = [
      ['pull', s.pull],
      ['data', s.data],
      ['train', s.train],
      ['export', s.export],
      ['serve (to /ready)', s.serve],
      ['ask (HTTP)', s.ask],
    ];
    process.stdout.write(`\ntime: ${steps.map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')}\n`);
    process.stdout.write(
      `run folder: ${result.training.runDir} (PEFT adapter, tinyforge.json, metrics.jsonl, loss.svg)\n` +
        `export folder: ${result.export.out} (serve it: foremforge serve --dir ${result.export.out})\n`
    );
  });
