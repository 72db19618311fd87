// The two local npm packages a service folder installs from `vendor/`, so its server.mjs runs the
// very code `foremforge serve` runs instead of a copy that can drift:
//
//   vendor/tinyforge.tar         "tinyforge": the compiled modules `foremforge serve` imports
//                                (the import closure of dist/cli/commands/serve.js and
//                                dist/cli/errors.js), byte for byte as built
//   vendor/tinyforge-native.tar  "@tinyforge/native": the native addon and its loader, the files
//                                its package.json lists, byte for byte as the CLI loads them
//
// Their npm dependencies (uWebSockets.js, prom-client, commander; onnxruntime-node under the
// addon) come from the registry at the versions TinyForge itself pins.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from '../config/project.js';
import { ForgeError } from '../errors.js';
import { type TarEntry, tarball } from './tarball.js';

/** The modules server.mjs imports; everything else packed is what they import. */
export const SERVE_ENTRIES = ['dist/cli/commands/serve.js', 'dist/cli/errors.js'] as const;

/** npm packages the packed modules import, pinned in the service's package.json. */
export const SERVE_NPM_DEPENDENCIES = ['@trufflesuite/uws-js-unofficial', 'commander', 'prom-client'] as const;
const NATIVE_PACKAGE = '@tinyforge/native';

// tsc's output, one statement per import: static `import ... from '...'` / `export ... from
// '...'`, side-effect `import '...'`, and `import('...')` with a literal (load-engine.ts picks
// its engine that way). A literal that looks like an import inside a comment resolves to a file
// that does not exist, which fails the export loudly rather than packing too little.
const IMPORTS = [
  /^\s*(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"\n]+)['"]/gm,
  /^\s*import\s*['"]([^'"\n]+)['"]/gm,
  /\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g,
];

/** The npm package a bare specifier names (`@scope/name/deep` → `@scope/name`). */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

export interface ServeModules {
  /** Files relative to the package root, '/'-separated, sorted (dist/...). */
  files: string[];
  /** npm packages they import (node: built-ins left out). */
  packages: string[];
}

/** The import closure of SERVE_ENTRIES under `root` (the TinyForge package root). */
export function serveModules(root = packageRoot()): ServeModules {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (rel: string, from: string): void => {
    if (seen.has(rel)) return;
    const file = path.join(root, rel);
    if (!existsSync(file)) {
      throw new ForgeError('NOT_FOUND', `${file} (imported by ${from}) does not exist`, {
        suggestion: 'build the TypeScript first: npm run build:ts',
      });
    }
    seen.add(rel);
    const source = readFileSync(file, 'utf8');
    for (const re of IMPORTS) {
      for (const m of source.matchAll(re)) {
        const spec = m[1]!;
        if (spec.startsWith('.')) visit(path.posix.normalize(path.posix.join(path.posix.dirname(rel), spec)), rel);
        else if (!spec.startsWith('node:')) packages.add(packageName(spec));
      }
    }
  };
  for (const entry of SERVE_ENTRIES) visit(entry, 'server.mjs');
  return { files: [...seen].sort(), packages: [...packages].sort() };
}

type PackageJson = { name: string; version: string; license?: string; files?: string[]; dependencies?: Record<string, string> };

const readPackageJson = (file: string): PackageJson => JSON.parse(readFileSync(file, 'utf8')) as PackageJson;

/** The root package.json's pinned version of each serve dependency. */
export function serveDependencyVersions(root = packageRoot()): Record<string, string> {
  const deps = readPackageJson(path.join(root, 'package.json')).dependencies ?? {};
  const out: Record<string, string> = {};
  for (const name of SERVE_NPM_DEPENDENCIES) {
    const version = deps[name];
    if (version === undefined) throw new ForgeError('INVALID_STATE', `package.json: dependency ${name} (needed by the service) is missing`);
    out[name] = version;
  }
  return out;
}

/** vendor/tinyforge.tar: the serve modules and a package.json that makes them package "tinyforge". */
export function packServeModules(root = packageRoot()): { tar: Buffer; modules: ServeModules; version: string } {
  const modules = serveModules(root);
  const allowed = new Set<string>([...SERVE_NPM_DEPENDENCIES, NATIVE_PACKAGE]);
  const stray = modules.packages.filter((p) => !allowed.has(p));
  if (stray.length > 0) {
    throw new ForgeError('INVALID_STATE', `the serve modules import ${stray.join(', ')}, which the service folder does not install`, {
      suggestion: 'add it to SERVE_NPM_DEPENDENCIES in ts/pipeline/export-service-pack.ts, or keep it out of the serve path',
    });
  }
  const own = readPackageJson(path.join(root, 'package.json'));
  // Named "tinyforge" like the package it comes from: packageRoot() finds itself by that name.
  const pkg = {
    name: 'tinyforge',
    version: own.version,
    description: `The modules of \`foremforge serve\` from TinyForge ${own.version}, packed by \`foremforge export\` for a service folder.`,
    license: own.license ?? 'UNLICENSED',
    type: 'module',
    dependencies: serveDependencyVersions(root),
  };
  const entries: TarEntry[] = [
    { path: 'package/package.json', data: Buffer.from(`${JSON.stringify(pkg, null, 2)}\n`) },
    ...modules.files.map((f) => ({ path: `package/${f}`, data: readFileSync(path.join(root, f)) })),
  ];
  return { tar: tarball(entries), modules, version: own.version };
}

/** The folder of the @tinyforge/native package the CLI itself loads. */
export function nativePackageDir(): string {
  try {
    return path.dirname(createRequire(import.meta.url).resolve(`${NATIVE_PACKAGE}/package.json`));
  } catch (err) {
    throw new ForgeError('NATIVE_UNAVAILABLE', `${NATIVE_PACKAGE} cannot be resolved: ${(err as Error).message}`, {
      suggestion: 'build it with `npm run build:native`',
      cause: err,
    });
  }
}

/** package.json `files` patterns: names and `*.ext` globs at the package's top level. */
function listed(dir: string, patterns: string[]): string[] {
  const names = readdirSync(dir).filter((n) => statSync(path.join(dir, n)).isFile());
  const hit = (name: string, p: string): boolean => (p.startsWith('*.') ? name.endsWith(p.slice(1)) : name === p);
  return names.filter((n) => n === 'package.json' || patterns.some((p) => hit(n, p))).sort();
}

/** vendor/tinyforge-native.tar: package.json and the files it lists (loader, typings, addon). */
export function packNative(dir = nativePackageDir()): { tar: Buffer; files: string[]; version: string } {
  const pkg = readPackageJson(path.join(dir, 'package.json'));
  const files = listed(dir, pkg.files ?? []);
  if (!files.some((f) => f.endsWith('.node'))) {
    throw new ForgeError('NATIVE_UNAVAILABLE', `${dir} holds no built addon (*.node)`, {
      suggestion: 'build it with `npm run build:native`',
    });
  }
  const entries = files.map((f) => ({
    path: `package/${f}`,
    data: readFileSync(path.join(dir, f)),
    executable: (statSync(path.join(dir, f)).mode & 0o111) !== 0,
  }));
  return { tar: tarball(entries), files, version: pkg.version };
}
