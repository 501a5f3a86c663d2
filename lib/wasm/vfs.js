"use strict";

// The WASM engine's VFS: synchronous JS callbacks over in-memory files, with
// the rules of src/vfs.rs.
//
// 1. Writes and truncations of a database's main file are reported to its
//    Tracker before they happen.
// 2. Only the database's own main file and its sidecars (-journal, -wal, as
//    src/vfs.rs allows) can be opened, deleted or probed; temporary files
//    (no name) live in memory. Anything else gets SQLITE_CANTOPEN.
// 3. Files expose version 1 of the I/O methods (no shared memory, no memory
//    mapping) and extension loading always fails.
//
// Every database gets its own sqlite3_vfs (same callbacks, its own random
// name), so a statement of one database cannot even name another's files.
// SQLite's other VFSes (Emscripten's "unix*" on its in-process MEMFS, "memdb",
// "kvvfs") are unregistered: a URI `?vfs=` could otherwise reach them, and
// they are shared by every database of the process.
//
// No JS exception may unwind through WASM: every callback catches and returns
// an SQLite error code. Heap views are taken fresh in every callback, since a
// memory growth detaches the old ones.

const { MemFile } = require("./files");
const { heapAccess } = require("./heap");

const {
	SQLITE_OK,
	SQLITE_IOERR,
	SQLITE_NOTFOUND,
	SQLITE_CANTOPEN,
	SQLITE_BUSY,
	SQLITE_INTERRUPT,
	SQLITE_IOERR_READ,
	SQLITE_IOERR_SHORT_READ,
	SQLITE_IOERR_WRITE,
	SQLITE_IOERR_TRUNCATE,
	SQLITE_IOERR_FSTAT,
	SQLITE_IOERR_UNLOCK,
	SQLITE_IOERR_LOCK,
	SQLITE_IOERR_CLOSE,
	SQLITE_IOERR_DELETE,
	SQLITE_IOERR_ACCESS,
	SQLITE_IOERR_DELETE_NOENT,
	SQLITE_OPEN_DELETEONCLOSE,
	SQLITE_OPEN_EXCLUSIVE,
	SQLITE_OPEN_CREATE,
	SQLITE_OPEN_MAIN_DB,
	SQLITE_ACCESS_EXISTS,
	SQLITE_FCNTL_SIZE_HINT,
	SQLITE_FCNTL_CHUNK_SIZE,
	SQLITE_FCNTL_HAS_MOVED,
} = require("./constants");

const LOCK_NONE = 0;
const LOCK_SHARED = 1;
const LOCK_RESERVED = 2;
const LOCK_PENDING = 3;
const LOCK_EXCLUSIVE = 4;

// What the unix VFS under the native engine reports on Linux.
const SECTOR_SIZE = 4096;
const IOCAP_POWERSAFE_OVERWRITE = 0x1000;
const IOCAP_SUBPAGE_READ = 0x8000;
const MAX_PATHNAME = 512;
// Julian day number of the Unix epoch, in milliseconds.
const UNIX_EPOCH_MS = 210866760000000;

const utf8Encoder = new TextEncoder();

/** The files of one database, seen through its own sqlite3_vfs. */
class FileSet {
	/** @param {string} mainPath */
	constructor(mainPath) {
		this.mainPath = mainPath;
		this.main = new MemFile();
		/** @type {import("./files").Tracker | null} */
		this.tracker = null;
		/** Sidecar files by full path. */
		this.files = new Map();
		/** The database's call control (engine.js Control), or null: asked at every read of the main file. */
		this.control = null;
		this.vfs = 0;
	}

	/** Whether `path` is the main file or one of its sidecars (src/vfs.rs is_allowed). */
	isAllowed(path) {
		if (path === this.mainPath) return true;
		return path === `${this.mainPath}-journal` || path === `${this.mainPath}-wal`;
	}

	fileAt(path) {
		return path === this.mainPath ? this.main : this.files.get(path);
	}
}

/**
 * Installs the VFS into one sqlite3 module. Returns `{ createFileSet,
 * releaseFileSet }`.
 */
function installVfs(sqlite3) {
	const { capi, wasm } = sqlite3;
	const x = wasm.exports;
	const memory = x.memory ?? wasm.memory;
	const { heap, peek32, poke32, poke64, cstr } = heapAccess(memory);

	/** @type {Map<number, FileSet>} sqlite3_vfs pointer → its database's files */
	const sets = new Map();
	/** @type {Map<number, object>} sqlite3_file pointer → open handle */
	const handles = new Map();

	const pathOf = (zName) => (zName ? cstr(zName) : null);

	// ---- sqlite3_io_methods -------------------------------------------------

	const io = {
		xClose(pFile) {
			try {
				const h = handles.get(pFile);
				if (h === undefined) return SQLITE_OK;
				unlock(h, LOCK_NONE);
				handles.delete(pFile);
				h.file.opens--;
				if (h.deleteOnClose && h.set !== null && h.path !== null && h.set.files.get(h.path) === h.file) {
					h.set.files.delete(h.path);
				}
				return SQLITE_OK;
			} catch {
				return SQLITE_IOERR_CLOSE;
			}
		},
		xRead(pFile, pDest, n, offset) {
			try {
				const h = handles.get(pFile);
				// A read is a point where a statement may be stopped too: SQLite's
				// progress handler never runs inside one instruction that reads
				// many pages (counting a table's rows, clearing it). As natively.
				if (h.tracker !== null && h.set?.control?.shouldStop()) return SQLITE_INTERRUPT;
				const target = heap();
				const got = h.file.read(target, pDest, n, Number(offset));
				if (got < n) {
					target.fill(0, pDest + got, pDest + n);
					return SQLITE_IOERR_SHORT_READ;
				}
				return SQLITE_OK;
			} catch {
				return SQLITE_IOERR_READ;
			}
		},
		xWrite(pFile, pSrc, n, offset) {
			try {
				const h = handles.get(pFile);
				const at = Number(offset);
				h.tracker?.beforeWrite(at, n);
				h.file.write(heap(), pSrc, n, at);
				h.tracker?.afterWrite(at, n);
				return SQLITE_OK;
			} catch {
				const tracker = handles.get(pFile)?.tracker;
				if (tracker) tracker.damaged = true;
				return SQLITE_IOERR_WRITE;
			}
		},
		xTruncate(pFile, size) {
			try {
				const h = handles.get(pFile);
				const newSize = Number(size);
				h.tracker?.beforeTruncate(newSize);
				h.file.truncate(newSize);
				h.tracker?.afterTruncate(newSize);
				return SQLITE_OK;
			} catch (error) {
				// SQLite may go on as if the file had its new size (a commit's
				// truncation comes after its commit point): the call's changes
				// are discarded (see Tracker#damaged).
				const tracker = handles.get(pFile)?.tracker;
				if (tracker) {
					tracker.damaged = true;
					tracker.truncationFailure = error instanceof Error ? error.message : String(error);
				}
				return SQLITE_IOERR_TRUNCATE;
			}
		},
		xSync(_pFile, _flags) {
			return SQLITE_OK;
		},
		xFileSize(pFile, pSize) {
			try {
				poke64(pSize, handles.get(pFile).file.size);
				return SQLITE_OK;
			} catch {
				return SQLITE_IOERR_FSTAT;
			}
		},
		xLock(pFile, level) {
			try {
				return lock(handles.get(pFile), level);
			} catch {
				return SQLITE_IOERR_LOCK;
			}
		},
		xUnlock(pFile, level) {
			try {
				unlock(handles.get(pFile), level);
				return SQLITE_OK;
			} catch {
				return SQLITE_IOERR_UNLOCK;
			}
		},
		xCheckReservedLock(pFile, pOut) {
			try {
				poke32(pOut, handles.get(pFile).file.lockLevel > LOCK_SHARED ? 1 : 0);
				return SQLITE_OK;
			} catch {
				return SQLITE_IOERR;
			}
		},
		xFileControl(_pFile, op, pArg) {
			try {
				switch (op) {
					case SQLITE_FCNTL_SIZE_HINT:
					case SQLITE_FCNTL_CHUNK_SIZE:
						return SQLITE_OK;
					case SQLITE_FCNTL_HAS_MOVED:
						poke32(pArg, 0);
						return SQLITE_OK;
					default:
						return SQLITE_NOTFOUND;
				}
			} catch {
				return SQLITE_IOERR;
			}
		},
		xSectorSize(_pFile) {
			return SECTOR_SIZE;
		},
		xDeviceCharacteristics(_pFile) {
			return IOCAP_POWERSAFE_OVERWRITE | IOCAP_SUBPAGE_READ;
		},
	};

	// Locks between handles on one file, as the unix VFS keeps them between
	// connections of one process (a database ATTACHed to itself gets BUSY).
	function lock(h, level) {
		const file = h.file;
		if (h.lock >= level) return SQLITE_OK;
		if (h.lock !== file.lockLevel && (file.lockLevel >= LOCK_PENDING || level > LOCK_SHARED)) {
			return SQLITE_BUSY;
		}
		if (level === LOCK_SHARED) {
			if (file.lockLevel === LOCK_SHARED || file.lockLevel === LOCK_RESERVED) {
				file.sharedCount++;
			} else {
				file.sharedCount = 1;
				file.lockLevel = LOCK_SHARED;
			}
			h.lock = LOCK_SHARED;
			return SQLITE_OK;
		}
		if (level === LOCK_EXCLUSIVE && file.sharedCount > 1) {
			h.lock = LOCK_PENDING;
			file.lockLevel = LOCK_PENDING;
			return SQLITE_BUSY;
		}
		h.lock = level;
		file.lockLevel = level;
		return SQLITE_OK;
	}

	function unlock(h, level) {
		const file = h.file;
		if (h.lock <= level) return;
		if (h.lock > LOCK_SHARED) file.lockLevel = LOCK_SHARED;
		if (level === LOCK_NONE) {
			file.sharedCount--;
			if (file.sharedCount <= 0) {
				file.sharedCount = 0;
				file.lockLevel = LOCK_NONE;
			}
		}
		h.lock = level;
	}

	// ---- sqlite3_vfs --------------------------------------------------------

	const vfsMethods = {
		xOpen(pVfs, zName, pFile, flags, pOutFlags) {
			try {
				poke32(pFile, 0); // pMethods = NULL until the open succeeds
				const set = sets.get(pVfs) ?? null;
				const path = pathOf(zName);
				let file;
				let tracker = null;
				if (path === null) {
					file = new MemFile(); // a temporary file
				} else if (set === null || !set.isAllowed(path)) {
					return SQLITE_CANTOPEN;
				} else if (flags & SQLITE_OPEN_MAIN_DB) {
					if (path !== set.mainPath) return SQLITE_CANTOPEN;
					file = set.main;
					tracker = set.tracker;
				} else {
					file = set.fileAt(path);
					if (file === undefined) {
						if (!(flags & SQLITE_OPEN_CREATE)) return SQLITE_CANTOPEN;
						file = new MemFile();
						set.files.set(path, file);
					} else if (flags & SQLITE_OPEN_EXCLUSIVE && flags & SQLITE_OPEN_CREATE) {
						return SQLITE_CANTOPEN;
					}
				}
				file.opens++;
				handles.set(pFile, {
					file,
					tracker,
					set,
					path,
					lock: LOCK_NONE,
					deleteOnClose: (flags & SQLITE_OPEN_DELETEONCLOSE) !== 0,
				});
				poke32(pFile, ioMethods.pointer);
				if (pOutFlags) poke32(pOutFlags, flags);
				return SQLITE_OK;
			} catch {
				return SQLITE_CANTOPEN;
			}
		},
		xDelete(pVfs, zName, _syncDir) {
			try {
				const set = sets.get(pVfs);
				const path = pathOf(zName);
				if (set === undefined || path === null || !set.isAllowed(path)) return SQLITE_IOERR_DELETE;
				if (path === set.mainPath) return SQLITE_OK; // SQLite never deletes it; keep it
				return set.files.delete(path) ? SQLITE_OK : SQLITE_IOERR_DELETE_NOENT;
			} catch {
				return SQLITE_IOERR_DELETE;
			}
		},
		xAccess(pVfs, zName, flags, pOut) {
			try {
				const set = sets.get(pVfs);
				const path = pathOf(zName);
				let result = 0;
				if (set !== undefined && path !== null && set.isAllowed(path)) {
					const file = set.fileAt(path);
					// As the unix VFS: "exists" means a non-empty file.
					if (file !== undefined) result = flags === SQLITE_ACCESS_EXISTS ? (file.size > 0 ? 1 : 0) : 1;
				}
				poke32(pOut, result);
				return SQLITE_OK;
			} catch {
				return SQLITE_IOERR_ACCESS;
			}
		},
		xFullPathname(_pVfs, zName, nOut, zOut) {
			try {
				const full = normalizePath(cstr(zName));
				const bytes = utf8Encoder.encode(full);
				if (bytes.length + 1 > nOut) return SQLITE_CANTOPEN;
				const h = heap();
				h.set(bytes, zOut);
				h[zOut + bytes.length] = 0;
				return SQLITE_OK;
			} catch {
				return SQLITE_CANTOPEN;
			}
		},
		xDlOpen(_pVfs, _zFilename) {
			return 0;
		},
		xDlError(_pVfs, nByte, zOut) {
			try {
				if (nByte <= 0 || !zOut) return;
				const msg = utf8Encoder.encode("extension loading is disabled");
				const len = Math.min(msg.length, nByte - 1);
				const h = heap();
				h.set(msg.subarray(0, len), zOut);
				h[zOut + len] = 0;
			} catch {
				// Nothing to report it to.
			}
		},
		xDlClose(_pVfs, _handle) {},
		xRandomness(_pVfs, nByte, zOut) {
			try {
				const h = heap();
				for (let done = 0; done < nByte; done += 65536) {
					crypto.getRandomValues(h.subarray(zOut + done, zOut + Math.min(nByte, done + 65536)));
				}
				return nByte;
			} catch {
				return 0;
			}
		},
		xSleep(_pVfs, micros) {
			// Never reached in practice (one connection per file, exclusive
			// locking); not worth blocking the event loop for.
			return micros;
		},
		xCurrentTime(_pVfs, pOut) {
			try {
				new DataView(memory.buffer).setFloat64(pOut, (UNIX_EPOCH_MS + Date.now()) / 86400000, true);
				return SQLITE_OK;
			} catch {
				return SQLITE_IOERR;
			}
		},
		xCurrentTimeInt64(_pVfs, pOut) {
			try {
				poke64(pOut, UNIX_EPOCH_MS + Date.now());
				return SQLITE_OK;
			} catch {
				return SQLITE_IOERR;
			}
		},
		xGetLastError(_pVfs, _nOut, _zOut) {
			return 0;
		},
	};

	const ioMethods = new capi.sqlite3_io_methods();
	ioMethods.$iVersion = 1;
	sqlite3.vfs.installVfs({ io: { struct: ioMethods, methods: io } });

	// The template every database's VFS copies: registered as the default VFS
	// with no files (so nothing reaches another VFS through the default, and
	// SQLite's PRNG is seeded from crypto.getRandomValues).
	const template = new capi.sqlite3_vfs();
	template.$iVersion = 2;
	template.$szOsFile = capi.sqlite3_file.structInfo.sizeof;
	template.$mxPathname = MAX_PATHNAME;
	sqlite3.vfs.installVfs({ vfs: { struct: template, methods: vfsMethods, name: "rivetkit-wasm", asDefault: true } });
	const VFS_SIZE = capi.sqlite3_vfs.structInfo.sizeof;
	const NAME_OFFSET = capi.sqlite3_vfs.structInfo.members.zName.offset;
	const NEXT_OFFSET = capi.sqlite3_vfs.structInfo.members.pNext.offset;
	for (;;) {
		let other = 0;
		for (let p = x.sqlite3_vfs_find(0); p; p = peek32(p + NEXT_OFFSET)) {
			if (p !== template.pointer) {
				other = p;
				break;
			}
		}
		if (!other) break;
		x.sqlite3_vfs_unregister(other);
	}

	let serial = 0;
	const randomHex = (bytes) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("hex");

	/** A new database's files and its own registered sqlite3_vfs. */
	function createFileSet() {
		const set = new FileSet(`/rivetkit-sqlite-${randomHex(6)}-${++serial}/db`);
		set.vfsName = `rivetkit-wasm-${randomHex(16)}`;
		const vfs = wasm.alloc(VFS_SIZE);
		try {
			const h = heap();
			h.copyWithin(vfs, template.pointer, template.pointer + VFS_SIZE);
			poke32(vfs + NEXT_OFFSET, 0);
			poke32(vfs + NAME_OFFSET, wasm.allocCString(set.vfsName));
		} catch (error) {
			wasm.dealloc(vfs);
			throw error;
		}
		const rc = x.sqlite3_vfs_register(vfs, 0);
		if (rc !== SQLITE_OK) {
			wasm.dealloc(peek32(vfs + NAME_OFFSET));
			wasm.dealloc(vfs);
			const error = new Error("could not register the VFS");
			error.rc = rc;
			throw error;
		}
		set.vfs = vfs;
		sets.set(vfs, set);
		return set;
	}

	/** Unregisters a database's VFS (its connection must be closed). */
	function releaseFileSet(set) {
		if (!set.vfs) return;
		const vfs = set.vfs;
		set.vfs = 0;
		sets.delete(vfs);
		x.sqlite3_vfs_unregister(vfs);
		wasm.dealloc(peek32(vfs + NAME_OFFSET));
		wasm.dealloc(vfs);
		set.files.clear();
		set.main = new MemFile();
		set.tracker = null;
	}

	return { createFileSet, releaseFileSet };
}

/** An absolute path with `.`, `..` and repeated slashes resolved (cwd is "/"). */
function normalizePath(path) {
	const parts = [];
	for (const part of path.split("/")) {
		if (part === "" || part === ".") continue;
		if (part === "..") parts.pop();
		else parts.push(part);
	}
	return `/${parts.join("/")}`;
}

module.exports = { installVfs };
