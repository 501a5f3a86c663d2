//! The functions of SQLite's contrib `extension-functions.c` that 2.2.1
//! had and SQLite itself lacks, with 2.2.1's results (lib/wasm/functions.js
//! has the same for the WASM engine): reverse, proper, padl, padr, padc,
//! leftstr, rightstr, replicate, charindex, strfilter, difference, square,
//! atn2, cot, coth, and the aggregates stdev, variance, mode,
//! lower_quartile and upper_quartile.
//!
//! They are registered through the C API, not rusqlite's closures: they
//! read their arguments as extension-functions.c did, with SQLite's own
//! conversions (`sqlite3_value_text` of a REAL, `sqlite3_value_int` of a
//! TEXT, `sqlite3_value_numeric_type`), which rusqlite does not expose.
//! Where 2.2.1 read freed or uninitialized memory, or would hang
//! (`replicate(s, 0)`, `rightstr(s, -1)`, huge counts), they answer an
//! empty string, a "domain error", or SQLITE_TOOBIG instead.

mod sqlite;
mod stats;
mod text;

use std::ffi::{c_int, CStr};

use rusqlite::{ffi, Connection};

use sqlite::{Call, Value};
use stats::{Quartile, Sample, Spread};

/// What a function answers.
pub enum Out {
    Null,
    Int(i64),
    Real(f64),
    Text(Vec<u8>),
    Error(&'static str),
    TooBig,
}

/// Every function's flags, on both engines: a 2.2.1 schema's views,
/// triggers and CHECK constraints may use them with trusted_schema off.
const FLAGS: c_int = ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC | ffi::SQLITE_INNOCUOUS;

type Scalar = fn(&Call) -> Out;

const SCALARS: &[(&CStr, c_int, Scalar)] = &[
    (c"reverse", 1, reverse),
    (c"proper", 1, proper),
    (c"padl", 2, padl),
    (c"padr", 2, padr),
    (c"padc", 2, padc),
    (c"leftstr", 2, leftstr),
    (c"rightstr", 2, rightstr),
    (c"replicate", 2, replicate),
    (c"charindex", 2, charindex),
    (c"charindex", 3, charindex),
    (c"strfilter", 2, strfilter),
    (c"difference", 2, difference),
    (c"square", 1, square),
    (c"atn2", 2, atn2),
    (c"cot", 1, cot),
    (c"coth", 1, coth),
];

/// Registers the functions on `conn`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    for &(name, n_arg, f) in SCALARS {
        sqlite::create_scalar(conn, name, n_arg, FLAGS, f)?;
    }
    sqlite::create_aggregate::<Spread>(conn, c"stdev", FLAGS, spread_step, |s| {
        Out::Real(s.variance().sqrt())
    })?;
    sqlite::create_aggregate::<Spread>(conn, c"variance", FLAGS, spread_step, |s| {
        Out::Real(s.variance())
    })?;
    sqlite::create_aggregate::<Option<Sample>>(conn, c"mode", FLAGS, sample_step, |s| {
        s.map_or(Out::Null, stats::mode)
    })?;
    sqlite::create_aggregate::<Option<Sample>>(conn, c"lower_quartile", FLAGS, sample_step, |s| {
        s.map_or(Out::Null, |s| stats::quartile(s, Quartile::Lower))
    })?;
    sqlite::create_aggregate::<Option<Sample>>(conn, c"upper_quartile", FLAGS, sample_step, |s| {
        s.map_or(Out::Null, |s| stats::quartile(s, Quartile::Upper))
    })?;
    Ok(())
}

/// A text argument as C sees it (up to its first NUL), None if NULL.
fn text_arg(value: Value) -> Option<Vec<u8>> {
    if value.is_null() {
        return None;
    }
    Some(text::c_str(&value.text()).to_vec())
}

fn reverse(call: &Call) -> Out {
    text_arg(call.arg(0)).map_or(Out::Null, |s| Out::Text(text::reverse(&s)))
}

fn proper(call: &Call) -> Out {
    text_arg(call.arg(0)).map_or(Out::Null, |s| Out::Text(text::proper(&s)))
}

/// padl(), padr() and padc(): `split` gives the spaces before and after.
fn pad(call: &Call, split: fn(u64) -> (u64, u64)) -> Out {
    let Some(s) = text_arg(call.arg(0)) else {
        return Out::Null;
    };
    let width = call.arg(1).int64();
    if width < 0 {
        return Out::Error("domain error");
    }
    let missing = (width as u64).saturating_sub(text::char_count(&s) as u64);
    if s.len() as u64 + missing > call.context().length_limit() {
        return Out::TooBig;
    }
    let (left, right) = split(missing);
    Out::Text(text::pad(&s, left as usize, right as usize))
}

fn padl(call: &Call) -> Out {
    pad(call, |n| (n, 0))
}

fn padr(call: &Call) -> Out {
    pad(call, |n| (0, n))
}

fn padc(call: &Call) -> Out {
    pad(call, |n| (n / 2, n - n / 2))
}

fn leftstr(call: &Call) -> Out {
    let (Some(s), count) = (text_arg(call.arg(0)), call.arg(1)) else {
        return Out::Null;
    };
    if count.is_null() {
        return Out::Null;
    }
    let n = usize::try_from(count.int()).unwrap_or(0);
    Out::Text(text::leftstr(&s, n).to_vec())
}

fn rightstr(call: &Call) -> Out {
    let (Some(s), count) = (text_arg(call.arg(0)), call.arg(1)) else {
        return Out::Null;
    };
    if count.is_null() {
        return Out::Null;
    }
    // 2.2.1 read before the string for a negative count.
    match usize::try_from(count.int()) {
        Ok(n) => Out::Text(text::rightstr(&s, n).to_vec()),
        Err(_) => Out::Error("domain error"),
    }
}

fn replicate(call: &Call) -> Out {
    let value = call.arg(0);
    if value.is_null() {
        return Out::Null;
    }
    let times = call.arg(1).int64();
    if times < 0 {
        return Out::Error("domain error");
    }
    let bytes = value.bytes();
    let s = text::c_str(&value.text()).to_vec();
    // 2.2.1 copied each repetition `bytes` apart: with a NUL inside, the
    // result ended after the first.
    if times == 0 || s.is_empty() {
        return Out::Text(Vec::new());
    }
    if s.len() < bytes {
        return Out::Text(s);
    }
    match (s.len() as u64).checked_mul(times as u64) {
        Some(total) if total <= call.context().length_limit() => {
            Out::Text(s.repeat(times as usize))
        }
        _ => Out::TooBig,
    }
}

fn charindex(call: &Call) -> Out {
    let (Some(needle), Some(haystack)) = (text_arg(call.arg(0)), text_arg(call.arg(1))) else {
        return Out::Null;
    };
    let skip = if call.len() == 3 {
        call.arg(2).int().wrapping_sub(1).max(0) as usize
    } else {
        0
    };
    Out::Int(text::charindex(&needle, &haystack, skip))
}

fn strfilter(call: &Call) -> Out {
    match (text_arg(call.arg(0)), text_arg(call.arg(1))) {
        (Some(s), Some(allowed)) => Out::Text(text::strfilter(&s, &allowed)),
        _ => Out::Null,
    }
}

fn difference(call: &Call) -> Out {
    match (text_arg(call.arg(0)), text_arg(call.arg(1))) {
        (Some(a), Some(b)) => Out::Int(text::difference(&a, &b)),
        _ => Out::Null,
    }
}

fn square(call: &Call) -> Out {
    let x = call.arg(0);
    match x.kind() {
        ffi::SQLITE_INTEGER => {
            let i = x.int64();
            Out::Int(i.wrapping_mul(i))
        }
        ffi::SQLITE_NULL => Out::Null,
        _ => {
            let r = x.double();
            Out::Real(r * r)
        }
    }
}

fn atn2(call: &Call) -> Out {
    let (y, x) = (call.arg(0), call.arg(1));
    if y.is_null() || x.is_null() {
        return Out::Null;
    }
    Out::Real(libm::atan2(y.double(), x.double()))
}

fn cot(call: &Call) -> Out {
    let x = call.arg(0);
    if x.is_null() {
        return Out::Null;
    }
    Out::Real(1.0 / libm::tan(x.double()))
}

fn coth(call: &Call) -> Out {
    let x = call.arg(0);
    if x.is_null() {
        return Out::Null;
    }
    Out::Real(1.0 / libm::tanh(x.double()))
}

fn spread_step(spread: &mut Spread, value: Value) {
    if value.numeric_kind() != ffi::SQLITE_NULL {
        spread.add(value.double());
    }
}

/// mode() and the quartiles: integers if the first value (after numeric
/// affinity) is one, reals otherwise; NULLs skipped.
fn sample_step(sample: &mut Option<Sample>, value: Value) {
    let kind = value.numeric_kind();
    if kind == ffi::SQLITE_NULL {
        return;
    }
    let sample = sample.get_or_insert_with(|| {
        if kind == ffi::SQLITE_INTEGER {
            Sample::Ints(Vec::new())
        } else {
            Sample::Reals(Vec::new())
        }
    });
    match sample {
        Sample::Ints(values) => values.push(value.int64()),
        Sample::Reals(values) => values.push(value.double()),
    }
}
