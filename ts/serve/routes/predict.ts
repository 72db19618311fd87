// POST /predict: the seed's contract, {"text"} -> {"output","confidence"}. `text` is asked as one
// user turn through the chat template (what a fine-tuned Q&A model was trained on); `messages`
// may be sent instead. Defaults are greedy (temperature 0) so the same question gets the same
// answer. Extra fields in the answer: finish_reason, usage and latency_ms.
import { badParam, toApiError } from '../api-error.js';
import type { EnginePrompt } from '../engine.js';
import { Fields, parseJsonObject } from '../fields.js';
import { collectGeneration } from '../generation.js';
import { checkModel, readMessages } from '../messages.js';
import { usage } from '../openai-format.js';
import { SAMPLING_FIELDS, fitContext, readSampling } from '../sampling.js';
import type { RouteContext } from './context.js';

const FIELDS = ['model', 'text', 'messages', ...SAMPLING_FIELDS];

export async function predict(rc: RouteContext): Promise<void> {
  const { engine, reply, stats } = rc;
  const info = engine.info;
  const f = new Fields(parseJsonObject(await rc.body), FIELDS);
  checkModel(f, info);
  const text = f.string('text');
  if ((text === undefined) === !f.has('messages')) throw badParam('text', 'send exactly one of text or messages');
  let prompt: EnginePrompt;
  if (text !== undefined) {
    prompt = info.chatTemplate ? { kind: 'messages', messages: [{ role: 'user', content: text }] } : { kind: 'text', text };
  } else {
    prompt = { kind: 'messages', messages: readMessages(f.body.messages) };
  }
  let params = readSampling(f, info, { maxTokens: 128, temperature: 0 });
  let promptTokens: number;
  try {
    promptTokens = engine.countTokens(prompt);
  } catch (err) {
    throw toApiError(err);
  }
  params = fitContext(params, prompt, promptTokens, info, text !== undefined ? 'text' : 'messages');
  stats.promptTokens = promptTokens;
  if (rc.logPrompts) stats.prompt = text ?? f.body.messages;

  const { text: output, done } = await collectGeneration(rc.generation, reply, stats, { prompt, params });
  reply.json(200, {
    output,
    confidence: done.confidence,
    finish_reason: done.finishReason,
    usage: usage(done),
    latency_ms: Math.round(performance.now() - stats.receivedAt),
  });
}
