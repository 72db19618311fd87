// Project setup and configuration: the tinyforge.config.json schema (one table of keys), loading
// with TINYFORGE_<KEY> env overrides, and where the project, its home and this package live.
//
// A command reads its settings as: `applyFlags(loadConfig().config, flags, { group })`, which
// gives built-in default < tinyforge.config.json < TINYFORGE_<KEY> env < command-line flag.
export { CONFIG_KEYS, type ConfigKey, type ConfigProblem, configJsonSchema, envName } from './schema.js';
export { type LoadedConfig, type TinyForgeConfig, applyFlags, defaultConfig, loadConfig, validateConfigObject } from './load.js';
export { CONFIG_FILE, HOME_DIR, findProjectRoot, packageRoot, packageVersion, tinyforgeHome } from './project.js';
