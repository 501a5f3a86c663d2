// ES module types: the same names as index.d.ts, and the default export
// index.mjs has (the CommonJS module's exports object).
export * from "./index.js";
import * as sqliteVfs from "./index.js";
export default sqliteVfs;
