// `foremforge predict --dir S "text"`: one answer without a server, through the same engine and
// request path `serve` uses (the prompt is asked as one user turn when the model has a chat
// template). Prints the answer, or JSON with --json.
import { Command } from 'commander';
import { ForgeError } from '../../ts/errors.js';
import type { EnginePrompt } from '../../ts/serve/engine.js';
import { loadEngine, resolveServeTarget } from '../../ts/serve/load-engine.js';
import { numberFlag } from '../flags.js';

interface PredictFlags {
  dir: string;
  maxTokens: string;
  temperature: string;
  seed: string;
  json?: boolean;
}

export const predictCommand = new Command('predict')
  .description('Answer one prompt with a model, run folder or export folder (what POST /predict returns).')
  .requiredOption('--dir <path>', 'model (HF folder or .gguf), training run folder or export folder')
  .argument('<text>', 'the question or prompt')
  .option('--max-tokens <n>', 'longest answer in tokens', '128')
  .option('--temperature <t>', '0 = greedy', '0')
  .option('--seed <n>', 'sampling seed', '0')
  .option('--json', 'print {"output","confidence","finish_reason","usage","latency_ms"}')
  .exitOverride()
  .action(async (text: string, flags: PredictFlags) => {
    const started = performance.now();
    const engine = await loadEngine(resolveServeTarget(flags.dir));
    const prompt: EnginePrompt = engine.info.chatTemplate
      ? { kind: 'messages', messages: [{ role: 'user', content: text }] }
      : { kind: 'text', text };
    const room = engine.info.contextLength - engine.countTokens(prompt);
    if (room < 1) throw new ForgeError('INVALID_ARGUMENT', `the prompt fills the model's ${engine.info.contextLength}-token context`);
    const params = {
      maxTokens: Math.min(room, numberFlag('--max-tokens', flags.maxTokens, { integer: true, min: 1, max: 1_000_000 })),
      temperature: numberFlag('--temperature', flags.temperature, { min: 0, max: 2 }),
      topP: 1,
      topK: 0,
      minP: 0,
      repetitionPenalty: 1,
      frequencyPenalty: 0,
      presencePenalty: 0,
      seed: numberFlag('--seed', flags.seed, { integer: true, min: 0, max: 0xffff_ffff }),
      stop: [],
      topLogprobs: 0,
    };
    let output = '';
    let result: { finish_reason: string; confidence: number; usage: object } | undefined;
    for await (const event of engine.generate({ prompt, params }, new AbortController().signal)) {
      if (event.type === 'delta') {
        output += event.text;
        if (!flags.json) process.stdout.write(event.text);
      } else {
        const { promptTokens, completionTokens } = event.usage;
        result = {
          finish_reason: event.finishReason,
          confidence: event.confidence,
          usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
        };
      }
    }
    await engine.close();
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ output, ...result, latency_ms: Math.round(performance.now() - started) })}\n`);
    } else {
      process.stdout.write('\n');
    }
  });
