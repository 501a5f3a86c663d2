// ES module entry: the same objects as the CommonJS entry (Node and Bun read
// the names from index.js's `module.exports = { ... }`).
export * from "./index.js";
export { default } from "./index.js";
