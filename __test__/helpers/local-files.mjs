// Where the native engine keeps local files: in the OS temporary directory, a
// directory `rivetkit-sqlite-*` per process, holding a file `db-*` per open
// database (and SQLite's journal beside it, `db-*-journal`, at times).

import fs from "node:fs";
import path from "node:path";

/** The processes' directories in `tmp` (paths). */
export function processDirs(tmp) {
	return fs
		.readdirSync(tmp)
		.filter((name) => name.startsWith("rivetkit-sqlite-"))
		.map((name) => path.join(tmp, name));
}

/** The open databases' files in `tmp` (paths), of every process. */
export function databaseFiles(tmp) {
	return processDirs(tmp).flatMap((dir) =>
		fs
			.readdirSync(dir)
			.filter((name) => name.startsWith("db-") && !name.endsWith("-journal"))
			.map((name) => path.join(dir, name)),
	);
}
