// ES module entry: the same objects as the CommonJS entry.
import cjs from "./index.js";

export const {
	open,
	Database,
	SqliteVfs,
	SqliteVfsPool,
	PooledSqliteHandle,
	SqliteError,
	createMemoryKv,
	DEFAULT_KV_LIMITS,
} = cjs;
export default cjs;
