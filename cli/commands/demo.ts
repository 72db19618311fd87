// `foremforge demo` (what `npm run demo` runs): the main job on the default model and the sample
// data, printed step by step. See ts/pipeline/demo.ts for what it does today.
import { Command, InvalidArgumentError } from 'commander';
import path from 'node:path';

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

export const demoCommand = new Command('demo')
  .description('Fine-tune the default model on the sample data and compare its answer with the base model.')
  .option('--out <dir>', 'run folder (default: runs/demo-<timestamp>)')
  .option('--epochs <n>', 'training epochs', positive, 3)
  .option('--lr <x>', 'learning rate', positive, 2e-3)
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
      signal: controller.signal,
    });
    if (tty) process.stderr.write('\n');
    const show = (label: string, g: { text: string; confidence: number }) =>
      `    ${label}: ${g.text.trim()}\n    ${' '.repeat(label.length)}  (confidence ${g.confidence.toFixed(2)})\n`;
    process.stdout.write(show('base model ', result.base));
    process.stdout.write(show('fine-tuned ', result.tuned));
    if (result.expected) process.stdout.write(`    reference  : ${result.expected}\n`);
    process.stdout.write(
      `\nrun folder: ${result.training.runDir} (PEFT adapter, tinyforge.json, metrics.jsonl, loss.svg)\n` +
        'Not built yet: INT8 ONNX export and the inference service (`foremforge export`, `foremforge serve`).\n',
    );
  });
