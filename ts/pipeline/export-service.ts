// The service files of an export folder: `service-template/` (server.mjs, package.json, .npmrc,
// Dockerfile, .dockerignore, README.md) plus vendor/, the packed serve modules and native addon
// (export-service-pack.ts). With them the folder is a deployable service on its own:
// `npm install --omit=dev && node server.mjs` runs `foremforge serve --dir <folder>` without a
// TinyForge checkout. Written into the staging folder, so they land with the model atomically.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../config/project.js';
import { ForgeError } from '../errors.js';
import { externalDataFile } from './export-files.js';
import { packNative, packServeModules, serveDependencyVersions } from './export-service-pack.js';

/** Copied from service-template/ as they are (package.json and Dockerfile get filled in). */
export const SERVICE_TEMPLATE_FILES = ['.dockerignore', '.npmrc', 'Dockerfile', 'README.md', 'package.json', 'server.mjs'] as const;
export const VENDOR_FILES = ['vendor/tinyforge-native.tar', 'vendor/tinyforge.tar'] as const;
/** Every file the service adds to an export folder, sorted. */
export const SERVICE_FILES: readonly string[] = [...SERVICE_TEMPLATE_FILES, ...VENDOR_FILES].sort();

/** The one Dockerfile line naming the model file; the template names the int8 default. */
const DOCKER_MODEL_COPY = /^COPY onnx\/\S+ \.\/onnx\/$/m;

export function serviceTemplateDir(root = packageRoot()): string {
  return path.join(root, 'service-template');
}

/**
 * The template's Dockerfile copying `modelFile` (e.g. onnx/model_q4.onnx) instead of the default,
 * and `dataFile` (its external weights, `onnx/model_q4.onnx_data`) when there is one.
 */
export function renderDockerfile(template: string, modelFile: string, dataFile?: string): string {
  const hits = template.match(new RegExp(DOCKER_MODEL_COPY.source, 'gm')) ?? [];
  if (hits.length !== 1)
    throw new ForgeError(
      'INVALID_STATE',
      `service-template/Dockerfile: expected one "COPY onnx/<file> ./onnx/" line, found ${hits.length}`
    );
  return template.replace(DOCKER_MODEL_COPY, `COPY ${[modelFile, ...(dataFile ? [dataFile] : [])].join(' ')} ./onnx/`);
}

/** The template's package.json with the npm dependencies pinned to TinyForge's own versions. */
export function renderPackageJson(template: string, versions = serveDependencyVersions()): string {
  const pkg = JSON.parse(template) as { dependencies?: Record<string, string> };
  pkg.dependencies = { ...pkg.dependencies, ...versions };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

export interface ServiceFilesResult {
  files: string[];
  /** The packed serve modules (dist/..., relative to the TinyForge root). */
  modules: string[];
}

/** Writes the service files into `dir` (an export's staging folder); `modelFile` is relative to it. */
export function writeServiceFiles(dir: string, modelFile: string): ServiceFilesResult {
  const template = serviceTemplateDir();
  for (const name of SERVICE_TEMPLATE_FILES) {
    if (!existsSync(path.join(template, name)))
      throw new ForgeError('NOT_FOUND', `${path.join(template, name)} is missing`, { suggestion: 'restore service-template/ from git' });
  }
  const read = (name: string): string => readFileSync(path.join(template, name), 'utf8');
  for (const name of ['.dockerignore', '.npmrc', 'README.md', 'server.mjs']) copyFileSync(path.join(template, name), path.join(dir, name));
  writeFileSync(path.join(dir, 'package.json'), renderPackageJson(read('package.json')));
  const dataFile = externalDataFile(modelFile);
  const withData = existsSync(path.join(dir, dataFile)) ? dataFile : undefined;
  writeFileSync(path.join(dir, 'Dockerfile'), renderDockerfile(read('Dockerfile'), modelFile, withData));
  mkdirSync(path.join(dir, 'vendor'));
  const serve = packServeModules();
  writeFileSync(path.join(dir, 'vendor/tinyforge.tar'), serve.tar);
  writeFileSync(path.join(dir, 'vendor/tinyforge-native.tar'), packNative().tar);
  return { files: [...SERVICE_FILES], modules: serve.modules.files };
}
