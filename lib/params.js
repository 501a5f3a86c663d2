"use strict";

// Checks and normalises statement parameters before they reach an engine.
// Engines receive either an array of values or an object keyed by parameter
// name without its sigil, holding only: null, number, bigint (64-bit),
// string and Uint8Array. Booleans become 1 and 0.

const { SqliteError } = require("./errors");
const { limitValue } = require("./policy");

const MIN_I64 = -(2n ** 63n);
const MAX_I64 = 2n ** 63n - 1n;

// %TypedArray%.prototype[Symbol.toStringTag]: the kind of a typed array
// ("Uint8Array" for a Buffer too), whatever realm made it (a vm context, a
// test sandbox); undefined for anything else, a Proxy of one included.
const typedArrayKind = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag).get;

/**
 * Whether `value` is a Uint8Array (a Buffer too), of this realm or another:
 * a typed array, not an object that only has its prototype (a Proxy around
 * one, say), whose bytes the engines could not read.
 */
function isBytes(value) {
	return typedArrayKind.call(value) === "Uint8Array";
}

// The built-in getters of a typed array's memory, which no subclass, own
// property or prototype swap can change.
const typedArrayGetter = (name) => Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), name).get;
const bufferOf = typedArrayGetter("buffer");
const byteOffsetOf = typedArrayGetter("byteOffset");
const byteLengthOf = typedArrayGetter("byteLength");

/** The number of bytes of `bytes` (see isBytes), whatever its `length` says. */
function byteLength(bytes) {
	return byteLengthOf.call(bytes);
}

/**
 * `bytes` (see isBytes) as a plain Uint8Array of this realm: itself, or a
 * view of the same memory for any other (a subclass, whose `length` or
 * `subarray` may say what they like; another realm's). What the engines
 * read of it is then what it holds.
 */
function plainBytes(bytes) {
	const proto = Object.getPrototypeOf(bytes);
	if (proto === Uint8Array.prototype || proto === Buffer.prototype) return bytes;
	const length = byteLengthOf.call(bytes);
	// (A detached buffer has no memory to view: its bytes are none.)
	return length === 0 ? new Uint8Array(0) : new Uint8Array(bufferOf.call(bytes), byteOffsetOf.call(bytes), length);
}

function normalizeValue(value, name) {
	switch (typeof value) {
		case "number":
		case "string":
			return value;
		case "boolean":
			return value ? 1 : 0;
		case "bigint":
			if (value < MIN_I64 || value > MAX_I64) {
				throw new RangeError(`Parameter ${name}: BigInt ${value} does not fit in a signed 64-bit integer`);
			}
			return value;
		case "object":
			if (value === null) return null;
			if (isBytes(value)) return plainBytes(value);
			// An array of byte values is a BLOB, as in 2.2.1 (rivetkit accepts it).
			if (Array.isArray(value)) {
				// Every index, holes included (every() would skip them).
				for (let i = 0; i < value.length; i++) {
					const b = value[i];
					if (!(Number.isInteger(b) && b >= 0 && b <= 255)) {
						throw new TypeError(`Parameter ${name}: an array binds as a BLOB only if every element is a byte (0-255)`);
					}
				}
				return Uint8Array.from(value);
			}
			if (value instanceof Uint8Array) {
				throw new TypeError(`Parameter ${name}: an object that is no typed array (a Proxy of a Uint8Array?) cannot be bound`);
			}
			if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
				throw new TypeError(`Parameter ${name}: ${value.constructor.name} cannot be bound; pass a Uint8Array or Buffer for a BLOB`);
			}
			throw new TypeError(`Parameter ${name}: ${value.constructor?.name ?? "object"} cannot be bound to SQL`);
		default:
			throw new TypeError(`Parameter ${name}: ${typeof value} cannot be bound to SQL`);
	}
}

/** The parameter a named key binds: the key without its sigil, if it has one; a lone surrogate stands for U+FFFD, as in SQL text. */
function parameterName(key) {
	const bare = /^[:@$]/.test(key) ? key.slice(1) : key;
	return bare.isWellFormed() ? bare : bare.toWellFormed();
}

/**
 * The parameters for the engine: null (none), an array (positional) or a
 * null-prototype object (named, keys without their sigil). Named keys may
 * carry their sigil (":x", "@x", "$x") or not ("x").
 */
function normalizeParams(params) {
	if (params === undefined || params === null) return null;
	if (Array.isArray(params)) {
		// Each value is read once (a getter or a Proxy runs once, and what
		// is checked is what binds), into an array of the call's own. A hole
		// reads as undefined, refused as such.
		const length = params.length;
		const values = new Array(length);
		for (let i = 0; i < length; i++) {
			const value = params[i];
			const type = typeof value;
			values[i] = type === "number" || type === "string" || value === null ? value : normalizeValue(value, `${i + 1}`);
		}
		return values;
	}
	if (typeof params === "object" && !ArrayBuffer.isView(params)) {
		const proto = Object.getPrototypeOf(params);
		// A plain object of any realm (a vm context's too): its prototype is
		// that realm's Object.prototype, whose own is null.
		if (proto === null || Object.getPrototypeOf(proto) === null) {
			const named = Object.create(null);
			const keys = Object.keys(params);
			for (const key of keys) {
				const bare = parameterName(key);
				if (bare in named) {
					const first = keys.find((other) => parameterName(other) === bare);
					throw new TypeError(
						`Parameter "${bare}" is given twice, as keys ${JSON.stringify(first)} and ${JSON.stringify(key)} (a key's sigil is taken off, and a lone surrogate stands for U+FFFD)`,
					);
				}
				named[bare] = normalizeValue(params[key], `"${key}"`);
			}
			return named;
		}
	}
	throw new TypeError("Parameters must be an array (positional) or a plain object (named)");
}

/**
 * The parameters of a call that runs later than it is made (queued behind
 * others), as they are now: normalised (see normalizeParams) into an array
 * or object of their own, with the bytes of each blob copied, so that what
 * the caller changes meanwhile does not reach the call. normalizeParams
 * gives back the same values for them.
 */
function snapshotParams(params) {
	const values = normalizeParams(params);
	if (values === null) return null;
	if (Array.isArray(values)) for (let i = 0; i < values.length; i++) values[i] = ownBytes(values[i]);
	else for (const key of Object.keys(values)) values[key] = ownBytes(values[key]);
	return values;
}

/**
 * `value`, or a copy of its bytes if it is a blob: none for one whose memory
 * is gone (its buffer detached, or shrunk past it), which binds as an empty
 * BLOB, as it does when its call runs at once.
 */
function ownBytes(value) {
	if (!isBytes(value)) return value;
	return byteLengthOf.call(value) === 0 ? new Uint8Array(0) : new Uint8Array(value);
}

// The longest SQL text of one call, in UTF-8 bytes (lib/policy.txt's
// sql_length, which SQLite applies to each text it prepares: the native
// engine prepares a script's statements one by one, the WASM engine the rest
// of the script each time; checked here whole, so both refuse the same).
const MAX_SQL_BYTES = limitValue("sql_length");

function checkSql(sql) {
	if (typeof sql !== "string") throw new TypeError(`SQL must be a string, got ${typeof sql}`);
	if (sql.includes("\0")) throw new TypeError("SQL must not contain NUL characters");
	// A UTF-16 code unit is at most 3 bytes of UTF-8 (a pair of them, 4).
	if (sql.length > MAX_SQL_BYTES / 3) {
		const bytes = Buffer.byteLength(sql, "utf8");
		if (bytes > MAX_SQL_BYTES) {
			throw new SqliteError(`SQL text of ${bytes} bytes is longer than the limit of ${MAX_SQL_BYTES}`, "SQLITE_TOOBIG");
		}
	}
	return sql;
}

module.exports = { normalizeParams, snapshotParams, checkSql, isBytes, byteLength, plainBytes };
