// ES module entry of @rivetkit/sqlite-vfs/kv/postgres: the CommonJS module's exports.
export * from "./postgres.js";
