// `foremforge chat --dir S`: talk to a model in the terminal, through the same engine `serve`
// uses. Each answer is printed as the engine streams it (the interim candle engine delivers it
// whole) and kept in the conversation; `/reset` forgets it, `/exit` or Ctrl-D ends. Reads lines
// from a pipe too, so it can be scripted.
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { ForgeError } from '../../ts/errors.js';
import type { EngineMessage } from '../../ts/serve/engine.js';
import { loadEngine, resolveServeTarget } from '../../ts/serve/load-engine.js';
import { numberFlag } from '../flags.js';

interface ChatFlags {
  dir: string;
  system?: string;
  maxTokens: string;
  temperature: string;
}

export const chatCommand = new Command('chat')
  .description('Chat with a model, run folder or export folder in the terminal (answers stream as they are generated).')
  .requiredOption('--dir <path>', 'model (HF folder or .gguf), training run folder or export folder')
  .option('--system <text>', 'system prompt for the conversation')
  .option('--max-tokens <n>', 'longest answer in tokens', '256')
  .option('--temperature <t>', '0 = greedy', '0.7')
  .exitOverride()
  .action(async (flags: ChatFlags) => {
    const maxTokens = numberFlag('--max-tokens', flags.maxTokens, { integer: true, min: 1, max: 1_000_000 });
    const temperature = numberFlag('--temperature', flags.temperature, { min: 0, max: 2 });
    const engine = await loadEngine(resolveServeTarget(flags.dir));
    if (!engine.info.chatTemplate)
      throw new ForgeError('CHAT_TEMPLATE_MISSING', `${flags.dir} has no chat template; use \`foremforge predict\``);
    const tty = process.stdin.isTTY === true;
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: tty });
    const history: EngineMessage[] = flags.system ? [{ role: 'system', content: flags.system }] : [];
    if (tty) process.stdout.write(`${engine.info.id} (${engine.info.engine}); /reset forgets the conversation, /exit or Ctrl-D ends.\n`);
    let turn = 0;
    // Ctrl-C during an answer stops that answer; at the prompt it ends the chat.
    let controller: AbortController | undefined;
    rl.on('SIGINT', () => (controller ? controller.abort() : rl.close()));
    rl.setPrompt('> ');
    if (tty) rl.prompt();
    try {
      // The async iterator buffers lines that arrive while an answer is generated (a piped script
      // sends them all at once); rl.question would drop them.
      for await (const line of rl) {
        const text = line.trim();
        if (text === '/exit') break;
        if (text === '/reset') {
          history.splice(flags.system ? 1 : 0);
          if (tty) rl.prompt();
          continue;
        }
        if (text === '') {
          if (tty) rl.prompt();
          continue;
        }
        history.push({ role: 'user', content: text });
        const prompt = { kind: 'messages' as const, messages: history };
        const room = engine.info.contextLength - engine.countTokens(prompt);
        if (room < 1) {
          history.pop();
          process.stdout.write(`(the conversation fills the ${engine.info.contextLength}-token context: /reset)\n`);
          continue;
        }
        controller = new AbortController();
        let answer = '';
        const params = {
          maxTokens: Math.min(maxTokens, room),
          temperature,
          topP: 1,
          topK: 0,
          minP: 0,
          repetitionPenalty: 1,
          frequencyPenalty: 0,
          presencePenalty: 0,
          seed: turn++,
          stop: [],
          topLogprobs: 0,
        };
        try {
          for await (const event of engine.generate({ prompt, params }, controller.signal)) {
            if (event.type === 'delta') {
              answer += event.text;
              process.stdout.write(event.text);
            }
          }
        } catch (err) {
          if (!controller.signal.aborted) throw err;
        }
        controller = undefined;
        process.stdout.write('\n');
        history.push({ role: 'assistant', content: answer });
        if (tty) rl.prompt();
      }
    } finally {
      rl.close();
      await engine.close();
    }
  });
