// Types of the ES module entry: those of the CommonJS one.
export * from "./postgres.js";
