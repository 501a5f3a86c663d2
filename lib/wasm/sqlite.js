"use strict";

// Loads the sqlite3 WASM module once per process: every WASM database shares
// it (one heap, one compiled module), so a database costs its page cache and
// its files, not a runtime of its own.
//
// The module is @sqlite.org/sqlite-wasm's Node build (dist/node.mjs, its
// "node" export condition). Its .wasm file is read here from the package
// directory with fs.readFileSync and handed over as `wasmBinary`, so nothing
// is ever fetched.

const fs = require("node:fs");
const { installVfs } = require("./vfs");
const { TEXT, heapAccess } = require("./heap");
const { installFunctions } = require("./functions");
// The rules, shared with the native engine (lib/policy.txt), as words.
const { RULES } = require("../policy");

const PACKAGE = "@sqlite.org/sqlite-wasm";

let loading = null;
// The module `loading` resolved to, once it has.
let loaded = null;

/**
 * The shared module, loaded on first use. A failed load is retried next
 * time, and so is one whose module broke (see `fail` below): the databases
 * opened from then on get a new module. Whether it broke is looked at here,
 * not told from `fail`, which may run with no JS stack left to call with.
 */
function loadSqlite() {
	if (loaded?.broken != null) {
		loading = null;
		loaded = null;
	}
	if (loading === null) {
		const current = load();
		loading = current;
		current.then(
			(api) => {
				if (loading === current) loaded = api;
			},
			() => {
				if (loading === current) loading = null;
			},
		);
	}
	return loading;
}

async function load() {
	const wasmPath = require.resolve(`${PACKAGE}/sqlite3.wasm`);
	const { default: sqlite3InitModule } = await import(PACKAGE);
	const wasmBinary = fs.readFileSync(wasmPath);
	const sqlite3 = await sqlite3InitModule({ wasmBinary, print() {}, printErr() {} });
	return createApi(sqlite3, wasmPath);
}

// SQLite's C stack in the module's memory. The build's own is 512 KiB,
// below which lies its static data, with nothing to stop a stack that
// outgrows it: SQLite compiles by recursion, as deep as its nesting limits
// allow (1,000 levels of subqueries or CTEs), which measured 640 KiB for a
// chain of 1,000 CTEs and would overwrite that data. This one takes its
// place, and is large enough that the JS thread's stack, on which the
// module's calls also run, overflows first (with a RangeError: see
// engine.js) in every case measured (at most 1 MiB used, Node and Bun).
// Only the pages a call touches take memory.
const STACK_SIZE = 8 * 1024 * 1024;

/** Raw access to the module for the engine: exports, heap, strings, scratch memory. */
function createApi(sqlite3, wasmPath) {
	const { wasm } = sqlite3;
	const x = wasm.exports;
	const memory = x.memory ?? wasm.memory;
	const encoder = new TextEncoder();
	const decoder = new TextDecoder("utf-8", TEXT);
	const { heap, words, peek32, cstr } = heapAccess(memory);
	const allocCString = (s) => {
		const bytes = encoder.encode(s);
		const p = alloc(bytes.length + 1);
		const h = heap();
		h.set(bytes, p);
		h[p + bytes.length] = 0;
		return p;
	};
	const alloc = (n) => {
		const p = x.sqlite3_malloc(n);
		if (!p) throw Object.assign(new Error("out of memory"), { code: "SQLITE_NOMEM" });
		return p;
	};

	/** A reusable block of WASM memory; large blocks are returned after use. */
	class Scratch {
		pointer = 0;
		capacity = 0;
		ensure(n) {
			if (n > this.capacity) {
				if (this.pointer) x.sqlite3_free(this.pointer);
				this.pointer = 0;
				this.capacity = 0;
				const size = Math.max(n, 256);
				this.pointer = alloc(size);
				this.capacity = size;
			}
			return this.pointer;
		}
		/** Frees the block if it grew past `keep` bytes. */
		trim(keep = 64 * 1024) {
			if (this.capacity > keep) {
				x.sqlite3_free(this.pointer);
				this.pointer = 0;
				this.capacity = 0;
			}
		}
	}

	/** Writes `text` as UTF-8 into `scratch`; returns [pointer, byteLength] (NUL-terminated). */
	const encodeInto = (scratch, text) => {
		const max = text.length > 1 << 20 ? Buffer.byteLength(text, "utf8") : text.length * 3;
		const p = scratch.ensure(max + 1);
		const h = heap();
		const { written } = encoder.encodeInto(text, h.subarray(p, p + max));
		h[p + written] = 0;
		return [p, written];
	};

	// Between calls, no frame is on the stack: it can move.
	const stack = alloc(STACK_SIZE);
	x._emscripten_stack_restore((stack + STACK_SIZE) & ~15);

	const vfs = installVfs(sqlite3);

	// Out-parameters of sqlite3_open_v2 and sqlite3_prepare_v3.
	const out = alloc(16);
	const staticEmpty = alloc(1);
	heap()[staticEmpty] = 0;

	// load_extension(): this build omits it, the native one has it. A stub
	// makes SQL see the same function (the authorizer refuses it, as the
	// native engine's does, and it would answer "not authorized" anyway).
	const loadExtensionName = allocCString("load_extension");
	const notAuthorized = allocCString("not authorized");
	const loadExtension = wasm.installFunction("v(pip)", (context) => {
		x.sqlite3_result_error(context, notAuthorized, -1);
	});

	const authorize = installAuthorizer(wasm, cstr);

	// The progress handler of every connection: asks the control registered
	// under the id the connection installed it with whether to stop (see
	// engine.js: a deadline, or interrupt()). Its commit and rollback hooks
	// tell that control when a statement ended its transaction.
	const controls = new Map();
	let nextControl = 1;
	const progress = {
		func: wasm.installFunction("i(p)", (id) => (controls.get(id)?.shouldStop() ? 1 : 0)),
		committed: wasm.installFunction("i(p)", (id) => {
			controls.get(id)?.transactionEnded();
			return 0;
		}),
		rolledBack: wasm.installFunction("v(p)", (id) => controls.get(id)?.transactionEnded()),
		register(control) {
			const id = nextControl++;
			controls.set(id, control);
			return id;
		},
		unregister(id) {
			controls.delete(id);
		},
	};

	// Virtual table modules of this build that the native build lacks; the
	// rest are kept (sqlite3_drop_modules takes the list to keep).
	const keepModules = ["dbstat", "fts5", "fts5vocab", "rtree", "rtree_i32", "json_each", "json_tree", "geopoly"];
	const keepList = alloc(4 * (keepModules.length + 1));
	keepModules.forEach((name, i) => {
		const p = allocCString(name); // may grow the heap: before words()
		words()[(keepList >> 2) + i] = p;
	});
	words()[(keepList >> 2) + keepModules.length] = 0;

	const api = {
		sqlite3,
		keepModules: keepList,
		x,
		wasmPath,
		heap,
		peek32,
		cstr,
		decoder,
		allocCString,
		free: (p) => x.sqlite3_free(p),
		Scratch,
		encodeInto,
		vfs,
		out,
		staticEmpty,
		loadExtension: { name: loadExtensionName, func: loadExtension },
		/** Creates extension-functions.c's functions on a connection (see functions.js); returns a result code. */
		registerFunctions: null,
		authorize,
		limits: LIMITS,
		kept: KEPT,
		progress,
		/**
		 * The error that broke the module, or null. A call that ends in a trap,
		 * or in the JS stack overflowing, may leave SQLite's memory in any
		 * state: nothing may call into the module again (see engine.js).
		 */
		broken: null,
		/** Marks the module broken by `error`; databases opened from now on load a new one. */
		fail(error) {
			if (api.broken === null) api.broken = error;
		},
	};
	// Its callbacks are installed once per module, like the others.
	api.registerFunctions = installFunctions(api);
	return api;
}

// The authorizer of every connection: src/policy.rs, as rusqlite's
// AuthAction hands it the arguments.
const { SQLITE_PRAGMA, SQLITE_ATTACH, SQLITE_FUNCTION, SQLITE_DENY, SQLITE_IGNORE } = require("./constants");
// The pragma rules: by pragma name, its rule's kind and values.
const PRAGMA_RULES = new Map(
	RULES.filter(([kind]) => kind !== "limit" && kind !== "kept").map(([kind, name, ...values]) => [
		name,
		{ kind, values: values.map((value) => value.toLowerCase()) },
	]),
);
// SQLite's limits by the suffix of their SQLITE_LIMIT_ names, lower case.
const LIMIT_IDS = [
	"length",
	"sql_length",
	"column",
	"expr_depth",
	"compound_select",
	"vdbe_op",
	"function_arg",
	"attached",
	"like_pattern_length",
	"variable_number",
	"trigger_depth",
	"worker_threads",
];
// The limits every connection gets: [id, value] (as src/policy.rs reads them).
const LIMITS = RULES.filter(([kind]) => kind === "limit").map(([, name, value]) => {
	const id = LIMIT_IDS.indexOf(name);
	if (id === -1 || !/^\d+$/.test(value ?? "")) throw new Error(`lib/policy.txt: bad limit rule for "${name}"`);
	return [id, Number(value)];
});
// The settings of a connection that outlive a restore, each with the words
// that set the values it reads as 0, 1, 2…, if any (as src/policy.rs kept() reads them).
const KEPT = RULES.filter(([kind]) => kind === "kept").map(([, name, ...words]) => ({ name, words }));
const asciiLower = (s) => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

/**
 * What the rules say of pragma `name` (lower case), set to `value` or read
 * (null), as src/policy.rs pragma_rule: 0 (allowed), SQLITE_DENY, or
 * SQLITE_IGNORE (a `fixed` one set to another value: it does nothing).
 */
function pragmaRule(name, value) {
	const rule = PRAGMA_RULES.get(name);
	const listed = value !== null && rule?.values.includes(asciiLower(value)) === true;
	switch (rule?.kind) {
		case "denied":
			return SQLITE_DENY;
		case "read-only":
			return value !== null ? SQLITE_DENY : 0;
		case "only":
			return value !== null && !listed ? SQLITE_DENY : 0;
		case "fixed":
			return value !== null && !listed ? SQLITE_IGNORE : 0;
		default:
			return 0;
	}
}

function installAuthorizer(wasm, cstr) {
	return wasm.installFunction("i(pipppp)", (_app, action, arg1, arg2) => {
		try {
			switch (action) {
				case SQLITE_ATTACH: {
					// Only in-memory databases may be attached, named by a
					// literal (a computed or bound name is unknown here).
					if (!arg1) return SQLITE_DENY;
					const filename = cstr(arg1);
					return filename === "" || filename === ":memory:" ? 0 : SQLITE_DENY;
				}
				case SQLITE_PRAGMA: {
					if (!arg1) return 0;
					return pragmaRule(asciiLower(cstr(arg1)), arg2 ? cstr(arg2) : null);
				}
				case SQLITE_FUNCTION:
					return arg2 && asciiLower(cstr(arg2)) === "load_extension" ? SQLITE_DENY : 0;
				default:
					return 0;
			}
		} catch {
			return 1; // SQLITE_ERROR: "authorizer malfunction"
		}
	});
}

module.exports = { loadSqlite };
