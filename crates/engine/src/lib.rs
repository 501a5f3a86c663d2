//! Engine of `@rivetkit/sqlite-vfs`, free of N-API: a SQLite database on a
//! local file that reports, after each call, which 4 KiB chunks changed. The
//! napi binding crate (the repository root) exposes it to JS.
//!
//! Modules: `vfs` (the VFS shim), `tracker` (dirty chunks and before-images,
//! and which chunks are still only in the KV), `paging` (reading those),
//! `connection` (one database), `control` (inline budget, deadline and
//! interrupt of a call), `functions` (extension-functions.c's, as 2.2.1 had them), `pool` (the engine threads), `script` (statement
//! boundaries, and which statements may run long), `policy` (what SQL may
//! do) and `authorizer` (its rules, on every connection), `values` (parameters and cells), `errors`, `pos_io` (positional file
//! I/O on Unix and Windows), `scratch` (the local directories, and those
//! of processes that died).

#![deny(clippy::all)]

pub mod authorizer;
pub mod connection;
pub mod control;
pub mod errors;
pub mod functions;
pub mod paging;
pub mod policy;
pub mod pool;
pub mod pos_io;
pub mod scratch;
pub mod script;
pub mod tracker;
pub mod values;
pub mod vfs;
