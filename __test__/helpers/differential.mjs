// The differential test's machinery (__test__/differential.test.mjs and
// scripts/differential.mjs): runs a workload on this package, over a KV with
// random latency and faults, and on a reference SQLite in memory, and checks
// that they agree. The rules are documented at the top of the test file.

import { open, createMemoryKv, SqliteError } from "../../index.mjs";
import { createReference, dumpWith, canonicalRows } from "./reference.mjs";
import { prng } from "./random.mjs";

/** Small limits, so that most large writes take the journal path. */
export const LIMITS = Object.freeze({ maxKeysPerCall: 8, maxBatchBytes: 64 * 1024 });

const METHODS = ["get", "getBatch", "put", "putBatch", "deleteBatch"];
const MUTATIONS = new Set(["put", "putBatch", "deleteBatch"]);
/** The rollback journal's metadata key (kv-format.md). */
const JOURNAL_META = new Uint8Array([0x08, 0x01, 0x00, 0x01]);
const isJournalMeta = (key) => key.length === 4 && key.every((byte, i) => byte === JOURNAL_META[i]);

/** The error the chaos KV fails with. */
export class InjectedFault extends Error {
	constructor(mode, method, n) {
		super(`injected ${mode} ${method} failure (KV call ${n} of the step)`);
		this.name = "InjectedFault";
		this.mode = mode;
	}
}

/**
 * Fault modes: "throw" (synchronously, nothing applied), "reject" (nothing
 * applied), "applied" (a mutation applied, then rejected: an unknown outcome,
 * like a network timeout). Plans may also name "lost" (a mutation that
 * resolves without being applied: a KV that lies, which no database can
 * survive; the test of the test uses it).
 */
export const FAULT_MODES = ["throw", "reject", "applied"];

/**
 * A KV over the memory KV `store`, with seeded random latency (none, or a 0–2
 * ms timer) and faults as `plan` says: `{ rate }` (each call fails with that
 * probability, in a random one of `modes`, all by default), `{ at: { n: mode } }`
 * (the n-th call since `plan` was set fails) or `{ atMutation: { n: mode } }`
 * (the n-th put or delete). `onFault(mode)` is called when a call is chosen to
 * fail, `onCall(n, method, arg, mode)` as each call is made (`mode`: its
 * fault, or undefined), and `onMutation(mode, after)` after each mutation the
 * store applied, where `after` says the mutation was made once every fault
 * chosen before it had reached its caller, and no fault was chosen while it
 * ran: it belongs to a later write than those faults, not to a call sent
 * alongside a failing one (a large commit sends several at once).
 */
export function createChaosKv(store, random, { latency = true } = {}) {
	const kv = {
		store,
		plan: null,
		calls: 0,
		mutations: 0,
		journals: 0,
		faults: [],
		// Faults whose error reached the caller.
		delivered: 0,
		errors: [],
		onFault: null,
		onMutation: null,
		onCall: null,
		setPlan(plan) {
			kv.plan = plan;
			kv.calls = 0;
			kv.mutations = 0;
		},
		onError(error) {
			kv.errors.push(error);
		},
	};
	const decide = (method, n) => {
		const plan = kv.plan;
		let mode = null;
		if (plan?.at) mode = plan.at[n] ?? null;
		else if (plan?.atMutation) mode = MUTATIONS.has(method) ? (plan.atMutation[++kv.mutations] ?? null) : null;
		else if (plan?.rate && (!plan.writesOnly || MUTATIONS.has(method)) && random() < plan.rate) {
			const modes = plan.modes ?? FAULT_MODES;
			mode = modes[Math.floor(random() * modes.length)];
		}
		if ((mode === "applied" || mode === "lost") && !MUTATIONS.has(method)) mode = "reject";
		if (!mode) return null;
		const fault = { n, method, mode, error: mode === "lost" ? null : new InjectedFault(mode, method, n) };
		kv.faults.push(fault);
		kv.onFault?.(mode);
		return fault;
	};
	for (const method of METHODS) {
		kv[method] = (arg, value) => {
			const n = ++kv.calls;
			const fault = decide(method, n);
			const mode = fault?.mode;
			kv.onCall?.(n, method, arg, mode);
			const delay = latency && random() < 0.7 ? Math.floor(random() * 3) : -1;
			const faultsAtIssue = kv.faults.length;
			const afterFaults = kv.delivered === faultsAtIssue;
			const deliver = () => {
				kv.delivered++;
				throw fault.error;
			};
			if (mode === "throw") deliver();
			return (async () => {
				if (delay >= 0) await new Promise((resolve) => setTimeout(resolve, delay));
				if (mode === "reject") deliver();
				if (mode === "lost") {
					// The caller hears of no fault, but has its answer.
					kv.delivered++;
					return undefined;
				}
				const result = await store[method](arg, value);
				if (method === "putBatch" && arg.some(([key]) => isJournalMeta(key))) kv.journals++;
				if (MUTATIONS.has(method)) kv.onMutation?.(mode ?? null, afterFaults && kv.faults.length === faultsAtIssue);
				if (mode === "applied") deliver();
				return result;
			})();
		};
	}
	return kv;
}

/** Whether `error` says the KV failed: an IOERR code or a KV error anywhere in its causes. */
export function isKvFailure(error, seen = new Set()) {
	if (error === null || typeof error !== "object" || seen.has(error)) return false;
	seen.add(error);
	if (error instanceof InjectedFault) return true;
	if (typeof error.code === "string" && error.code.startsWith("SQLITE_IOERR")) return true;
	if (Array.isArray(error.errors) && error.errors.some((e) => isKvFailure(e, seen))) return true;
	return isKvFailure(error.cause, seen);
}

/** A call: `exec` of statements (a string or an array), or `run` / `query` of one statement with params. */
export function call(method, sql, params) {
	if (method === "exec") {
		const stmts = Array.isArray(sql) ? sql : [sql];
		return { method, sql: stmts.join("; "), stmts, params: undefined };
	}
	return { method, sql, stmts: [sql], params };
}

const describeCall = (c) => {
	const params = c.params?.map((p) => (p instanceof Uint8Array ? `<${p.length} bytes>` : JSON.stringify(p)));
	return `${c.method}(${JSON.stringify(c.sql.length > 160 ? `${c.sql.slice(0, 160)}…` : c.sql)}${params ? `, [${params.join(", ")}]` : ""})`;
};

// The files of the storage format's key tags.
const FILES = ["main", "journal", "wal", "shm"];

/** A KV call in short, for traces: how many keys of each kind, and the file sizes it writes. */
function describeKvCall(method, arg) {
	const keys = method === "putBatch" ? arg.map(([key]) => key) : Array.isArray(arg) ? arg : [arg];
	const kinds = new Map();
	for (const key of keys) {
		const kind = `${FILES[key[3]] ?? key[3]} ${key[2] === 0 ? "meta" : "chunk"}`;
		kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
	}
	const sizes =
		method === "putBatch"
			? arg
					.filter(([key]) => key[2] === 0)
					.map(([key, value]) => `, ${FILES[key[3]] ?? key[3]} size ${new DataView(value.buffer, value.byteOffset).getBigUint64(2, true)}`)
			: [];
	return `${method} ${[...kinds].map(([kind, n]) => `${n}× ${kind}`).join(", ")}${sizes.join("")}`;
}

const bulk = (table, rows, size, tag) =>
	`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows}) ` +
	`INSERT INTO ${table}(k, v, b) SELECT i % 97, '${tag}-' || i, CAST(printf('%.*c', ${size}, char(65 + i % 26)) AS BLOB) FROM n`;

export const SETUP = [
	"CREATE TABLE t1(id INTEGER PRIMARY KEY, k INTEGER, v TEXT, b BLOB)",
	"CREATE TABLE t2(id INTEGER PRIMARY KEY, k INTEGER, v TEXT, b BLOB)",
];

/**
 * Random workloads: each step is a batch of calls issued together (one, or
 * up to five unawaited) and the KV faults for it. Only deterministic SQL (no
 * randomblob(), no clock), so the reference computes the same.
 */
export function createGenerator(random, { avoid = new Set(), incrementalVacuum = false } = {}) {
	const int = (n) => Math.floor(random() * n);
	const pick = (list) => list[int(list.length)];
	const weighted = (entries) => {
		let r = random() * entries.reduce((n, [w]) => n + w, 0);
		for (const [w, make] of entries) {
			r -= w;
			if (r < 0) return make();
		}
		return entries.at(-1)[1]();
	};
	let serial = 0;
	const table = () => pick(["t1", "t1", "t2"]);
	const blob = (n) => {
		const bytes = new Uint8Array(n);
		for (let i = 0; i < n; i += 4) {
			const x = (random() * 2 ** 32) >>> 0;
			bytes[i] = x;
			bytes[i + 1] = x >>> 8;
			bytes[i + 2] = x >>> 16;
			bytes[i + 3] = x >>> 24;
		}
		return bytes;
	};
	const statement = () => {
		const t = table();
		const s = `s${int(2)}`;
		return weighted([
			[6, () => `INSERT INTO ${t}(k, v) VALUES (${int(100)}, 'lit${++serial}')`],
			[3, () => `INSERT INTO ${t}(id, k, v) VALUES (${1 + int(40)}, ${int(100)}, 'id${++serial}')`],
			[4, () => `UPDATE ${t} SET v = v || '+', k = k + 1 WHERE k % ${2 + int(5)} = ${int(2)}`],
			[3, () => `DELETE FROM ${t} WHERE k % ${2 + int(6)} = 0`],
			[3, () => bulk(t, 5 + int(80), 100 + int(1400), `bulk${++serial}`)],
			[4, () => "BEGIN"],
			[3, () => "COMMIT"],
			[2, () => "ROLLBACK"],
			[2, () => `SAVEPOINT ${s}`],
			[2, () => `RELEASE ${s}`],
			[1, () => `ROLLBACK TO ${s}`],
			[2, () => "VACUUM"],
			[1, () => `CREATE INDEX IF NOT EXISTS ${t}_k ON ${t}(k)`],
			[1, () => `DROP INDEX IF EXISTS ${t}_k`],
			[1, () => "CREATE TABLE IF NOT EXISTS t3(id INTEGER PRIMARY KEY, v)"],
			[1, () => "DROP TABLE IF EXISTS t3"],
			// Last, and weighing nothing unless asked for: the workloads of
			// the seeds without it stay as they were.
			[incrementalVacuum ? 2 : 0, () => `PRAGMA incremental_vacuum(${1 + int(40)})`],
		]);
	};
	// Defect 4 of issue 12 (a call that commits and then opens a transaction
	// is not persisted): while it is open, scripts open transactions only
	// with their first statement.
	const laterStatement = () => {
		const stmt = statement();
		return /^(BEGIN|SAVEPOINT)/.test(stmt) ? `DELETE FROM t2 WHERE k = ${int(100)}` : stmt;
	};
	let faulty = false;
	const one = (ref) => {
		const t = table();
		// Keep the database around a few MB: shrink it when it grew.
		const pages = ref.all("PRAGMA page_count")[0][0];
		if (pages > 700 && random() < 0.5) {
			return pick([call("run", `DELETE FROM ${t} WHERE id % 4 <> 0`), call("exec", [`DELETE FROM ${t} WHERE id % 3 <> 0`, "VACUUM"])]);
		}
		return weighted([
			[10, () => call("exec", statement())],
			// Defect 5 (a script that fails after earlier statements, in a
			// write that fails, loses them silently): while it is open, steps
			// with KV faults have no scripts.
			[
				faulty && avoid.has(5) ? 0 : 8,
				() =>
					call(
						"exec",
						Array.from({ length: 2 + int(3) }, (_, i) => (i > 0 && avoid.has(4) ? laterStatement() : statement())),
					),
			],
			[8, () => call("run", `INSERT INTO ${t}(k, v, b) VALUES (?, ?, ?)`, [int(100), `p${++serial}`, blob(int(3000))])],
			[3, () => call("run", `INSERT INTO ${t}(k, v, b) VALUES (?, ?, ?)`, [int(100), `big${++serial}`, blob(20_000 + int(50_000))])],
			[3, () => call("run", `UPDATE ${t} SET b = ?, v = ? WHERE id % ? = 0`, [blob(int(2000)), `u${++serial}`, 1 + int(4)])],
			[2, () => call("run", `DELETE FROM ${t} WHERE id > ?`, [int(50)])],
			[3, () => call("query", `SELECT count(*), total(k), sum(length(b)), max(id) FROM ${t}`)],
			[2, () => call("query", `SELECT id, k, v FROM ${t} WHERE k = ? ORDER BY id`, [int(100)])],
		]);
	};
	return {
		next(ref) {
			// Defect 2 (a write that failed but applied corrupts the next one):
			// while it is open, faults never apply.
			const modes = avoid.has(2) ? FAULT_MODES.filter((m) => m !== "applied") : FAULT_MODES;
			const faults = random() < 0.35 ? { rate: 0.15 + random() * 0.45, modes } : null;
			faulty = faults !== null;
			const calls = random() < 0.55 ? [one(ref)] : Array.from({ length: 2 + int(4) }, () => one(ref));
			return { calls, faults };
		},
	};
}

export class Divergence extends Error {
	constructor(message) {
		super(message);
		this.name = "Divergence";
	}
}

/** The first line where two dumps differ, shortened. */
function firstDifference(got, want) {
	const a = got.split("\n");
	const b = want.split("\n");
	for (let i = 0; i < Math.max(a.length, b.length); i++) {
		if (a[i] !== b[i]) {
			const cut = (s) => (s === undefined ? "(none)" : s.length > 300 ? `${s.slice(0, 300)}… (${s.length} chars)` : s);
			return `got  ${cut(a[i])}\n  want ${cut(b[i])}`;
		}
	}
	return "(equal)";
}

/**
 * The reference database, and the log of every statement it applied (so a
 * copy can be rebuilt to ask "what if" a failed group had run).
 */
async function loggedReference(kind) {
	const ref = await createReference(kind);
	const log = [];
	return {
		kind: ref.kind,
		all: (sql, params) => ref.all(sql, params),
		apply(sql, params) {
			const changes = ref.run(sql, params);
			log.push([sql, params]);
			return changes;
		},
		get inTransaction() {
			return ref.inTransaction;
		},
		dump: () => dumpWith((sql) => ref.all(sql)),
		async copy() {
			const copy = await createReference(ref.kind);
			for (const [sql, params] of log) copy.run(sql, params);
			return copy;
		},
		close: () => ref.close(),
	};
}

/**
 * Calls settle in groups: the calls that shared one KV write settle together,
 * in one run of the microtask queue. `epoch()` numbers these runs.
 */
function settleEpochs() {
	let epoch = 0;
	let open = false;
	return () => {
		if (!open) {
			epoch++;
			open = true;
			queueMicrotask(() => {
				open = false;
			});
		}
		return epoch;
	};
}

/**
 * Runs one workload and checks it; throws a Divergence (with the seed, the
 * step and the calls that led there) at the first disagreement. Options:
 * `seed`, `steps` (random workload), or `workload` (a list of steps
 * `{ calls, faults }`, faults as `{ at: { n: mode } }`), `backend`,
 * `limits`, `reference` ("better-sqlite3" | "sql.js" | undefined: the first
 * that loads), `recoveryFaults` (probability that a check's open of a KV copy
 * first fails at a random KV write, then is retried; or `{ at, mode }`: every
 * such open fails at its `at`-th write), `crashCopies`
 * (probability of checking a copy of the KV after a mutation, mid-write),
 * `avoid` (numbers of issue 12's defects to steer clear of while they are
 * open), `trace` (a function given each line of the trace), `preload`
 * (the open option: false pages every database lazily; the workload's
 * random faults then hit KV writes only, as the oracle models a failed
 * write, not a failed page read), `autoVacuum` ("FULL" | "INCREMENTAL": the
 * random workload's database has it, so commits move pages, and with
 * "INCREMENTAL" its statements include `PRAGMA incremental_vacuum`).
 * Resolves to statistics.
 */
export async function runDifferential(options = {}) {
	const {
		seed = 1,
		steps = 40,
		workload,
		backend,
		limits = LIMITS,
		reference,
		avoid = new Set(),
		crashCopies = 0.05,
		trace,
		traceKv = false,
		preload,
		autoVacuum,
	} = options;
	// Defect 1 (an interrupted recovery corrupts the database): while it is
	// open, opens of KV copies run into no faults.
	const recoveryFaults = avoid.has(1) ? 0 : (options.recoveryFaults ?? 0.3);
	const random = prng(seed);
	const kvRandom = prng(seed ^ 0x5bd1e995);
	const checkRandom = prng(seed ^ 0x27d4eb2d);
	const reopenRandom = prng(seed ^ 0x165667b1);
	const generator = createGenerator(random, { avoid, incrementalVacuum: autoVacuum === "INCREMENTAL" });
	const ref = await loggedReference(reference);
	const store = createMemoryKv({ limits });
	const kv = createChaosKv(store, kvRandom);
	const name = `differential-${seed}`;
	const stats = {
		reference: ref.kind,
		calls: 0,
		resolved: 0,
		sqlErrors: 0,
		kvFailures: 0,
		failedGroups: 0,
		faults: 0,
		journaledWrites: 0,
		copies: 0,
		hotJournals: 0,
		reopens: 0,
		recoveryFaults: 0,
		committedStates: 0,
		// Mutations that succeeded alongside a failing call, while the KV may
		// hold a write that failed but applied.
		alongsideFaults: 0,
	};
	const lines = [];
	const note = (line) => {
		lines.push(line);
		trace?.(line);
	};
	const fail = (message) => {
		const recent = lines.slice(-40).join("\n  ");
		throw new Divergence(`seed ${seed}: ${message}\n  (${ref.kind} reference; the last calls, oldest first:)\n  ${recent}`);
	};

	// history: every state the reference committed, in order.
	const history = [await ref.dump()];
	const commitPoint = async () => {
		if (ref.inTransaction) return;
		const state = await ref.dump();
		if (state !== history.at(-1)) history.push(state);
	};

	// The KV may hold the effects of a write reported as failed ("applied"
	// fault) until a later write resolves after at least one clean putBatch:
	// one of a later write, not one sent alongside the failing call.
	let uncertain = false;
	let putsSinceFault = 0;
	const copies = [];
	let settledUpTo = -1;
	let step = -1;
	kv.onFault = (mode) => {
		putsSinceFault = 0;
		if (mode === "applied") uncertain = true;
	};
	if (traceKv)
		kv.onCall = (n, method, arg, mode) => note(`step ${step}:   KV call ${n}: ${describeKvCall(method, arg)}${mode ? ` (${mode})` : ""}`);
	let mutations = 0;
	kv.onMutation = (mode, afterFaults) => {
		mutations++;
		if (mode === null && afterFaults) putsSinceFault++;
		else if (mode === null && uncertain) stats.alongsideFaults++;
		if (crashCopies > 0 && checkRandom() < crashCopies) {
			copies.push({ at: settledUpTo, store: store.clone(), uncertain, what: `a copy of the KV taken mid-write in step ${step}` });
		}
	};

	let db = await open(name, kv, { backend, limits, preload });
	const calls = [];
	const endPos = [];
	const epoch = settleEpochs();

	/** Replays call `c` on the reference as its outcome says; returns what applied. */
	const replay = async (c, outcome) => {
		if (outcome.status === "fulfilled") {
			let changes = 0;
			let rows = null;
			for (const stmt of c.stmts) {
				try {
					if (c.method === "query") rows = ref.all(stmt, c.params);
					else changes = ref.apply(stmt, c.params);
				} catch (error) {
					fail(`${describeCall(c)} resolved here, but the reference failed at ${JSON.stringify(stmt)}: ${error.message}`);
				}
				if (c.method !== "query") await commitPoint();
			}
			if (c.method === "query" && canonicalRows(outcome.value.rows) !== canonicalRows(rows)) {
				fail(`${describeCall(c)} returned ${canonicalRows(outcome.value.rows)}, the reference ${canonicalRows(rows)}`);
			}
			if (c.method === "run" && outcome.value.changes !== changes) {
				fail(`${describeCall(c)} reported ${outcome.value.changes} changes, the reference ${changes}`);
			}
			stats.resolved++;
			return "resolved";
		}
		const error = outcome.reason;
		if (!(error instanceof SqliteError)) fail(`${describeCall(c)} rejected with ${error?.name}: ${error?.message}`);
		// A SQL error: the statements before the failing one keep their effects.
		for (const stmt of c.stmts) {
			try {
				ref.apply(stmt, c.params);
			} catch (refError) {
				if (refError.message !== error.message) {
					fail(
						`${describeCall(c)} rejected with "${error.message}", the reference failed with "${refError.message}" at ${JSON.stringify(stmt)}`,
					);
				}
				stats.sqlErrors++;
				return `rejected, SQL: ${error.code}: ${error.message}`;
			}
			await commitPoint();
		}
		return fail(`${describeCall(c)} rejected with ${error.code}: ${error.message}, but every statement ran on the reference`);
	};

	/**
	 * A group of calls whose shared KV write failed: none has any effect (the
	 * database went back to what the KV holds, and an open transaction is
	 * gone). A call of the group that failed on its own SQL error after
	 * earlier statements had effects lost those too, and must say so: the
	 * KV's failure must be in its error (issue 12, defect 5). Checked on a
	 * copy of the reference that runs the group.
	 */
	const failedGroup = async (group) => {
		stats.failedGroups++;
		if (!avoid.has(5)) {
			const whatIf = await ref.copy();
			const stateOf = async (db) => `${db.inTransaction}\n${await dumpWith((sql) => db.all(sql))}`;
			const state = () => stateOf(whatIf);
			// Where the failed group leaves the database: as before it, with no
			// transaction open. A call whose effects end there (a ROLLBACK)
			// lost nothing.
			const end = await ref.copy();
			if (end.inTransaction) end.run("ROLLBACK");
			const endState = await stateOf(end);
			end.close();
			try {
				for (const { c, outcome } of group) {
					const lostEffects = outcome.status === "rejected" && !isKvFailure(outcome.reason);
					const before = lostEffects ? await state() : null;
					for (const stmt of c.stmts) {
						try {
							whatIf.run(stmt, c.params);
						} catch {
							break;
						}
					}
					const after = lostEffects ? await state() : null;
					if (lostEffects && after !== before && after !== endState) {
						fail(
							`${describeCall(c)} shared a KV write that failed, and lost the effects of the statements before its failing one, but rejected with only its SQL error (${outcome.reason.code}: ${outcome.reason.message}), no KV failure as cause`,
						);
					}
				}
			} finally {
				whatIf.close();
			}
		}
		for (const { c, outcome } of group) {
			if (outcome.status === "fulfilled") fail(`${describeCall(c)} resolved, although it settled with calls whose KV write failed`);
		}
		if (ref.inTransaction) ref.apply("ROLLBACK");
	};

	/**
	 * Opens the database. Now and then (`recoveryFaults`) it first opens it
	 * through `faulty` (a chaos KV over the same store) failing at its n-th
	 * KV write (when it rolls back a hot journal), and if that open fails,
	 * opens it again: recovery must survive being interrupted.
	 */
	const openRecovering = async (faulty, plain, what) => {
		const recovery =
			typeof recoveryFaults === "object"
				? recoveryFaults
				: recoveryFaults > 0 && checkRandom() < recoveryFaults
					? { at: 1 + Math.floor(checkRandom() * 12), mode: FAULT_MODES[Math.floor(checkRandom() * 3)] }
					: null;
		if (recovery) {
			faulty.setPlan({ atMutation: { [recovery.at]: recovery.mode } });
			try {
				return { db: await open(name, faulty, { backend, limits, preload }), what };
			} catch (error) {
				if (!isKvFailure(error))
					fail(`${what}: an open failing at KV write ${recovery.at} (${recovery.mode}) rejected with ${error.code}: ${error.message}`);
				stats.recoveryFaults++;
				what += ` (after an open that failed at its KV write ${recovery.at}, ${recovery.mode})`;
			} finally {
				faulty.setPlan(null);
			}
		}
		try {
			return { db: await open(name, plain, { backend, limits, preload }), what };
		} catch (error) {
			return fail(`${what}: open rejected with ${error.code}: ${error.message}`);
		}
	};

	/** Opens a copy of the KV and checks it holds one of the states history[from..]. */
	const checkCopy = async (copy, from, description, { exact = false } = {}) => {
		stats.copies++;
		if ((await copy.store.get(JOURNAL_META)) !== null) stats.hotJournals++;
		const opened = await openRecovering(createChaosKv(copy.store, checkRandom, { latency: false }), copy.store, description);
		const { db: copyDb, what } = opened;
		let check;
		let state;
		try {
			[[check]] = (await copyDb.query("PRAGMA integrity_check")).rows;
			state = await dumpWith(async (sql) => (await copyDb.query(sql)).rows);
		} catch (error) {
			fail(`${what}: reading it failed with ${error.code}: ${error.message}`);
		} finally {
			await copyDb.close();
		}
		if (check !== "ok") fail(`${what}: integrity_check says ${check}`);
		if (copy.uncertain && !exact) return;
		const allowed = history.slice(from);
		if (!allowed.includes(state)) {
			const older = history.slice(0, from).lastIndexOf(state);
			fail(
				`${what} holds ${older >= 0 ? `an older state (committed state ${older}; expected ${from} or later)` : "a state the reference never committed"}:\n  ${firstDifference(state, history[from])}`,
			);
		}
	};

	const runStep = async (batch) => {
		kv.setPlan(batch.faults && preload === false ? { ...batch.faults, writesOnly: true } : (batch.faults ?? null));
		const faultCount = kv.faults.length;
		const base = calls.length;
		const settled = batch.calls.map((c, j) => {
			const index = base + j;
			calls.push(c);
			return db[c.method](c.sql, c.params).then(
				(value) => {
					if (uncertain && putsSinceFault > 0) uncertain = false;
					return { status: "fulfilled", value, ...settle(index) };
				},
				(reason) => ({ status: "rejected", reason, ...settle(index) }),
			);
		});
		function settle(index) {
			settledUpTo = index;
			const what = `a copy of the KV taken when call ${index} settled`;
			const previous = copies.at(-1);
			if (previous?.mutations === mutations) {
				// The KV did not change since the last copy: checking this one,
				// taken later, also checks that one.
				Object.assign(previous, { at: index, uncertain, what });
			} else {
				copies.push({ at: index, store: store.clone(), uncertain, what, mutations });
			}
			return { epoch: epoch() };
		}
		const outcomes = await Promise.all(settled);
		kv.setPlan(null);
		const faults = kv.faults.slice(faultCount);
		stats.faults += faults.length;
		if (faults.length > 0) note(`step ${step}: KV faults ${faults.map((f) => `#${f.n} ${f.method} ${f.mode}`).join(", ")}`);
		// kv.onError heard of every KV call that failed, with the KV's own error.
		const unheard = faults.find((f) => f.error && !kv.errors.includes(f.error));
		if (unheard)
			fail(`after step ${step}: kv.onError never heard of the failure of KV call ${unheard.n} (${unheard.method}, ${unheard.mode})`);
		// Replay group by group (calls that settled together). Where a group
		// has a KV failure, the calls from the one after its last call that
		// resolved before that failure on (all of them, as group commit is
		// written today) shared the failed write.
		const record = (index, c, what) => {
			endPos[index] = history.length - 1;
			note(`step ${step} call ${index}${batch.calls.length > 1 ? " (unawaited)" : ""}: ${describeCall(c)} → ${what}`);
		};
		for (let j = 0; j < batch.calls.length; ) {
			const group = [];
			do group.push({ c: batch.calls[j], outcome: outcomes[j], index: base + j });
			while (++j < batch.calls.length && outcomes[j].epoch === group[0].outcome.epoch);
			const firstKv = group.findIndex(({ outcome }) => outcome.status === "rejected" && isKvFailure(outcome.reason));
			let split = firstKv === -1 ? group.length : firstKv;
			while (firstKv !== -1 && split > 0 && group[split - 1].outcome.status === "rejected") split--;
			for (const { c, outcome, index } of group.slice(0, split)) record(index, c, await replay(c, outcome));
			const failed = group.slice(split);
			if (failed.length === 0) continue;
			stats.kvFailures += failed.length;
			await failedGroup(failed);
			for (const { c, outcome, index } of failed) {
				record(index, c, `rejected with its group's failed KV write: ${outcome.reason?.code}: ${outcome.reason?.message}`);
			}
		}
		stats.calls += batch.calls.length;
		// (a) The live database equals the reference, open transaction included.
		if (db.inTransaction !== ref.inTransaction) {
			fail(`after step ${step}: inTransaction is ${db.inTransaction} here, ${ref.inTransaction} on the reference`);
		}
		const live = await dumpWith(async (sql) => (await db.query(sql)).rows).catch((error) =>
			fail(`after step ${step}: reading the live database failed with ${error.code}: ${error.message}`),
		);
		const want = await ref.dump();
		if (live !== want) fail(`after step ${step}: the live database differs from the reference:\n  ${firstDifference(live, want)}`);
		// (b) Each copy of the KV opens to a state committed no earlier than
		// the call it was taken after.
		for (const copy of copies.splice(0)) await checkCopy(copy, copy.at < 0 ? 0 : endPos[copy.at], copy.what);
	};

	const reopen = async () => {
		stats.reopens++;
		await db.close();
		if (ref.inTransaction) ref.apply("ROLLBACK");
		const opened = await openRecovering(kv, kv, `step ${step}: the database closed and reopened`);
		db = opened.db;
		note(opened.what);
		const [[check]] = (await db.query("PRAGMA integrity_check")).rows;
		if (check !== "ok") fail(`${opened.what}: integrity_check says ${check}`);
		const live = await dumpWith(async (sql) => (await db.query(sql)).rows);
		if (live !== history.at(-1))
			fail(`${opened.what}: it differs from the last committed state:\n  ${firstDifference(live, history.at(-1))}`);
	};

	try {
		note(`seed ${seed}, ${backend ?? "default"} engine, ${ref.kind} reference, limits ${JSON.stringify(limits)}`);
		const setup = autoVacuum ? [`PRAGMA auto_vacuum = ${autoVacuum}`, ...SETUP] : SETUP;
		const batches = workload ?? [{ calls: [call("exec", setup)] }];
		for (step = 0; step < batches.length; step++) await runStep(batches[step]);
		if (!workload) {
			for (; step < steps; step++) {
				// Now and then, close the database (an open transaction is
				// lost) and open it again from the KV, which may hold a hot
				// journal of a failed write. Not while the KV may hold a write
				// that failed but applied: reopening then may show it.
				if (reopenRandom() < 0.04 && !uncertain) await reopen();
				await runStep(generator.next(ref));
			}
		}
		// A last clean write, so the KV holds exactly the final state.
		const last = [call("exec", "CREATE TABLE IF NOT EXISTS done(x)")];
		if (ref.inTransaction) last.unshift(call("exec", "ROLLBACK"));
		await runStep({ calls: last });
		stats.committedStates = history.length;
		stats.journaledWrites = kv.journals;
		// (c) Closed and reopened, the database holds the last committed state.
		await db.close();
		await checkCopy({ store, uncertain: false }, history.length - 1, "the database reopened after close()", { exact: true });
		return stats;
	} finally {
		if (!db.closed) await db.close().catch(() => {});
		ref.close();
	}
}
