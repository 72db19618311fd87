// The Engine contract (engine-contract.ts) on the interim candle engine, over a tiny random model.
import { CandleEngine } from '../../ts/serve/engines/candle.js';
import { describeEngineContract } from './engine-contract.js';
import { tinyModel } from './helpers.js';

describeEngineContract('candle (tiny random model)', async () => {
  const model = await tinyModel();
  return { engine: await CandleEngine.load({ model: model.path, id: 'tiny' }), cleanup: model.cleanup };
});
