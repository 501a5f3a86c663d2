"use strict";

// @rivetkit/sqlite-vfs: a real SQLite database per actor, persisted in the
// actor's KV store. Hand-written entry point; binding.js is generated.

const { open, SqliteVfs } = require("./lib/open");
const { SqliteVfsPool, PooledSqliteHandle } = require("./lib/pool");
const { Database } = require("./lib/database");
const { SqliteError } = require("./lib/errors");
const { createMemoryKv } = require("./lib/memory-kv");
const { DEFAULT_LIMITS } = require("./lib/format");

module.exports = {
	open,
	Database,
	SqliteVfs,
	SqliteVfsPool,
	PooledSqliteHandle,
	SqliteError,
	createMemoryKv,
	DEFAULT_KV_LIMITS: DEFAULT_LIMITS,
};
