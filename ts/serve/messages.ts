// Request pieces shared by the routes: the `model` name check (404 like OpenAI for a model this
// server does not serve) and chat `messages`, flattened to the text turns a chat template takes.
import { ApiError, badParam } from './api-error.js';
import type { EngineInfo, EngineMessage } from './engine.js';
import type { Fields, Json } from './fields.js';

export function checkModel(f: Fields, info: EngineInfo): void {
  const model = f.string('model');
  if (model !== undefined && model !== info.id) {
    throw new ApiError(404, `The model \`${model}\` does not exist; this server serves \`${info.id}\` (GET /v1/models)`, {
      type: 'invalid_request_error',
      param: 'model',
      code: 'model_not_found',
    });
  }
}

const ROLES: Record<string, EngineMessage['role']> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

function contentText(content: unknown, at: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw badParam(`${at}.content`, `${at}.content must be a string or an array of text parts`, 'invalid_type');
  return content
    .map((part: unknown, j) => {
      const p = part as Json | null;
      if (typeof p !== 'object' || p === null || p.type !== 'text' || typeof p.text !== 'string') {
        throw badParam(
          `${at}.content[${j}]`,
          `${at}.content[${j}]: only {"type":"text","text":...} parts are supported`,
          'unsupported_content'
        );
      }
      return p.text;
    })
    .join('');
}

export function readMessages(value: unknown, param = 'messages'): EngineMessage[] {
  if (!Array.isArray(value)) throw badParam(param, `${param} must be an array of {role, content}`, 'invalid_type');
  if (value.length === 0) throw badParam(param, `${param} must hold at least one message`);
  return value.map((m: unknown, i) => {
    const at = `${param}[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw badParam(at, `${at} must be an object`, 'invalid_type');
    const msg = m as Json;
    for (const key of Object.keys(msg)) {
      if (key !== 'role' && key !== 'content' && key !== 'name') {
        throw badParam(`${at}.${key}`, `${at}.${key} is not supported (tool calls are not implemented)`, 'unsupported_parameter');
      }
    }
    const role = typeof msg.role === 'string' ? ROLES[msg.role] : undefined;
    if (role === undefined) {
      throw badParam(`${at}.role`, `${at}.role must be one of system, developer, user, assistant; got ${JSON.stringify(msg.role)}`);
    }
    return { role, content: contentText(msg.content, at) };
  });
}
