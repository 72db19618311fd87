// `foremforge serve` and `foremforge predict` as a user runs them (the built CLI in a child
// process): SIGTERM during a generation lets it finish, refuses new work and exits 0; predict
// answers from a model, a training run folder or an export folder (ONNX Runtime, checked against
// infer()); bad --dir values fail with a coded error.
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { connect, createServer } from 'node:net';
import os from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Generator, InferenceSession, infer } from '@tinyforge/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { SLOW_MODEL, tinyModel, waitFor } from './helpers.js';
import { pipelineExport } from './ort-fixture.js';

let model: { path: string; cleanup: () => void };

beforeAll(async () => {
  model = await tinyModel(SLOW_MODEL, 'slow');
});

afterAll(() => model?.cleanup());

interface Child {
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  exit: Promise<number | null>;
}

function startServe(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Child {
  const proc = spawn(process.execPath, [CLI, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
  });
  const lines: Array<Record<string, unknown>> = [];
  let buffered = '';
  proc.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const p of parts) if (p.startsWith('{')) lines.push(JSON.parse(p) as Record<string, unknown>);
  });
  proc.stderr?.resume();
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, lines, exit };
}

function tryConnect(port: number, host: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(port, host, () => {
      sock.destroy();
      resolve('connected');
    });
    sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

/** One request over an explicit keep-alive agent, so a later request can reuse its connection. */
function request(
  agent: http.Agent,
  port: number,
  method: string,
  route: string,
  body?: unknown
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: route, agent, headers: { 'Content-Type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      }
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('foremforge serve', () => {
  it('SIGTERM: the running generation completes, new work is refused, exit code 0', async () => {
    const child = startServe(['--dir', model.path, '--port', '0', '--max-batch', '1']);
    try {
      await waitFor('ready', () => child.lines.some((l) => l.msg === 'ready'), 60_000);
      const port = Number(child.lines.find((l) => l.msg === 'listening')?.port);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const idle = new http.Agent({ keepAlive: true, maxSockets: 1 });
      expect((await request(idle, port, 'GET', '/ready')).status).toBe(200);
      // Loopback only by default: the machine's other addresses refuse the connection.
      expect(child.lines.find((l) => l.msg === 'listening')?.host).toBe('127.0.0.1');
      const external = Object.values(os.networkInterfaces())
        .flat()
        .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
      if (external) expect(await tryConnect(port, external)).toBe('ECONNREFUSED');

      const running = request(agent, port, 'POST', '/v1/completions', { prompt: 'hello', max_tokens: 2000, temperature: 0 });
      await waitFor('generation running', async () =>
        (await request(idle, port, 'GET', '/metrics')).body.includes('tinyforge_active_batch_size 1')
      );
      child.proc.kill('SIGTERM');
      await waitFor('draining', () => child.lines.some((l) => l.msg === 'draining'), 5000);

      // New connections are refused (the listen socket is closed)...
      expect(await tryConnect(port, '127.0.0.1')).toBe('ECONNREFUSED');
      // ...and a kept-alive connection gets 503 for a new generation while /ready says so too.
      const late = await request(idle, port, 'POST', '/predict', { text: 'too late' });
      expect(late.status).toBe(503);
      expect(JSON.parse(late.body)).toMatchObject({ error: { code: 'shutting_down' } });

      const done = await running;
      expect(done.status).toBe(200);
      const body = JSON.parse(done.body) as { choices: Array<{ finish_reason: string }>; usage: { completion_tokens: number } };
      expect(body.choices[0]?.finish_reason).toBe('length');
      expect(body.usage.completion_tokens).toBe(2000);
      agent.destroy();
      idle.destroy();
      expect(await child.exit).toBe(0);
      expect(child.lines.some((l) => l.msg === 'stopped')).toBe(true);
    } finally {
      child.proc.kill('SIGKILL');
    }
  });

  it('the drain is bounded: past --drain-s the running generation is cancelled with 503 and the exit is still 0', async () => {
    const child = startServe(['--dir', model.path, '--port', '0', '--drain-s', '1']);
    try {
      await waitFor('ready', () => child.lines.some((l) => l.msg === 'ready'), 60_000);
      const port = Number(child.lines.find((l) => l.msg === 'listening')?.port);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const idle = new http.Agent({ keepAlive: true, maxSockets: 1 });
      // Far longer than the drain period: the whole 2,048-token context at ~2.5 ms a token.
      const running = request(agent, port, 'POST', '/v1/completions', { prompt: 'hello', max_tokens: 4000, temperature: 0 });
      await waitFor('generation running', async () =>
        (await request(idle, port, 'GET', '/metrics')).body.includes('tinyforge_active_batch_size 1')
      );
      const killedAt = Date.now();
      child.proc.kill('SIGTERM');
      const res = await running;
      // The client hears back right after the 1 s drain period...
      expect(Date.now() - killedAt).toBeLessThan(3000);
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body)).toMatchObject({ error: { type: 'unavailable_error', code: 'shutting_down' } });
      // ...but Node's exit waits for libuv work in flight, and the interim candle engine cannot
      // stop its native call: the process ends when that call does (the ORT engine stops at the
      // next decode step).
      expect(await child.exit).toBe(0);
      agent.destroy();
      idle.destroy();
    } finally {
      child.proc.kill('SIGKILL');
    }
  });

  it("runs on the package's Node-http fallback too (what Node versions without a shipped binary get)", async () => {
    const child = startServe(['--dir', model.path, '--port', '0'], { UWS_USE_FALLBACK: '1' });
    try {
      await waitFor('ready', () => child.lines.some((l) => l.msg === 'ready'), 60_000);
      const port = Number(child.lines.find((l) => l.msg === 'listening')?.port);
      const agent = new http.Agent({ keepAlive: false });
      expect(JSON.parse((await request(agent, port, 'GET', '/health')).body)).toMatchObject({ status: 'ok', transport: 'fallback' });
      const answer = await request(agent, port, 'POST', '/predict', { text: 'hi', max_tokens: 3 });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ usage: { completion_tokens: 3 } });
      const bad = await request(agent, port, 'POST', '/v1/completions', { prompt: 'x', temperature: 'hot' });
      expect(bad.status).toBe(400);
      child.proc.kill('SIGTERM');
      expect(await child.exit).toBe(0);
    } finally {
      child.proc.kill('SIGKILL');
    }
  });

  it('takes its port from tinyforge.config.json and survives a closed stdout', async () => {
    // A free port, chosen by the kernel and released for the server to take.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = probe.address() as { port: number };
        probe.close(() => resolve(p));
      });
    });
    const project = path.join(path.dirname(model.path), 'project');
    mkdirSync(project, { recursive: true });
    writeFileSync(path.join(project, 'tinyforge.config.json'), JSON.stringify({ serve: { port } }));
    const child = startServe(['--dir', model.path], {}, project);
    try {
      await waitFor('ready', () => child.lines.some((l) => l.msg === 'ready'), 60_000);
      expect(child.lines.find((l) => l.msg === 'listening')?.port).toBe(port);
      // The log reader goes away: every later log line hits EPIPE, which must not kill the server.
      child.proc.stdout?.destroy();
      const agent = new http.Agent({ keepAlive: false });
      for (let i = 0; i < 5; i++) expect((await request(agent, port, 'GET', '/health')).status).toBe(200);
      expect((await request(agent, port, 'POST', '/predict', { text: 'hi', max_tokens: 2 })).status).toBe(200);
      expect(child.proc.exitCode).toBeNull();
      child.proc.kill('SIGTERM');
      expect(await child.exit).toBe(0);
    } finally {
      child.proc.kill('SIGKILL');
    }
  });

  it('reads the API key from --api-key-file or TINYFORGE_API_KEY', async () => {
    const keyFile = path.join(path.dirname(model.path), 'key.txt');
    writeFileSync(keyFile, 'file-key-123\n');
    for (const [args, env, key] of [
      [['--api-key-file', keyFile], {}, 'file-key-123'],
      [[], { TINYFORGE_API_KEY: 'env-key-456' }, 'env-key-456'],
    ] as const) {
      const child = startServe(['--dir', model.path, '--port', '0', ...args], env);
      try {
        await waitFor('ready', () => child.lines.some((l) => l.msg === 'ready'), 60_000);
        const url = `http://127.0.0.1:${child.lines.find((l) => l.msg === 'listening')?.port}`;
        expect((await fetch(`${url}/health`)).status).toBe(200);
        expect((await fetch(`${url}/v1/models`)).status).toBe(401);
        expect((await fetch(`${url}/v1/models`, { headers: { Authorization: `Bearer ${key}` } })).status).toBe(200);
        child.proc.kill('SIGTERM');
        expect(await child.exit).toBe(0);
      } finally {
        child.proc.kill('SIGKILL');
      }
    }
    const empty = path.join(path.dirname(model.path), 'empty.txt');
    writeFileSync(empty, '\n');
    const r = await runCli(['serve', '--dir', model.path, '--port', '0', '--api-key-file', empty], { timeoutMs: 60_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--api-key-file');
  });

  it('refuses a --dir that is not a model, run or export folder', async () => {
    const r = await runCli(['serve', '--dir', path.join(model.path, 'nope'), '--port', '0'], { timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('error[MODEL_NOT_FOUND]');
    const bad = await runCli(['serve', '--dir', model.path, '--port', 'abc'], { timeoutMs: 60_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--port');
    const spin = await runCli(['serve', '--dir', model.path, '--port', '0', '--spinning', 'yes'], { timeoutMs: 60_000 });
    expect(spin.code).toBe(2);
    expect(spin.stderr).toContain('--spinning must be on or off');
  });
});

describe('foremforge predict', () => {
  it('answers like the Generator, from a model and from a run folder (base + tinyforge.json)', async () => {
    const r = await runCli(['predict', '--dir', model.path, '--json', '--max-tokens', '6', 'What is 2+2?'], { timeoutMs: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { output: string; confidence: number; usage: { completion_tokens: number } };
    const direct = await (await Generator.load(model.path)).generate('What is 2+2?', { maxTokens: 6, temperature: 0 });
    expect(out.output).toBe(direct.text);
    expect(out.usage.completion_tokens).toBe(direct.completionTokens);
    expect(out.confidence).toBeGreaterThan(0);

    // A finished full-fine-tune run points at its model folder; a LoRA run at base + adapter.
    const run = path.join(path.dirname(model.path), 'run');
    mkdirSync(run);
    writeFileSync(path.join(run, 'tinyforge.json'), JSON.stringify({ kind: 'tinyforge.run', base: { path: model.path }, outputs: {} }));
    const fromRun = await runCli(['predict', '--dir', run, '--json', '--max-tokens', '6', 'What is 2+2?'], { timeoutMs: 120_000 });
    expect(fromRun.code).toBe(0);
    expect((JSON.parse(fromRun.stdout) as { output: string }).output).toBe(direct.text);
  }, 300_000);

  it('answers from an export folder through ONNX Runtime, like infer() greedy', async () => {
    const exported = await pipelineExport();
    try {
      const r = await runCli(['predict', '--dir', exported.dir, '--json', '--max-tokens', '6', 'What is 2+2?'], { timeoutMs: 120_000 });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as { output: string; finish_reason: string; usage: { completion_tokens: number } };
      // predict asks one user turn when the export has a chat template, as POST /predict does.
      const session = await InferenceSession.load(exported.dir);
      const chat = session.info.chatTemplate;
      session.close();
      const prompt = chat ? [{ role: 'user', content: 'What is 2+2?' }] : 'What is 2+2?';
      const direct = await infer(exported.dir, prompt, { maxTokens: 6, temperature: 0, chatTemplate: chat });
      expect(direct.usage.completionTokens).toBeGreaterThan(0);
      expect(out.output).toBe(direct.text);
      expect(out.usage.completion_tokens).toBe(direct.usage.completionTokens);
      expect(out.finish_reason).toBe(direct.finishReason === 'length' ? 'length' : 'stop');

      // Without --json the answer is printed as it is generated, then a newline.
      const plain = await runCli(['predict', '--dir', exported.dir, '--max-tokens', '6', 'What is 2+2?'], { timeoutMs: 120_000 });
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stdout).toBe(`${direct.text}\n`);
    } finally {
      exported.cleanup();
    }
  }, 300_000);

  it('refuses a tinyforge.json folder with no ONNX model in it', async () => {
    const exported = path.join(path.dirname(model.path), 'export');
    mkdirSync(exported, { recursive: true });
    writeFileSync(path.join(exported, 'tinyforge.json'), JSON.stringify({ kind: 'tinyforge.export' }));
    const fromExport = await runCli(['predict', '--dir', exported, 'hi'], { timeoutMs: 60_000 });
    expect(fromExport.code).toBe(1);
    expect(fromExport.stderr).toMatch(/^error\[NOT_FOUND\]: ONNX model not found/m);
  });
});
