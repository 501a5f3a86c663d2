"use strict";

// Prepared databases for the workloads that need existing data (W4, W5, M):
// built once per benchmark run with this package's native engine on a
// BenchKv, and saved as KV images (see BenchKv#saveImage) that the child
// processes load. The 2.2.1 backend reads the same images, so every run also
// checks that the storage formats agree.

const fs = require("node:fs");
const path = require("node:path");
const { BenchKv } = require("./kv");
const { SCHEMA, bulkInsert } = require("./workloads");

const ROOT = path.join(__dirname, "..");

/** The images a run may need: id -> the database size to reach (bytes) or a row count. */
const IMAGES = {
	small: { rows: 10 },
	"10mb": { bytes: 10 * 2 ** 20 },
	"100mb": { bytes: 100 * 2 ** 20 },
};

async function build(id, spec, file) {
	const { open } = require(ROOT);
	const kv = new BenchKv();
	const db = await open(`image-${id}`, kv, { backend: "native" });
	await db.exec(SCHEMA);
	if (spec.rows !== undefined) {
		await db.run(bulkInsert("t", spec.rows));
	} else {
		for (;;) {
			const { rows } = await db.query("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size");
			const missing = spec.bytes - Number(rows[0][0]);
			if (missing <= 0) break;
			// ~130 bytes per row on disk: aim at the size without overshooting much.
			await db.run(bulkInsert("t", Math.min(20000, Math.max(100, Math.ceil(missing / 130)))));
		}
	}
	const { rows } = await db.query(
		"SELECT count(*), max(id), (SELECT page_count * page_size FROM pragma_page_count, pragma_page_size) FROM t",
	);
	await db.close();
	const [count, maxId, bytes] = rows[0].map(Number);
	if (count !== maxId) throw new Error(`image ${id}: ids are not 1..${count}`);
	kv.saveImage(file);
	return { id, file, rows: count, bytes, keys: kv.size };
}

/** Builds the images named in `ids` into `dir`; resolves to id -> { file, rows, bytes, keys }. */
async function prepareImages(dir, ids) {
	fs.mkdirSync(dir, { recursive: true });
	const out = {};
	for (const id of ids) {
		const spec = IMAGES[id];
		if (!spec) throw new Error(`unknown image "${id}"`);
		out[id] = await build(id, spec, path.join(dir, `${id}.kv`));
	}
	return out;
}

module.exports = { IMAGES, prepareImages };
