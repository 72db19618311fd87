// ONNX Runtime through the native core: graphs written with writeOnnxModel, run with OnnxModel,
// checked against numbers computed here in JS; and the missing/broken library cases in child
// processes (the runtime loads once per process, so each failure needs a fresh one).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxModel, ensureRuntime, runtimeInfo, writeOnnxModel } from '@tinyforge/native';
import { tempDir } from '../helpers/tmp.js';

// Deterministic values in [-1, 1) (mulberry32), so a failure is reproducible.
function randomValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

function writeMlp(file: string, w: Float32Array, b: Float32Array): void {
  writeOnnxModel(
    {
      name: 'mlp',
      inputs: [{ name: 'X', elemType: 'float32', dims: ['batch', 4] }],
      outputs: [{ name: 'Y', elemType: 'float32', dims: ['batch', 3] }],
      initializers: [
        { name: 'W', dims: [4, 3], data: w },
        { name: 'B', dims: [3], data: b },
      ],
      nodes: [
        { opType: 'MatMul', inputs: ['X', 'W'], outputs: ['XW'] },
        { opType: 'Add', inputs: ['XW', 'B'], outputs: ['Z'] },
        { opType: 'Relu', inputs: ['Z'], outputs: ['Y'] },
      ],
      metadata: { 'tinyforge.test': 'mlp' },
    },
    file
  );
}

describe('OnnxModel', () => {
  it('computes Relu(X·W + B) like a JS reference', async () => {
    const file = path.join(tempDir(), 'mlp.onnx');
    const [w, b, x] = [randomValues(12, 1), randomValues(3, 2), randomValues(2 * 4, 3)];
    writeMlp(file, w, b);

    const model = await OnnxModel.load(file, { threads: 1 });
    expect(model.inputs).toEqual([{ name: 'X', elemType: 'float32', dims: [-1, 4], dimNames: ['batch', ''] }]);
    expect(model.outputs).toEqual([{ name: 'Y', elemType: 'float32', dims: [-1, 3], dimNames: ['batch', ''] }]);

    const out = await model.run({ X: { dims: [2, 4], data: x } });
    expect(Object.keys(out)).toEqual(['Y']);
    const y = out.Y!;
    expect(y.dims).toEqual([2, 3]);
    expect(y.data).toBeInstanceOf(Float32Array);
    const yData = y.data as Float32Array;
    for (let r = 0; r < 2; r++) {
      for (let c = 0; c < 3; c++) {
        let z = b[c]!;
        for (let k = 0; k < 4; k++) z += x[r * 4 + k]! * w[k * 3 + c]!;
        expect(Math.abs(yData[r * 3 + c]! - Math.max(z, 0))).toBeLessThan(1e-5);
      }
    }
    // The inputs really exercise both branches of Relu.
    expect(yData.some((v) => v === 0)).toBe(true);
    expect(yData.some((v) => v > 0)).toBe(true);

    const info = runtimeInfo();
    expect(info?.version).toMatch(/^1\.\d+\.\d+/);
    expect(path.isAbsolute(info!.libraryPath)).toBe(true);
    expect(info!.libraryPath.endsWith('libonnxruntime.so.1')).toBe(true);
    expect(ensureRuntime()).toEqual(info);
  });

  it('gathers rows with int64 ids and returns int32 outputs', async () => {
    const file = path.join(tempDir(), 'gather.onnx');
    const table = randomValues(5 * 2, 7);
    writeOnnxModel(
      {
        inputs: [{ name: 'ids', elemType: 'int64', dims: ['batch', 'seq'] }],
        outputs: [
          { name: 'emb', elemType: 'float32', dims: ['batch', 'seq', 2] },
          { name: 'ids32', elemType: 'int32', dims: ['batch', 'seq'] },
        ],
        initializers: [{ name: 'table', dims: [5, 2], data: table }],
        nodes: [
          { opType: 'Gather', inputs: ['table', 'ids'], outputs: ['emb'], attributes: [{ name: 'axis', int: 0 }] },
          { opType: 'Cast', inputs: ['ids'], outputs: ['ids32'], attributes: [{ name: 'to', int: 6 }] },
        ],
      },
      file
    );
    const model = await OnnxModel.load(file);
    const ids = [4, 0, 2];
    const out = await model.run({ ids: { dims: [1, 3], data: BigInt64Array.from(ids.map(BigInt)) } });
    expect(out.emb!.dims).toEqual([1, 3, 2]);
    expect(Array.from(out.emb!.data as Float32Array)).toEqual(ids.flatMap((id) => [table[id * 2]!, table[id * 2 + 1]!]));
    expect(out.ids32!.data).toBeInstanceOf(Int32Array);
    expect(Array.from(out.ids32!.data as Int32Array)).toEqual(ids);
  });

  it('runs concurrently off the event loop with identical results', async () => {
    const file = path.join(tempDir(), 'mlp.onnx');
    writeMlp(file, randomValues(12, 4), randomValues(3, 5));
    const model = await OnnxModel.load(file);
    const x = randomValues(64 * 4, 6);
    const runs = Array.from({ length: 8 }, () => model.run({ X: { dims: [64, 4], data: x } }));
    const first = await runs[0]!;
    for (const r of await Promise.all(runs)) expect(r.Y!.data).toEqual(first.Y!.data);
  });

  it('keeps the event loop free while a run is in flight', async () => {
    const file = path.join(tempDir(), 'big.onnx');
    const [k, n] = [256, 2048];
    writeOnnxModel(
      {
        inputs: [{ name: 'X', elemType: 'float32', dims: ['rows', k] }],
        outputs: [{ name: 'Y', elemType: 'float32', dims: ['rows', n] }],
        initializers: [{ name: 'W', dims: [k, n], data: randomValues(k * n, 8) }],
        nodes: [{ opType: 'MatMul', inputs: ['X', 'W'], outputs: ['Y'] }],
      },
      file
    );
    const model = await OnnxModel.load(file, { threads: 1 });
    const x = randomValues(512 * k, 9);
    let ticks = 0;
    let done = false;
    const spin = (): void => {
      if (done) return;
      ticks++;
      setImmediate(spin);
    };
    setImmediate(spin);
    // ~270 MFLOP per run: milliseconds of work that must happen on a worker thread.
    for (let i = 0; i < 3; i++) await model.run({ X: { dims: [512, k], data: x } });
    done = true;
    expect(ticks).toBeGreaterThan(3);
  });

  it('reports coded errors for bad models, feeds and specs', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'mlp.onnx');
    writeMlp(file, randomValues(12, 1), randomValues(3, 2));
    const model = await OnnxModel.load(file);
    await expect(model.run({ X: { dims: [1, 4], data: new Int32Array(4) } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(model.run({ X: { dims: [1, 5], data: new Float32Array(5) } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(model.run({})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(OnnxModel.load(path.join(dir, 'absent.onnx'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    writeFileSync(path.join(dir, 'junk.onnx'), 'not a model');
    await expect(OnnxModel.load(path.join(dir, 'junk.onnx'))).rejects.toMatchObject({ code: 'ONNX_MODEL_LOAD' });
    await expect(OnnxModel.load(file, { optimization: 'max' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });

    const base = { inputs: [{ name: 'X', elemType: 'float32', dims: [1] }], outputs: [{ name: 'Y', elemType: 'float32', dims: [1] }] };
    expect(() =>
      writeOnnxModel({ ...base, nodes: [{ opType: 'Relu', inputs: ['nope'], outputs: ['Y'] }] }, path.join(dir, 'a.onnx'))
    ).toThrow(expect.objectContaining({ code: 'ONNX_GRAPH_INVALID' }));
    const twoValues = [{ name: 'alpha', float: 1, int: 2 }];
    expect(() =>
      writeOnnxModel(
        { ...base, nodes: [{ opType: 'Elu', inputs: ['X'], outputs: ['Y'], attributes: twoValues }] },
        path.join(dir, 'b.onnx')
      )
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() =>
      writeOnnxModel({ ...base, inputs: [{ name: 'X', elemType: 'float33', dims: [1] }], nodes: [] }, path.join(dir, 'c.onnx'))
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

// A fresh node process that tries to load a model with TINYFORGE_ORT_LIB pointing at `lib`.
function loadInChild(lib: string, modelPath: string) {
  const script = `
    const native = require('@tinyforge/native');
    native.OnnxModel.load(${JSON.stringify(modelPath)}).then(
      () => { console.log(JSON.stringify({ ok: true })); },
      (err) => { console.log(JSON.stringify({ code: err.code, message: err.message, suggestion: err.suggestion })); process.exitCode = 3; },
    );`;
  const started = Date.now();
  const child = spawnSync(process.execPath, ['-e', script], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    env: { ...process.env, TINYFORGE_ORT_LIB: lib },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { ...child, elapsedMs: Date.now() - started };
}

describe('ONNX Runtime library errors (child processes)', () => {
  it('a missing library is ORT_LIBRARY_NOT_FOUND naming the path, and the process exits promptly', () => {
    const file = path.join(tempDir(), 'mlp.onnx');
    writeMlp(file, randomValues(12, 1), randomValues(3, 2));
    const child = loadInChild('/nonexistent/libonnxruntime.so.1', file);
    expect(child.error).toBeUndefined(); // not killed by the timeout
    expect(child.signal).toBeNull(); // no abort
    expect(child.status).toBe(3);
    const result = JSON.parse(child.stdout.trim());
    expect(result.code).toBe('ORT_LIBRARY_NOT_FOUND');
    expect(result.message).toContain('/nonexistent/libonnxruntime.so.1');
    expect(result.suggestion).toContain('TINYFORGE_ORT_LIB');
  });

  it('a file that is not a shared library is ORT_LIBRARY_LOAD', () => {
    const dir = tempDir();
    const fake = path.join(dir, 'libonnxruntime.so.1');
    writeFileSync(fake, 'definitely not an ELF file\n');
    const file = path.join(dir, 'mlp.onnx');
    writeMlp(file, randomValues(12, 1), randomValues(3, 2));
    const child = loadInChild(fake, file);
    expect(child.error).toBeUndefined();
    expect(child.signal).toBeNull();
    expect(child.status).toBe(3);
    expect(JSON.parse(child.stdout.trim()).code).toBe('ORT_LIBRARY_LOAD');
  });

  it('the real library loads in a fresh process through the same path', () => {
    const file = path.join(tempDir(), 'mlp.onnx');
    writeMlp(file, randomValues(12, 1), randomValues(3, 2));
    const real = runtimeInfo()?.libraryPath ?? ensureRuntime().libraryPath;
    const child = loadInChild(real, file);
    expect(child.status, child.stderr).toBe(0);
    expect(JSON.parse(child.stdout.trim())).toEqual({ ok: true });
  });
});
