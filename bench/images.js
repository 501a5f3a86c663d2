"use strict";

// Prepared databases for the workloads that need existing data (W4, W5, M,
// L): built with this package's native engine on a BenchKv, and saved as KV
// images (see BenchKv#saveImage) that the child processes load. The 2.2.1
// backend reads the same images, so every run also checks that the storage
// formats agree.
//
// The small images (W4, W5, M) are rebuilt at every run. The images of L
// (`lazy-*`, up to 1 GB) are built once and cached in the images folder,
// next to a `.json` file saying what they hold; they are rebuilt when that
// description no longer matches (another spec, or LAZY_FORMAT bumped).

const fs = require("node:fs");
const path = require("node:path");
const { BenchKv } = require("./kv");
const { SCHEMA, bulkInsert } = require("./workloads");

const ROOT = path.join(__dirname, "..");

// L's table: an INTEGER PRIMARY KEY (the table's B-tree, so a point query
// by id is a B-tree lookup) and rows of a few hundred bytes.
const LAZY_SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, payload BLOB NOT NULL)";
const LAZY_PAYLOAD_BYTES = 300;
// Bump when the way L's images are built changes: cached images are rebuilt.
const LAZY_FORMAT = 1;
const lazyInsert = (n) =>
	`INSERT INTO t (k, payload) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) ` +
	`SELECT abs(random() % 1000000), randomblob(${LAZY_PAYLOAD_BYTES}) FROM c`;

/** The images a run may need: id -> the database size to reach (bytes) or a row count. */
const IMAGES = {
	small: { rows: 10 },
	"10mb": { bytes: 10 * 2 ** 20 },
	"100mb": { bytes: 100 * 2 ** 20 },
	"lazy-10mb": { bytes: 10 * 2 ** 20, lazy: true },
	"lazy-100mb": { bytes: 100 * 2 ** 20, lazy: true },
	"lazy-1gb": { bytes: 2 ** 30, lazy: true },
};

async function build(id, spec, file) {
	const { open } = require(ROOT);
	const kv = new BenchKv();
	const db = await open(`image-${id}`, kv, { backend: "native" });
	await db.exec(spec.lazy ? LAZY_SCHEMA : SCHEMA);
	const insert = (n) => db.run(spec.lazy ? lazyInsert(n) : bulkInsert("t", n));
	// Bytes per row on disk, about: aim at the size without overshooting much.
	const rowBytes = spec.lazy ? LAZY_PAYLOAD_BYTES + 20 : 130;
	if (spec.rows !== undefined) {
		await insert(spec.rows);
	} else {
		for (;;) {
			const { rows } = await db.query("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size");
			const missing = spec.bytes - Number(rows[0][0]);
			if (missing <= 0) break;
			await insert(Math.min(spec.lazy ? 50_000 : 20_000, Math.max(100, Math.ceil(missing / rowBytes))));
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

/** A cached L image, if `file` and its description match `spec`; otherwise null. */
function cached(id, spec, file) {
	try {
		const meta = JSON.parse(fs.readFileSync(`${file}.json`, "utf8"));
		const same = meta.format === LAZY_FORMAT && JSON.stringify(meta.spec) === JSON.stringify(spec);
		if (!same || fs.statSync(file).size !== meta.fileBytes) return null;
		return { id, file, rows: meta.rows, bytes: meta.bytes, keys: meta.keys, cached: true };
	} catch {
		return null;
	}
}

/**
 * Builds the images named in `ids` into `dir` (L's images only when not
 * cached there); resolves to id -> { file, rows, bytes, keys, cached? }.
 */
async function prepareImages(dir, ids, log = () => {}) {
	fs.mkdirSync(dir, { recursive: true });
	const out = {};
	for (const id of ids) {
		const spec = IMAGES[id];
		if (!spec) throw new Error(`unknown image "${id}"`);
		const file = path.join(dir, `${id}.kv`);
		if (spec.lazy) {
			out[id] = cached(id, spec, file);
			if (out[id]) continue;
			log(`images: building ${id} (once; cached in ${path.relative(process.cwd(), dir)})`);
			fs.rmSync(`${file}.json`, { force: true });
		}
		out[id] = await build(id, spec, file);
		if (spec.lazy) {
			const { file: _file, ...meta } = out[id];
			const description = { format: LAZY_FORMAT, spec, ...meta, fileBytes: fs.statSync(file).size };
			fs.writeFileSync(`${file}.json`, `${JSON.stringify(description, null, 2)}\n`);
		}
	}
	return out;
}

module.exports = { IMAGES, LAZY_PAYLOAD_BYTES, prepareImages };
