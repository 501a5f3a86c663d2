// What every KV store this package ships must do, as the actor KV does: the
// interface, the limits (rejected exactly as the in-memory store rejects
// them), atomic putBatch, actors kept apart, and a database that lives on it.

import { test } from "node:test";
import assert from "node:assert/strict";

import { open, createMemoryKv } from "../../index.mjs";
import { BACKEND } from "./db.mjs";

const bytes = (...values) => Uint8Array.from(values);
const hex = (value) => (value == null ? value : Buffer.from(value).toString("hex"));
const SMALL = { maxKeysPerCall: 4, maxValueSize: 8192, maxBatchBytes: 12 * 1024, maxKeySize: 16 };

/** What a call does: its result (as hex) or its error's type and message. */
async function outcome(call) {
	try {
		const result = await call();
		return { ok: Array.isArray(result) ? result.map(hex) : hex(result) };
	} catch (error) {
		return { error: `${error.constructor.name}: ${error.message}` };
	}
}

/**
 * Registers the contract tests. `make(actor, options)` returns (or resolves
 * to) a KV of `actor` on the store under test; `release(kv)` frees one.
 */
export function kvContract({ make, release = async () => {} }) {
	let n = 0;
	const fresh = async (options) => make(`contract-${process.pid}-${++n}`, options);

	test("getBatch answers every key, null for missing ones; put, putBatch and deleteBatch", async () => {
		const kv = await fresh();
		assert.equal(await kv.get(bytes(1)), null);
		assert.deepEqual((await kv.getBatch([bytes(1), bytes(2)])).map(hex), [null, null]);
		await kv.put(bytes(1), bytes(10, 11));
		await kv.putBatch([
			[bytes(2), bytes(20)],
			[bytes(3), new Uint8Array(0)],
			[bytes(2), bytes(21)], // the last value of a key wins
		]);
		assert.deepEqual((await kv.getBatch([bytes(3), bytes(9), bytes(1), bytes(2)])).map(hex), ["", null, "0a0b", "15"]);
		assert.equal(hex(await kv.get(bytes(2))), "15");
		await kv.deleteBatch([bytes(1), bytes(9)]);
		assert.deepEqual((await kv.getBatch([bytes(1), bytes(2)])).map(hex), [null, "15"]);
		await kv.putBatch([]);
		await kv.deleteBatch([]);
		assert.deepEqual(await kv.getBatch([]), []);
		await release(kv);
	});

	test("a call takes its keys and values as they are when it is made: the caller may reuse them at once", async () => {
		const kv = await fresh();
		// The KV's first call (which may first do work of its own).
		const key = bytes(1);
		const value = bytes(5);
		const entries = [[key, value]];
		const put = kv.putBatch(entries);
		key[0] = 2;
		value[0] = 6;
		entries.length = 0;
		await put;
		const k = bytes(1);
		const keys = [k];
		const read = kv.getBatch(keys);
		k[0] = 2;
		keys.push(bytes(3));
		assert.deepEqual((await read).map(hex), ["05"]);
		const one = bytes(1);
		const got = kv.get(one);
		one[0] = 2;
		assert.equal(hex(await got), "05");
		const gone = [bytes(1)];
		const deleted = kv.deleteBatch(gone);
		gone[0] = bytes(2);
		gone.push(bytes(3));
		await deleted;
		assert.equal(await kv.get(bytes(1)), null);
		await release(kv);
	});

	test("rejects what the actor KV rejects, as the in-memory store does, and stores nothing of a rejected putBatch", async () => {
		const kv = await fresh({ limits: SMALL });
		const memory = createMemoryKv({ limits: SMALL });
		const big = new Uint8Array(SMALL.maxValueSize + 1);
		const value = new Uint8Array(SMALL.maxValueSize);
		const calls = [
			["getBatch", [[bytes(1), bytes(2), bytes(3), bytes(4), bytes(5)]]],
			["deleteBatch", [[bytes(1), bytes(2), bytes(3), bytes(4), bytes(5)]]],
			["putBatch", [[1, 2, 3, 4, 5].map((i) => [bytes(i), bytes(i)])]],
			[
				"putBatch",
				[
					[
						[bytes(1), bytes(1)],
						[bytes(2), big],
					],
				],
			],
			[
				"putBatch",
				[
					[
						[bytes(1), value],
						[bytes(2), value],
					],
				],
			], // over maxBatchBytes
			[
				"putBatch",
				[
					[
						[bytes(1), bytes(1)],
						[new Uint8Array(17), bytes(1)],
					],
				],
			],
			[
				"putBatch",
				[
					[
						[bytes(1), bytes(1)],
						["two", bytes(1)],
					],
				],
			],
			[
				"putBatch",
				[
					[
						[bytes(1), bytes(1)],
						[bytes(2), "value"],
					],
				],
			],
			["put", [bytes(1), big]],
			["get", [new Uint8Array(17)]],
			["getBatch", [["key"]]],
		];
		for (const [method, args] of calls) {
			const got = await outcome(() => kv[method](...args));
			const want = await outcome(() => memory[method](...args));
			assert.ok(want.error, `the actor KV rejects ${method}`);
			assert.deepEqual(got, want, `${method} answers as the actor KV`);
		}
		assert.deepEqual((await kv.getBatch([bytes(1), bytes(2)])).map(hex), [null, null], "nothing was stored");
		// The largest call the limits allow goes through.
		await kv.putBatch([
			[bytes(1), value],
			[bytes(2), new Uint8Array(SMALL.maxBatchBytes - SMALL.maxValueSize - 2)],
		]);
		assert.equal((await kv.get(bytes(1))).length, SMALL.maxValueSize);
		await release(kv);
	});

	test("actors are kept apart, including ids that are prefixes of others", async () => {
		const ids = ["", "a", "ab", "a-b", `x${process.pid}`];
		const kvs = await Promise.all(ids.map((id) => make(id)));
		// The shared environment may already hold these actors' keys from another test file.
		await Promise.all(kvs.map((kv) => kv.clear()));
		await Promise.all(
			kvs.map((kv, i) =>
				kv.putBatch([
					[bytes(1), bytes(i)],
					[bytes(i + 2), bytes(i)],
				]),
			),
		);
		for (const [i, kv] of kvs.entries()) {
			assert.equal(hex(await kv.get(bytes(1))), hex(bytes(i)));
			assert.deepEqual(
				(await kv.entries()).map(([k, v]) => [hex(k), hex(v)]),
				[
					[hex(bytes(1)), hex(bytes(i))],
					[hex(bytes(i + 2)), hex(bytes(i))],
				].sort(),
			);
		}
		await kvs[1].clear();
		assert.deepEqual(await kvs[1].entries(), []);
		assert.equal(hex(await kvs[2].get(bytes(1))), hex(bytes(2)));
		await Promise.all(kvs.map(release));
	});

	test("a database lives on it: written, closed, opened again from a new KV object", async () => {
		const actor = `db-${process.pid}`;
		const kv = await make(actor);
		await kv.clear();
		const db = await open(actor, kv, { backend: BACKEND });
		await db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('one')");
		await db.run("INSERT INTO t(v) SELECT printf('%.2000c', 'x') FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3)");
		await db.close();
		await release(kv);
		const again = await make(actor);
		const reopened = await open(actor, again, { backend: BACKEND });
		assert.deepEqual((await reopened.query("SELECT count(*), sum(length(v)) FROM t")).rows, [[4, 6003]]);
		assert.deepEqual((await reopened.query("PRAGMA integrity_check")).rows, [["ok"]]);
		await reopened.close();
		await release(again);
	});
}
