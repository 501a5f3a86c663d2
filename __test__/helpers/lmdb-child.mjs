// Child process of the LMDB crash tests: runs the crash workload's steps on
// an LMDB KV and reports on stdout ("step N" once step N resolved). With
// PAUSE_STEP and PAUSE_AT set, it starts the PAUSE_AT-th KV write of step
// PAUSE_STEP and reports "paused" while that write is in flight (or, with
// PAUSE_WHEN=after, once it resolved), then waits to be killed; after the
// last step it reports "done" and waits to be killed too.
//
//   node lmdb-child.mjs FOLDER ACTOR

import fs from "node:fs";

import { createLmdbKv } from "@rivetkit/sqlite-vfs/kv/lmdb";
import { open } from "./db.mjs";
import { STEPS } from "./crash-workload.mjs";

const [folder, actor] = process.argv.slice(2);
const pauseStep = process.env.PAUSE_STEP === undefined ? -1 : Number(process.env.PAUSE_STEP);
const pauseAt = Number(process.env.PAUSE_AT ?? 0);
const pauseAfter = process.env.PAUSE_WHEN === "after";
const report = (line) => fs.writeSync(1, `${line}\n`);
const forever = () => new Promise(() => setInterval(() => {}, 60_000));

const store = createLmdbKv(folder, { actor });
let step = -1;
let writes = 0;
const kv = Object.create(store);
for (const method of ["put", "putBatch", "deleteBatch"]) {
	kv[method] = (arg, value) => {
		const call = store[method](arg, value);
		if (step === pauseStep && ++writes === pauseAt) {
			if (pauseAfter) call.then(() => report("paused"));
			else report("paused");
			return forever();
		}
		return call;
	};
}

const db = await open(kv, {}, actor);
for (step = 0; step < STEPS.length; step++) {
	await db.exec(STEPS[step]);
	report(`step ${step + 1}`);
}
report("done");
await forever();
