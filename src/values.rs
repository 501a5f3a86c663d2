//! Values between JS and the engine: the parameters of a call, read from
//! JS, and the results of a call, made JS values.

use std::cell::RefCell;
use std::collections::HashMap;

use napi::bindgen_prelude::*;

use rivetkit_sqlite_engine::connection::{Output, ResultSet};
use rivetkit_sqlite_engine::errors::EngineError;
use rivetkit_sqlite_engine::values::{Cell, Cells, CellsIter, Param, Params};

use crate::errors::{napi_err, to_js};

/// A parameter value as JS hands it over: null, number, bigint, string,
/// boolean (1 / 0) or Uint8Array (the JS layer has checked the types and
/// named the parameter in its errors; `name` only serves a value that
/// changed since). One `typeof` and one read per value.
pub(crate) fn param(value: Unknown<'_>, name: &dyn std::fmt::Display) -> Result<Param, String> {
    let value_type = value.get_type().map_err(napi_err)?;
    // SAFETY (each `cast`): the value is of the type `get_type` just read.
    let param = match value_type {
        ValueType::Null => Param::Null,
        ValueType::Number => Param::number(unsafe { value.cast::<f64>() }.map_err(napi_err)?),
        ValueType::String => Param::Text(text(value).ok_or_else(|| unbindable(name))?),
        ValueType::Boolean => {
            Param::Integer(unsafe { value.cast::<bool>() }.map_err(napi_err)? as i64)
        }
        ValueType::BigInt => {
            let (value, lossless) = unsafe { value.cast::<BigInt>() }
                .map_err(napi_err)?
                .get_i64();
            if !lossless {
                return Err(to_js(EngineError::Range(format!(
                    "Parameter {name}: BigInt does not fit in a signed 64-bit integer"
                ))));
            }
            Param::Integer(value)
        }
        // A typed array of another kind fails here (its type is checked).
        ValueType::Object => match unsafe { value.cast::<&[u8]>() } {
            Ok(bytes) => Param::Blob(bytes.to_vec()),
            Err(_) => return Err(unbindable(name)),
        },
        _ => return Err(unbindable(name)),
    };
    Ok(param)
}

fn unbindable(name: &dyn std::fmt::Display) -> Error<String> {
    Error::new(
        "ERR_INVALID_ARG_TYPE".to_owned(),
        format!("Parameter {name}: only null, numbers, bigints, strings, booleans and Uint8Arrays can be bound"),
    )
}

/// Most positional parameters `execute` takes as arguments of its own.
pub(crate) const DIRECT_PARAMS: usize = 4;

/// An argument that may be null or undefined (None), read only when it is
/// needed: napi-rs reads an `Option` argument's type on every call.
pub(crate) fn optional<T: FromNapiValue>(value: Unknown<'_>) -> Result<Option<T>, String> {
    // SAFETY: `value` is a handle of the current call on its env; the
    // `Option` conversion checks the value's type itself.
    unsafe { Option::<T>::from_napi_value(value.value().env, value.raw()) }.map_err(napi_err)
}

/// The parameters of a call: an array (positional), an object keyed by name
/// without its sigil (named), or neither.
pub(crate) fn params(
    positional: Option<Array<'_>>,
    named: Option<Object<'_>>,
) -> Result<Params, String> {
    if let Some(values) = positional {
        let mut params = Vec::with_capacity(values.len() as usize);
        for i in 0..values.len() {
            let value = values.get::<Unknown>(i).map_err(napi_err)?;
            params.push(match value {
                Some(value) => param(value, &(i + 1))?,
                None => Param::Null,
            });
        }
        return Ok(Params::Positional(params));
    }
    let Some(values) = named else {
        return Ok(Params::None);
    };
    let keys = Object::keys(&values).map_err(napi_err)?;
    let mut params = HashMap::with_capacity(keys.len());
    for key in keys {
        // No parameter of SQL text has a NUL in its name (SQLite gives the
        // names as C strings): such a key binds nothing, as any other key
        // without a parameter, and N-API could not look it up by name.
        if key.contains('\0') {
            continue;
        }
        let value = values
            .get_named_property::<Unknown>(&key)
            .map_err(napi_err)?;
        let value = param(value, &format_args!("\"{key}\""))?;
        params.insert(key, value);
    }
    Ok(Params::Named(params))
}

/// Text up to about this many bytes (in UTF-8) is read in one N-API call.
const TEXT_BUFFER: usize = 4096;

/// A JS string's text, or None if `value` is not a string. napi-rs's
/// `String` conversion asks for the length, then copies: two N-API calls,
/// each of which transcodes the whole string; here text that fits
/// [`TEXT_BUFFER`] takes one.
fn text(value: Unknown<'_>) -> Option<String> {
    let mut buffer = [std::mem::MaybeUninit::<u8>::uninit(); TEXT_BUFFER];
    let mut len = 0;
    // SAFETY: the value and its env are those of the current call; the
    // buffer is writable for TEXT_BUFFER bytes, of which N-API writes `len`
    // plus a NUL.
    let status = unsafe {
        napi::sys::napi_get_value_string_utf8(
            value.value().env,
            value.raw(),
            buffer.as_mut_ptr().cast(),
            TEXT_BUFFER,
            &mut len,
        )
    };
    if status != napi::sys::Status::napi_ok {
        return None;
    }
    // N-API writes whole characters only: text cut short stops less than
    // one character (4 bytes) before the end of the buffer. Text that ends
    // further from it is whole.
    if len + 1 + 4 <= TEXT_BUFFER {
        // SAFETY: N-API wrote the first `len` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), len) };
        return Some(match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        });
    }
    // SAFETY: `value` is a string (the call above succeeded).
    unsafe { value.cast::<String>() }.ok()
}

/// The SQL text of a call.
pub(crate) fn sql_text(value: Unknown<'_>) -> Result<String, String> {
    text(value).ok_or_else(|| {
        Error::new(
            "ERR_INVALID_ARG_TYPE".to_owned(),
            "SQL must be a string".to_owned(),
        )
    })
}

/// The largest integer a JS number holds exactly: 2^53 − 1.
pub(crate) const MAX_SAFE: i64 = 9_007_199_254_740_991;

/// Integers within ±(2^53 − 1) become numbers, others BigInt.
pub(crate) fn integer<'env>(env: &'env Env, value: i64) -> Result<Unknown<'env>> {
    if (-MAX_SAFE..=MAX_SAFE).contains(&value) {
        (value as f64).into_unknown(env)
    } else {
        BigInt::from(value).into_unknown(env)
    }
}

/// The JS functions a [`crate::calls::Calls`] makes results with (see
/// [`Packer`]), kept between calls until teardown lets them go.
pub(crate) struct ArrayMethods {
    /// `(...values) => values`, given by the JS layer: makes a result whose
    /// room is its length.
    pack: RefCell<Option<FunctionRef<(), ()>>>,
    /// `Array.prototype.push`, from the first result of more than
    /// [`PUSH_CHUNK`] values (looking it up by name costs about 1,200
    /// instructions).
    push: RefCell<Option<FunctionRef<(), ()>>>,
}

impl ArrayMethods {
    /// Keeps `pack` (see [`ArrayMethods::pack`]).
    pub(crate) fn new(pack: Function<'_, (), ()>) -> Result<Self> {
        Ok(ArrayMethods {
            pack: RefCell::new(Some(pack.create_ref()?)),
            push: RefCell::new(None),
        })
    }

    /// Lets go of the functions kept (see [`crate::calls::Calls::release`]);
    /// one in use is left as it is.
    pub(crate) fn release(&self) {
        for kept in [&self.pack, &self.push] {
            if let Ok(mut kept) = kept.try_borrow_mut() {
                kept.take();
            }
        }
    }
}

/// The function `kept` holds, if any.
fn kept<'env>(
    env: &'env Env,
    kept: &RefCell<Option<FunctionRef<(), ()>>>,
) -> Result<Option<Function<'env, (), ()>>> {
    kept.borrow()
        .as_ref()
        .map(|kept| kept.borrow_back(env))
        .transpose()
}

/// Values passed per call of `pack` or `push` (well within the number of
/// arguments a call may take).
const PUSH_CHUNK: usize = 4096;

/// Up to this many values (a result without rows), an array is filled
/// element by element: one call of `pack` costs about as much as setting
/// a handful of elements.
const SET_AT_MOST: usize = 4;

/// Builds a JS array of a known length. Setting elements one by one costs a
/// property store across N-API per element, the largest part of making a
/// result; past [`SET_AT_MOST`] values, they go across in calls that take
/// many values each. The first call is the JS layer's `pack`, whose array
/// has room for its values only (`push` onto an empty array makes room for
/// half as many again and 16 more: a point query's 8 values took 28
/// places, 240 bytes, which brings the next garbage collection closer);
/// past [`PUSH_CHUNK`] values, `push` calls append the rest. Without
/// `pack` (a result made on an engine thread's behalf), `push` calls
/// fill an empty array.
struct Packer<'env> {
    env: &'env Env,
    methods: Option<&'env ArrayMethods>,
    /// The array, once made (at once, unless `pack` makes it).
    array: Option<Array<'env>>,
    /// Values gathered for the next call, or None when they are set one by one.
    values: Option<Vec<napi::sys::napi_value>>,
    /// Values set so far, when they are set one by one.
    set: u32,
}

impl<'env> Packer<'env> {
    fn new(env: &'env Env, len: usize, methods: Option<&'env ArrayMethods>) -> Result<Self> {
        if len <= SET_AT_MOST {
            return Ok(Packer {
                env,
                methods,
                array: Some(env.create_array(len as u32)?),
                values: None,
                set: 0,
            });
        }
        Ok(Packer {
            env,
            methods,
            array: None,
            values: Some(Vec::with_capacity(len.min(PUSH_CHUNK))),
            set: 0,
        })
    }

    fn add<T: ToNapiValue>(&mut self, value: T) -> Result<()> {
        let Some(values) = self.values.as_mut() else {
            if let Some(array) = self.array.as_mut() {
                array.set(self.set, value)?;
                self.set += 1;
            }
            return Ok(());
        };
        // SAFETY: `self.env` is the live env of the current call.
        values.push(unsafe { T::to_napi_value(self.env.raw(), value)? });
        if values.len() == PUSH_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// `function(...values)` with `this`, across N-API.
    fn call(
        &self,
        function: &Function<'env, (), ()>,
        this: napi::sys::napi_value,
        values: &[napi::sys::napi_value],
    ) -> Result<napi::sys::napi_value> {
        let mut returned = std::ptr::null_mut();
        // SAFETY: `this`, the function and every value are handles made in
        // the current call's scope on `self.env`; `values` holds
        // `values.len()` of them.
        let status = unsafe {
            napi::sys::napi_call_function(
                self.env.raw(),
                this,
                function.raw(),
                values.len(),
                values.as_ptr(),
                &mut returned,
            )
        };
        if status != napi::sys::Status::napi_ok {
            return Err(Error::new(
                Status::from(status),
                "making a result failed".to_owned(),
            ));
        }
        Ok(returned)
    }

    /// Passes the values gathered to `pack` (the first time, if there is
    /// one) or `push`.
    fn flush(&mut self) -> Result<()> {
        let Some(mut values) = self.values.take() else {
            return Ok(());
        };
        if self.array.is_none() {
            let pack = match self.methods {
                Some(methods) => kept(self.env, &methods.pack)?,
                None => None,
            };
            if let Some(pack) = pack {
                // SAFETY: `self.env` is the live env of the current call.
                let undefined = unsafe { <()>::to_napi_value(self.env.raw(), ())? };
                let made = self.call(&pack, undefined, &values)?;
                // SAFETY: `made` is a value returned in this call's scope.
                let made = unsafe { Unknown::from_napi_value(self.env.raw(), made)? };
                if !made.is_array()? {
                    return Err(Error::new(
                        Status::ArrayExpected,
                        "pack returned no array".to_owned(),
                    ));
                }
                // SAFETY: it is an array, just checked.
                self.array = Some(unsafe { made.cast::<Array>()? });
                values.clear();
            } else {
                self.array = Some(self.env.create_array(0)?);
            }
        }
        if let Some(array) = self.array.as_ref().filter(|_| !values.is_empty()) {
            let cache = self.methods.map(|methods| &methods.push);
            let push = match cache.map(|cache| kept(self.env, cache)).transpose()? {
                Some(Some(push)) => push,
                _ => {
                    // (A getter of `push` may run JS, hence a call of its
                    // own: no borrow of the cache is held meanwhile.)
                    let push = array.get_named_property_unchecked::<Function<(), ()>>("push")?;
                    if let Some(cache) = cache {
                        let mut cache = cache.borrow_mut();
                        if cache.is_none() {
                            *cache = Some(push.create_ref()?);
                        }
                    }
                    push
                }
            };
            self.call(&push, array.raw(), &values)?;
            values.clear();
        }
        self.values = Some(values);
        Ok(())
    }

    fn finish(mut self) -> Result<Array<'env>> {
        self.flush()?;
        self.array
            .ok_or_else(|| Error::new(Status::GenericFailure, "a result was never made".to_owned()))
    }
}

/// The result of `execute` as one flat array (each array or object made
/// across N-API costs several calls; one array, see [`Packer`], is the
/// least): `[changes, lastInsertRowid, state, columns₀,
/// rowCount₀, cells₀…, columns₁, rowCount₁, cells₁…]`, one group per
/// statement that returns columns: its column names joined by NUL (which no
/// name holds), its row count, then every cell of every row, row after row.
/// `state` has bit 1 set when no transaction is open, bit 2 when a sealed
/// delta waits to be taken, and bit 4 ([`crate::SUSPENDED`]) when the call goes on
/// on an engine thread.
///
/// A result of more than `most` values comes in parts: this array holds
/// whole rows of about the first `most`, its `state` has bit 8
/// ([`crate::MORE`]) set, and the rest is returned as [`Unsent`], whose
/// [`Unsent::next_part`] makes the next part (the JS thread does other work
/// in between).
pub(crate) fn output<'env>(
    env: &'env Env,
    out: Output,
    methods: Option<&'env ArrayMethods>,
    most: usize,
) -> Result<(Array<'env>, Option<Unsent>)> {
    let len: usize = 3 + out.values + 2 * out.sets.len();
    let parted = len > most;
    let mut result = Packer::new(env, len.min(most), methods)?;
    result.add(out.changes as f64)?;
    result.add(integer(env, out.last_insert_rowid)?)?;
    result.add(if parted {
        out.state | crate::MORE
    } else {
        out.state
    })?;
    let mut unsent = Unsent {
        sets: out.sets.into_iter(),
        cells: Cells::default().into_iter(),
        width: 0,
    };
    let done = unsent.add(env, &mut result, most.saturating_sub(3))?;
    Ok((result.finish()?, (!done).then_some(unsent)))
}

/// What [`output`] left of a result for later parts: the rows of the set
/// under way (`cells`, `width` each), then the sets after it.
pub(crate) struct Unsent {
    sets: std::vec::IntoIter<ResultSet>,
    cells: CellsIter,
    width: usize,
}

impl Unsent {
    /// The next part, a new array: the rest of the set under way, then the
    /// sets after it (each its columns, row count and cells, as in
    /// [`output`]), whole rows of about `most` values in all; None if
    /// nothing is left.
    pub(crate) fn next_part<'env>(
        &mut self,
        env: &'env Env,
        most: usize,
    ) -> Result<Option<Array<'env>>> {
        if self.cells.len() == 0 && self.sets.len() == 0 {
            return Ok(None);
        }
        // (More than SET_AT_MOST: the values go across in calls of many.)
        let mut part = Packer::new(env, most.max(SET_AT_MOST + 1), None)?;
        self.add(env, &mut part, most)?;
        part.finish().map(Some)
    }

    /// Adds whole rows of up to about `most` values (and the two of a set's
    /// start) to `result`; returns whether none are left.
    fn add(&mut self, env: &Env, result: &mut Packer<'_>, mut most: usize) -> Result<bool> {
        loop {
            while most > 0 && self.cells.len() > 0 {
                for cell in self.cells.by_ref().take(self.width) {
                    match cell {
                        Cell::Null => result.add(Null)?,
                        Cell::Integer(v) => result.add(integer(env, v)?)?,
                        Cell::Real(v) => result.add(v)?,
                        Cell::Text(v) => result.add(v)?,
                        Cell::Blob(v) => result.add(Uint8ArraySlice::copy_from(env, v)?)?,
                    }
                }
                most = most.saturating_sub(self.width);
            }
            if self.cells.len() > 0 {
                return Ok(false);
            }
            if most == 0 {
                // The next part starts with the next set, if any.
                return Ok(self.sets.len() == 0);
            }
            let Some(set) = self.sets.next() else {
                return Ok(true);
            };
            let rows = set.row_count() as u32;
            result.add(set.columns)?;
            result.add(rows)?;
            most = most.saturating_sub(2);
            self.width = set.width;
            self.cells = set.cells.into_iter();
        }
    }
}

/// `[[index, bytes], ...]` as a JS array of pairs.
pub(crate) fn indexed_chunks<'env>(
    env: &'env Env,
    chunks: &[(u32, Vec<u8>)],
) -> Result<Array<'env>> {
    let mut out = env.create_array(chunks.len() as u32)?;
    for (i, (index, bytes)) in chunks.iter().enumerate() {
        let mut pair = env.create_array(2)?;
        pair.set(0, *index)?;
        pair.set(1, Uint8ArraySlice::copy_from(env, bytes)?)?;
        out.set(i as u32, pair)?;
    }
    Ok(out)
}
