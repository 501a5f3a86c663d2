"use strict";

// Views of the WASM module's linear memory. Memory growth detaches every
// typed array over the old buffer, so each accessor takes its view fresh.

// Text as SQLite holds it: a leading U+FEFF is a character of the text (of a
// value, a column name, a file name the authorizer checks), not a byte-order
// mark to drop, as TextDecoder does by default.
const TEXT = { ignoreBOM: true };

function heapAccess(memory) {
	const decoder = new TextDecoder("utf-8", TEXT);
	let u8 = new Uint8Array(memory.buffer);
	let i32 = new Int32Array(memory.buffer);
	/** The bytes of the heap (refreshing both views after a growth). */
	const heap = () => {
		if (u8.buffer !== memory.buffer) {
			u8 = new Uint8Array(memory.buffer);
			i32 = new Int32Array(memory.buffer);
		}
		return u8;
	};
	/** The 32-bit words of the heap. */
	const words = () => {
		heap();
		return i32;
	};
	return {
		heap,
		words,
		peek32: (p) => words()[p >> 2],
		poke32: (p, v) => {
			words()[p >> 2] = v;
		},
		/** Writes a non-negative safe integer as a little-endian i64. */
		poke64: (p, v) => {
			const w = words();
			w[p >> 2] = (v % 0x100000000) | 0;
			w[(p >> 2) + 1] = Math.floor(v / 0x100000000) | 0;
		},
		/** The NUL-terminated UTF-8 string at `p` (null for a null pointer). */
		cstr: (p) => {
			if (!p) return null;
			const h = heap();
			return decoder.decode(h.subarray(p, h.indexOf(0, p)));
		},
	};
}

module.exports = { TEXT, heapAccess };
