"use strict";

const { inspect } = require("node:util");

/**
 * A failure reported by SQLite, or by the KV store while persisting.
 * `code` is SQLite's extended result code name, e.g. "SQLITE_CONSTRAINT_UNIQUE".
 * When the KV store failed, the KV's own error is kept as `cause`.
 */
class SqliteError extends Error {
	constructor(message, code, options) {
		super(message, options);
		this.name = "SqliteError";
		this.code = code;
	}
}

/**
 * Turns an error thrown by an engine into the error users see. Engines throw
 * errors whose `code` is a SQLite result code name, "ERR_SQLITE_RANGE" (the
 * parameters do not fit the statement) or "ERR_SQLITE_CLOSED" (SQLite's
 * SQLITE_MISUSE: a call on a closed connection).
 */
function fromEngine(error) {
	if (error instanceof SqliteError || !(error instanceof Error)) return error;
	try {
		const code = error.code;
		if (typeof code === "string" && code.startsWith("SQLITE_")) {
			return new SqliteError(error.message, code, error.cause === undefined ? undefined : { cause: error.cause });
		}
		if (code === "ERR_SQLITE_RANGE") return new RangeError(error.message);
		if (code === "ERR_SQLITE_CLOSED") return new SqliteError(error.message, "SQLITE_MISUSE");
	} catch {
		// A caller's own error (thrown by a parameter's getter) whose getters
		// throw: it is the call's error as it is.
	}
	return error;
}

/** The error for a KV call that failed: keeps the KV's error as `cause`. */
function kvFailure(method, cause, code) {
	return new SqliteError(`KV ${method} failed: ${describeCause(cause)}`, code, { cause });
}

/**
 * What a KV's error says, for a message: whatever the KV rejected with (an
 * object without toString, one whose message getter throws, a revoked Proxy)
 * gives a text, never an exception, which would skip undoing the failed
 * write.
 */
function describeCause(cause) {
	try {
		if (cause instanceof Error) return String(cause.message);
		if (cause !== null && typeof cause === "object") return inspect(cause, { depth: 1, breakLength: Number.POSITIVE_INFINITY });
		return String(cause);
	} catch {
		return "(an error that cannot be shown)";
	}
}

/**
 * The error of a call that failed on its own (`error`) after earlier
 * statements of it had changed the database, or that opened or ran in a
 * transaction, when the KV write of its group then failed too (`kvError`)
 * and undid all that: the same kind of error, saying both, with the KV
 * failure as `cause`.
 */
function lostEffects(error, kvError) {
	if (!(error instanceof Error)) return kvError;
	const message = `${describeCause(error)} (and the failed KV write of its group undid what it did, and any transaction it ran in: ${kvError.message})`;
	if (error instanceof SqliteError) return new SqliteError(message, error.code, { cause: kvError });
	// The same class, made again: a caller's own (thrown by a parameter's
	// getter) may not take these arguments, and must not keep the other
	// calls of the group from settling.
	try {
		return new error.constructor(message, { cause: kvError });
	} catch {
		return new Error(message, { cause: kvError });
	}
}

function corrupt(message) {
	return new SqliteError(message, "SQLITE_CORRUPT");
}

module.exports = { SqliteError, fromEngine, kvFailure, lostEffects, corrupt };
