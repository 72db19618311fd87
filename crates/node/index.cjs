'use strict';
// Hand-written entry of @tinyforge/native: wraps the generated napi loader (binding.cjs).
module.exports = require('./binding.cjs');
