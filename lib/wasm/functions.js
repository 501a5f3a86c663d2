"use strict";

// The functions of SQLite's contrib extension-functions.c that 2.2.1 had
// and SQLite itself lacks, with 2.2.1's results: crates/engine/src/functions.rs
// (and its text.rs and stats.rs) for the native engine, function for
// function. They read their arguments with SQLite's own conversions
// (sqlite3_value_text of a REAL, sqlite3_value_int of a TEXT,
// sqlite3_value_numeric_type), on bytes as C sees them: a string ends at
// its first NUL, and a character is a byte and the continuation bytes
// (0b10xxxxxx) after it, compared by the value the extension's decoder
// gives it. Where 2.2.1 read freed or uninitialized memory, or would hang
// (replicate(s, 0), rightstr(s, -1), huge counts), they answer an empty
// string, a "domain error", or SQLITE_TOOBIG instead.

const {
	SQLITE_OK,
	SQLITE_ROW,
	SQLITE_INTEGER,
	SQLITE_NULL,
	SQLITE_UTF8,
	SQLITE_DETERMINISTIC,
	SQLITE_INNOCUOUS,
	SQLITE_TRANSIENT,
	SQLITE_LIMIT_LENGTH,
} = require("./constants");
/** Every function's flags, as on the native engine. */
const FLAGS = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;

// What a function answers.
const NULL = { kind: "null" };
const int = (value) => ({ kind: "int", value: BigInt(value) });
const real = (value) => ({ kind: "real", value });
const text = (value) => ({ kind: "text", value });
const error = (message) => ({ kind: "error", message });
const TOO_BIG = { kind: "toobig" };
const DOMAIN = error("domain error");
const EMPTY = new Uint8Array(0);

// --- Text, as text.rs ---------------------------------------------------

/** The bytes up to the first NUL. */
function cStr(bytes) {
	const end = bytes.indexOf(0);
	return end === -1 ? bytes : bytes.subarray(0, end);
}

/** How many bytes follow a first byte (4: not a first byte). */
function trailing(first) {
	if (first < 0x80) return 0;
	if (first < 0xc0) return 4;
	if (first < 0xe0) return 1;
	if (first < 0xf0) return 2;
	if (first < 0xf8) return 3;
	return 4;
}

const BITS = [0, 12416, 925824, 63447168];
const MASK = [0, 0xffffff80, 0xfffff800, 0xffff0000];

/** The value of the character at `at` (0 at the end), in C `int` arithmetic. */
function charValue(s, at) {
	const byte = (i) => (i < s.length ? s[i] : 0);
	const first = byte(at);
	const extra = trailing(first);
	if (extra === 0) return first;
	if (extra === 4) return 0xfffd;
	let c = first;
	for (let k = 1; k <= extra; k++) c = ((c << 6) + byte(at + k)) | 0;
	c = (c - BITS[extra]) | 0;
	const u = c >>> 0;
	if ((MASK[extra] & u) === 0 || (u & 0xfffff800) >>> 0 === 0xd800 || (u & 0xfffffffe) >>> 0 === 0xfffe) return 0xfffd;
	return c;
}

/** Where the character after the one at `at` starts. */
function next(s, at) {
	at += 1;
	while (at < s.length && (s[at] & 0xc0) === 0x80) at += 1;
	return at;
}

/** The start of each character of `s`. */
function starts(s) {
	const out = [];
	for (let at = 0; at < s.length; at = next(s, at)) out.push(at);
	return out;
}

function concat(parts, length) {
	const out = new Uint8Array(length);
	let at = 0;
	for (const part of parts) {
		out.set(part, at);
		at += part.length;
	}
	return out;
}

function reverse(s) {
	const out = new Uint8Array(s.length);
	let end = s.length;
	for (let at = 0; at < s.length; ) {
		const after = next(s, at);
		end -= after - at;
		out.set(s.subarray(at, after), end);
		at = after;
	}
	return out;
}

const isLower = (b) => b >= 0x61 && b <= 0x7a;
const isUpper = (b) => b >= 0x41 && b <= 0x5a;

function proper(s) {
	const out = new Uint8Array(s.length);
	let first = true;
	s.forEach((b, i) => {
		if (b === 0x20 || b === 0x09) {
			first = true;
			out[i] = b;
		} else {
			out[i] = first ? (isLower(b) ? b - 32 : b) : isUpper(b) ? b + 32 : b;
			first = false;
		}
	});
	return out;
}

function pad(s, left, right) {
	const out = new Uint8Array(left + s.length + right).fill(0x20);
	out.set(s, left);
	return out;
}

function strfilter(s, allowed) {
	const kept = [];
	let length = 0;
	const allowedStarts = starts(allowed);
	for (let at = 0; at < s.length; at = next(s, at)) {
		const c = charValue(s, at);
		const found = allowedStarts.find((start) => charValue(allowed, start) === c);
		if (found !== undefined) {
			const part = allowed.subarray(found, next(allowed, found));
			kept.push(part);
			length += part.length;
		}
	}
	return concat(kept, length);
}

function charindex(needle, haystack, skip) {
	if (needle.length === 0) return 0;
	const positions = starts(haystack);
	for (let index = skip; index < positions.length; index++) {
		let a = 0;
		let b = positions[index];
		for (;;) {
			const ca = charValue(needle, a);
			const cb = charValue(haystack, b);
			if (ca === 0) return index + 1;
			if (ca !== cb || cb === 0) break;
			a = next(needle, a);
			b = next(haystack, b);
		}
	}
	return 0;
}

function leftstr(s, n) {
	const positions = starts(s);
	return n < positions.length ? s.subarray(0, positions[n]) : s;
}

function rightstr(s, n) {
	const positions = starts(s);
	const skip = Math.max(positions.length - n, 0);
	return skip < positions.length ? s.subarray(positions[skip]) : EMPTY;
}

// The soundex digits of the bytes 64–127.
const CODES = "0012301200224550126230102020000000123012002245501262301020200000";
const isAlpha = (b) => isLower(b) || isUpper(b);

/** extension-functions.c's soundex: see text.rs. */
function soundex(s) {
	const first = s.findIndex(isAlpha);
	if (first === -1) return "?000";
	let out = String.fromCharCode(isLower(s[first]) ? s[first] - 32 : s[first]);
	for (let i = first; i < s.length && out.length < 4; i++) {
		const b = s[i] & 0x7f;
		const code = b >= 64 ? CODES[b - 64] : "0";
		if (code !== "0") out += code;
	}
	return out.padEnd(4, "0");
}

function difference(a, b) {
	const [x, y] = [soundex(a), soundex(b)];
	let same = 0;
	for (let i = 0; i < 4; i++) if (x[i] === y[i]) same++;
	return same;
}

// --- Aggregates, as stats.rs ----------------------------------------------

class Spread {
	mean = 0;
	squares = 0;
	count = 0;
	add(x) {
		this.count += 1;
		const delta = x - this.mean;
		this.mean += delta / this.count;
		this.squares += delta * (x - this.mean);
	}
	variance() {
		return this.count > 1 ? this.squares / (this.count - 1) : 0;
	}
}

const compareBig = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const compareReal = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** Distinct values in increasing order, each with its count (the first of equal ones). */
function runs(values, ints) {
	const sorted = values.slice().sort(ints ? compareBig : compareReal);
	const out = [];
	for (const v of sorted) {
		const last = out[out.length - 1];
		if (last !== undefined && last[0] === v) last[1] += 1;
		else out.push([v, 1]);
	}
	return out;
}

/** The low 32 bits of an integer, signed: a C `int` read from it. */
const asCInt = (v) => BigInt.asIntN(32, v);

function mode(sample) {
	let best;
	let most = 0;
	let ties = 0;
	for (const [v, count] of runs(sample.values, sample.ints)) {
		if (count === most) ties += 1;
		else if (count > most) {
			best = v;
			most = count;
			ties = 1;
		}
	}
	if (ties !== 1) return NULL;
	return sample.ints ? int(asCInt(best)) : real(best);
}

function quartile(sample, upper) {
	const count = sample.values.length;
	const below = upper ? (count * 3) / 4 : count / 4;
	const above = count - below;
	let seen = 0;
	let taken = 0;
	let sum = sample.ints ? 0n : 0;
	for (const [v, c] of runs(sample.values, sample.ints)) {
		const atOrBelow = (seen + c) | 0;
		const atOrAbove = (count - seen) | 0;
		if (atOrBelow >= below) {
			if (atOrAbove < above) break;
			taken += 1;
			sum = sample.ints ? BigInt.asIntN(64, sum + asCInt(v)) : sum + v;
		}
		seen += c;
	}
	if (!sample.ints) return real(sum / taken);
	return taken === 1 ? int(sum) : real(Number(sum) / taken);
}

/** A statement the functions ran failed: their call fails with its error and code. */
class StatementError extends Error {
	constructor(code, message) {
		super(message);
		this.out = { kind: "failed", code, message };
	}
}

// --- The C API ------------------------------------------------------------

/**
 * Installs the functions' callbacks in the module (once per module);
 * returns `register(db)`, which creates them on a connection and returns
 * SQLite's result code.
 */
function installFunctions(api) {
	const { x, sqlite3 } = api;
	const { wasm } = sqlite3;

	const valueText = (v) => {
		const p = x.sqlite3_value_text(v);
		if (!p) return EMPTY;
		const n = x.sqlite3_value_bytes(v);
		return api.heap().slice(p, p + n);
	};
	/** A text argument as C sees it, or null if NULL. */
	const textArg = (v) => (x.sqlite3_value_type(v) === SQLITE_NULL ? null : cStr(valueText(v)));
	const isNull = (v) => x.sqlite3_value_type(v) === SQLITE_NULL;
	const lengthLimit = (ctx) => x.sqlite3_limit(x.sqlite3_context_db_handle(ctx), SQLITE_LIMIT_LENGTH, -1);

	const set = (ctx, out) => {
		switch (out.kind) {
			case "null":
				return x.sqlite3_result_null(ctx);
			case "int":
				return x.sqlite3_result_int64(ctx, out.value);
			case "real":
				return x.sqlite3_result_double(ctx, out.value);
			case "text": {
				const bytes = out.value;
				const p = x.sqlite3_malloc(bytes.length + 1);
				if (!p) return x.sqlite3_result_error_nomem(ctx);
				api.heap().set(bytes, p);
				x.sqlite3_result_text(ctx, p, bytes.length, SQLITE_TRANSIENT);
				return x.sqlite3_free(p);
			}
			case "toobig":
				return x.sqlite3_result_error_toobig(ctx);
			case "failed": {
				// The statement's error, with its code (SQLITE_INTERRUPT, say).
				const p = api.allocCString(out.message);
				x.sqlite3_result_error(ctx, p, -1);
				x.sqlite3_free(p);
				return x.sqlite3_result_error_code(ctx, out.code);
			}
			default: {
				const p = api.allocCString(out.message);
				x.sqlite3_result_error(ctx, p, -1);
				return x.sqlite3_free(p);
			}
		}
	};
	const answer = (ctx, f) => {
		let out;
		try {
			out = f();
		} catch (thrown) {
			out = thrown instanceof StatementError ? thrown.out : error("internal error in a SQL function");
		}
		set(ctx, out);
	};

	const pads = {
		padl: (n) => [n, 0],
		padr: (n) => [0, n],
		padc: (n) => [Math.floor(n / 2), n - Math.floor(n / 2)],
	};
	const padWith =
		(split) =>
		(ctx, [value, width]) => {
			const s = textArg(value);
			if (s === null) return NULL;
			const w = x.sqlite3_value_int64(width);
			if (w < 0n) return DOMAIN;
			const chars = BigInt(starts(s).length);
			const missing = w > chars ? w - chars : 0n;
			if (BigInt(s.length) + missing > BigInt(lengthLimit(ctx))) return TOO_BIG;
			return text(pad(s, ...split(Number(missing))));
		};
	// tan(), tanh() and atan2() as musl computes them: 2.2.1 was musl
	// compiled to WASM, and so is this build's SQLite, whose own math
	// functions call them (the native engine uses the libm crate, musl's in
	// Rust). JS's Math functions are the runtime's: V8's fdlibm, or the
	// platform's libm on Bun, which differ in the last bit for some values.
	const libmSql = {
		tan: api.allocCString("SELECT tan(?1)"),
		tanh: api.allocCString("SELECT tanh(?1)"),
		atan2: api.allocCString("SELECT atan2(?1, ?2)"),
	};
	const statement = x.sqlite3_malloc(4);
	/** Runs libm's `name` on `args` through a statement of the call's connection (NaN for NULL). */
	const libm = (ctx, name, ...args) => {
		const db = x.sqlite3_context_db_handle(ctx);
		let rc = x.sqlite3_prepare_v2(db, libmSql[name], -1, statement, 0);
		if (rc !== SQLITE_OK) throw new StatementError(rc, api.cstr(x.sqlite3_errmsg(db)));
		const stmt = api.peek32(statement);
		try {
			args.forEach((arg, i) => x.sqlite3_bind_double(stmt, i + 1, arg));
			rc = x.sqlite3_step(stmt);
			if (rc !== SQLITE_ROW) throw new StatementError(rc, api.cstr(x.sqlite3_errmsg(db)));
			return x.sqlite3_column_type(stmt, 0) === SQLITE_NULL ? Number.NaN : x.sqlite3_column_double(stmt, 0);
		} finally {
			x.sqlite3_finalize(stmt);
		}
	};
	const math1 =
		(f) =>
		(ctx, [v]) =>
			isNull(v) ? NULL : real(f(ctx, x.sqlite3_value_double(v)));

	const scalars = {
		reverse: [[1], (_ctx, [v]) => (isNull(v) ? NULL : text(reverse(textArg(v))))],
		proper: [[1], (_ctx, [v]) => (isNull(v) ? NULL : text(proper(textArg(v))))],
		padl: [[2], padWith(pads.padl)],
		padr: [[2], padWith(pads.padr)],
		padc: [[2], padWith(pads.padc)],
		leftstr: [
			[2],
			(_ctx, [v, count]) => {
				if (isNull(v) || isNull(count)) return NULL;
				return text(leftstr(textArg(v), Math.max(x.sqlite3_value_int(count), 0)));
			},
		],
		rightstr: [
			[2],
			(_ctx, [v, count]) => {
				if (isNull(v) || isNull(count)) return NULL;
				const s = textArg(v);
				const n = x.sqlite3_value_int(count);
				// 2.2.1 read before the string for a negative count.
				return n < 0 ? DOMAIN : text(rightstr(s, n));
			},
		],
		replicate: [
			[2],
			(ctx, [v, count]) => {
				if (isNull(v)) return NULL;
				const times = x.sqlite3_value_int64(count);
				if (times < 0n) return DOMAIN;
				const bytes = x.sqlite3_value_bytes(v);
				const s = cStr(valueText(v));
				// 2.2.1 copied each repetition `bytes` apart: with a NUL
				// inside, the result ended after the first.
				if (times === 0n || s.length === 0) return text(EMPTY);
				if (s.length < bytes) return text(s);
				if (BigInt(s.length) * times > BigInt(lengthLimit(ctx))) return TOO_BIG;
				const n = Number(times);
				const out = new Uint8Array(s.length * n);
				for (let i = 0; i < n; i++) out.set(s, i * s.length);
				return text(out);
			},
		],
		charindex: [
			[2, 3],
			(_ctx, [needle, haystack, start]) => {
				if (isNull(needle) || isNull(haystack)) return NULL;
				const a = textArg(needle);
				const b = textArg(haystack);
				const skip = start === undefined ? 0 : Math.max((x.sqlite3_value_int(start) - 1) | 0, 0);
				return int(charindex(a, b, skip));
			},
		],
		strfilter: [[2], (_ctx, [a, b]) => (isNull(a) || isNull(b) ? NULL : text(strfilter(textArg(a), textArg(b))))],
		difference: [[2], (_ctx, [a, b]) => (isNull(a) || isNull(b) ? NULL : int(difference(textArg(a), textArg(b))))],
		square: [
			[1],
			(_ctx, [v]) => {
				const type = x.sqlite3_value_type(v);
				if (type === SQLITE_NULL) return NULL;
				if (type === SQLITE_INTEGER) {
					const i = x.sqlite3_value_int64(v);
					return int(BigInt.asIntN(64, i * i));
				}
				const r = x.sqlite3_value_double(v);
				return real(r * r);
			},
		],
		atn2: [
			[2],
			(ctx, [y, xv]) => (isNull(y) || isNull(xv) ? NULL : real(libm(ctx, "atan2", x.sqlite3_value_double(y), x.sqlite3_value_double(xv)))),
		],
		cot: [[1], math1((ctx, r) => 1 / libm(ctx, "tan", r))],
		coth: [[1], math1((ctx, r) => 1 / libm(ctx, "tanh", r))],
	};

	// Aggregates: their state by aggregate context pointer, from the first
	// step to the final call (which SQLite makes for every context a step
	// allocated, also when a statement is reset before the end).
	const states = new Map();
	const spreadStep = (spread, v) => {
		if (x.sqlite3_value_numeric_type(v) !== SQLITE_NULL) spread.add(x.sqlite3_value_double(v));
	};
	const sampleStep = (sample, v) => {
		const type = x.sqlite3_value_numeric_type(v);
		if (type === SQLITE_NULL) return;
		if (sample.ints === null) sample.ints = type === SQLITE_INTEGER;
		sample.values.push(sample.ints ? x.sqlite3_value_int64(v) : x.sqlite3_value_double(v));
	};
	const newSample = () => ({ ints: null, values: [] });
	const sampleFinal = (f) => (sample) => (sample.ints === null ? NULL : f(sample));
	const aggregates = {
		stdev: [() => new Spread(), spreadStep, (s) => real(Math.sqrt(s.variance()))],
		variance: [() => new Spread(), spreadStep, (s) => real(s.variance())],
		mode: [newSample, sampleStep, sampleFinal(mode)],
		lower_quartile: [newSample, sampleStep, sampleFinal((s) => quartile(s, false))],
		upper_quartile: [newSample, sampleStep, sampleFinal((s) => quartile(s, true))],
	};

	const argsOf = (argc, argv) => {
		const args = [];
		for (let i = 0; i < argc; i++) args.push(api.peek32(argv + 4 * i));
		return args;
	};
	const registrations = [];
	for (const [name, [arities, f]] of Object.entries(scalars)) {
		const func = wasm.installFunction("v(pip)", (ctx, argc, argv) => answer(ctx, () => f(ctx, argsOf(argc, argv))));
		for (const nArg of arities) registrations.push({ name: api.allocCString(name), nArg, func, step: 0, final: 0 });
	}
	for (const [name, [init, step, final]] of Object.entries(aggregates)) {
		const stepFunc = wasm.installFunction("v(pip)", (ctx, _argc, argv) => {
			const p = x.sqlite3_aggregate_context(ctx, 8);
			if (!p) return x.sqlite3_result_error_nomem(ctx);
			try {
				let state = states.get(p);
				if (state === undefined) {
					state = init();
					states.set(p, state);
				}
				step(state, api.peek32(argv));
			} catch {
				set(ctx, error("internal error in a SQL function"));
			}
		});
		const finalFunc = wasm.installFunction("v(p)", (ctx) => {
			const p = x.sqlite3_aggregate_context(ctx, 0);
			const state = (p && states.get(p)) || init();
			if (p) states.delete(p);
			answer(ctx, () => final(state));
		});
		registrations.push({ name: api.allocCString(name), nArg: 1, func: 0, step: stepFunc, final: finalFunc });
	}

	return function register(db) {
		for (const r of registrations) {
			const rc = x.sqlite3_create_function_v2(db, r.name, r.nArg, FLAGS, 0, r.func, r.step, r.final, 0);
			if (rc !== SQLITE_OK) return rc;
		}
		return SQLITE_OK;
	};
}

module.exports = { installFunctions };
