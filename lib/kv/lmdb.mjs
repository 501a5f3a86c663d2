// ES module entry of @rivetkit/sqlite-vfs/kv/lmdb: the CommonJS module's exports.
export * from "./lmdb.js";
