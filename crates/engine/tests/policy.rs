//! The authorizer's rules (lib/policy.txt and the attach / extension rules).

use rivetkit_sqlite_engine::policy::{authorize, bound, changes_programs, kept, limits, Request};
use rusqlite::ffi;
use rusqlite::hooks::Authorization;
use rusqlite::limits::Limit;

fn decide(code: i32, arg1: Option<&str>, arg2: Option<&str>) -> Authorization {
    authorize(Request { code, arg1, arg2 })
}

fn pragma<'a>(name: &'a str, value: Option<&'a str>) -> Authorization {
    decide(ffi::SQLITE_PRAGMA, Some(name), value)
}

const RULES: &str = include_str!("../../../lib/policy.txt");

/// The rule lines as (kind, pragma name, values).
fn rule_lines() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    RULES
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert!(words.len() >= 2, "`kind name…` in {line:?}");
            (words[0], words[1], words[2..].to_vec())
        })
        .collect()
}

fn rules(kind: &str) -> Vec<&'static str> {
    rule_lines()
        .into_iter()
        .filter(|(k, _, _)| *k == kind)
        .map(|(_, name, _)| name)
        .collect()
}

#[test]
fn the_rule_file_is_well_formed_and_names_real_pragmas() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let mut stmt = conn.prepare("SELECT name FROM pragma_pragma_list").unwrap();
    let known: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let lines: Vec<_> = rule_lines()
        .into_iter()
        .filter(|(kind, _, _)| *kind != "limit" && *kind != "bound")
        .collect();
    for (kind, name, values) in &lines {
        assert!(
            ["read-only", "denied", "only", "fixed", "kept"].contains(kind),
            "unknown kind {kind:?} for {name:?}"
        );
        // `only` and `fixed` list their values; `kept` may list the words
        // of its values.
        assert!(
            *kind == "kept" || values.is_empty() != ["only", "fixed"].contains(kind),
            "values go with `only` and `fixed`, and only with them: {name:?}"
        );
        assert_eq!(
            lines.iter().filter(|(_, other, _)| other == name).count(),
            1,
            "one rule per pragma: {name:?}"
        );
        // The denied ones need not exist in this build (data_store_directory
        // is Windows-only); a read-only one that did not would protect nothing.
        if *kind != "denied" {
            assert!(
                known.iter().any(|k| k == name),
                "no pragma {name:?} in SQLite"
            );
        }
    }
    assert!(rules("fixed").contains(&"journal_mode"));
    assert!(rules("read-only").contains(&"page_size"));
    assert!(rules("denied").contains(&"temp_store_directory"));
    assert!(rules("only").contains(&"encoding"));
}

/// Each kept setting reads as a number, and what `kept()` makes of that
/// number sets it back to the same value (a restore keeps it as it was).
#[test]
fn every_kept_setting_reads_and_sets_back_the_same() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA secure_delete = FAST; PRAGMA foreign_keys = ON")
        .unwrap();
    let settings: Vec<_> = kept().collect();
    assert!(settings.iter().any(|(name, _)| *name == "foreign_keys"));
    for (name, words) in settings {
        let read = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
                .unwrap_or_else(|e| panic!("PRAGMA {name}: {e}"))
        };
        let value = read(&conn);
        let set = usize::try_from(value)
            .ok()
            .and_then(|i| words.get(i))
            .map_or_else(|| value.to_string(), |w| (*w).to_owned());
        let fresh = rusqlite::Connection::open_in_memory().unwrap();
        fresh
            .execute_batch(&format!("PRAGMA {name} = {set}"))
            .unwrap();
        assert_eq!(read(&fresh), value, "{name} set back as {set}");
    }
}

/// Each `bound` rule names a number, which `bound()` reads.
#[test]
fn every_bound_rule_has_a_value() {
    let rules = rules("bound");
    assert!(rules.contains(&"cut_chunks"));
    assert!(rules.contains(&"result_values"));
    assert!(rules.contains(&"result_bytes"));
    for name in rules {
        assert!(bound(name).is_some(), "bound {name:?} has no value");
    }
    assert_eq!(bound("cut_chunks"), Some(1 << 20));
    assert_eq!(bound("result_values"), Some(1 << 25));
    assert_eq!(bound("result_bytes"), Some(1 << 30));
    assert_eq!(bound("no_such_bound"), None);
}

#[test]
fn every_limit_rule_sets_its_limit() {
    let rules = rules("limit");
    assert!(rules.contains(&"attached") && rules.contains(&"like_pattern_length"));
    let limits: Vec<(Limit, i32)> = limits().collect::<Result<_, _>>().unwrap();
    assert_eq!(limits.len(), rules.len());
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for (limit, value) in limits {
        assert!(value >= 0);
        conn.set_limit(limit, value).unwrap();
        assert_eq!(conn.limit(limit).unwrap(), value);
    }
    assert_eq!(conn.limit(Limit::SQLITE_LIMIT_ATTACHED).unwrap(), 2);
    assert_eq!(
        conn.limit(Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH).unwrap(),
        2_000
    );
    assert_eq!(
        conn.limit(Limit::SQLITE_LIMIT_SQL_LENGTH).unwrap(),
        64 * 1024 * 1024
    );
}

#[test]
fn read_only_pragmas_can_be_read_not_set() {
    for name in rules("read-only") {
        assert_eq!(pragma(name, None), Authorization::Allow, "{name}");
        assert_eq!(pragma(name, Some("1")), Authorization::Deny, "{name} = 1");
        let upper = name.to_ascii_uppercase();
        assert_eq!(
            pragma(&upper, Some("1")),
            Authorization::Deny,
            "{upper} = 1"
        );
    }
}

#[test]
fn denied_pragmas_cannot_be_used_at_all() {
    for name in rules("denied") {
        assert_eq!(pragma(name, None), Authorization::Deny, "{name}");
        assert_eq!(
            pragma(name, Some("/tmp")),
            Authorization::Deny,
            "{name} = /tmp"
        );
    }
}

#[test]
fn only_pragmas_can_be_read_and_set_to_their_values() {
    assert_eq!(pragma("encoding", None), Authorization::Allow);
    for value in ["UTF-8", "utf-8", "UTF8", "utf8"] {
        assert_eq!(
            pragma("encoding", Some(value)),
            Authorization::Allow,
            "{value}"
        );
        assert_eq!(
            pragma("ENCODING", Some(value)),
            Authorization::Allow,
            "{value}"
        );
    }
    for value in [
        "UTF-16", "UTF-16le", "utf-16be", "UTF16", "utf16le", "UTF16BE", "",
    ] {
        assert_eq!(
            pragma("encoding", Some(value)),
            Authorization::Deny,
            "{value}"
        );
    }
}

#[test]
fn a_fixed_pragma_set_to_another_value_is_ignored() {
    assert_eq!(pragma("journal_mode", None), Authorization::Allow);
    for value in ["memory", "MEMORY"] {
        assert_eq!(
            pragma("journal_mode", Some(value)),
            Authorization::Allow,
            "{value}"
        );
    }
    for value in ["WAL", "delete", "off", "truncate", "persist", ""] {
        assert_eq!(
            pragma("JOURNAL_MODE", Some(value)),
            Authorization::Ignore,
            "{value}"
        );
    }
}

#[test]
fn settings_in_force_may_be_set_to_their_value_only() {
    for (name, same, other) in [
        ("locking_mode", "EXCLUSIVE", "NORMAL"),
        ("mmap_size", "0", "268435456"),
        ("temp_store", "MEMORY", "FILE"),
        ("temp_store", "2", "1"),
        ("trusted_schema", "OFF", "ON"),
        ("writable_schema", "false", "1"),
    ] {
        assert_eq!(
            pragma(name, Some(same)),
            Authorization::Allow,
            "{name} = {same}"
        );
        assert_eq!(
            pragma(name, Some(other)),
            Authorization::Deny,
            "{name} = {other}"
        );
        assert_eq!(pragma(name, None), Authorization::Allow, "{name}");
    }
}

#[test]
fn other_pragmas_are_allowed() {
    for (name, value) in [
        ("user_version", Some("7")),
        ("foreign_keys", Some("ON")),
        ("table_info", Some("t")),
    ] {
        assert_eq!(pragma(name, value), Authorization::Allow, "{name}");
    }
}

#[test]
fn only_in_memory_databases_can_be_attached() {
    for filename in ["", ":memory:"] {
        assert_eq!(
            decide(ffi::SQLITE_ATTACH, Some(filename), None),
            Authorization::Allow,
            "{filename:?}"
        );
    }
    for filename in [
        "/tmp/other.db",
        "other.db",
        "file:x.db?mode=memory",
        "file::memory:",
    ] {
        assert_eq!(
            decide(ffi::SQLITE_ATTACH, Some(filename), None),
            Authorization::Deny,
            "{filename:?}"
        );
    }
    // An ATTACH whose name is not known at prepare time.
    assert_eq!(decide(ffi::SQLITE_ATTACH, None, None), Authorization::Deny);
}

#[test]
fn load_extension_is_denied_other_functions_allowed() {
    for name in ["load_extension", "LOAD_EXTENSION"] {
        // (A function's name is the second argument.)
        assert_eq!(
            decide(ffi::SQLITE_FUNCTION, None, Some(name)),
            Authorization::Deny
        );
    }
    assert_eq!(
        decide(ffi::SQLITE_FUNCTION, None, Some("upper")),
        Authorization::Allow
    );
    assert_eq!(
        decide(ffi::SQLITE_READ, Some("t"), Some("v")),
        Authorization::Allow
    );
}

#[test]
fn what_may_change_how_other_statements_compile() {
    let request = |code, arg1, arg2| Request { code, arg1, arg2 };
    for unchanging in [
        request(ffi::SQLITE_READ, Some("t"), Some("v")),
        request(ffi::SQLITE_SELECT, None, None),
        request(ffi::SQLITE_INSERT, Some("t"), None),
        request(ffi::SQLITE_UPDATE, Some("t"), Some("v")),
        request(ffi::SQLITE_DELETE, Some("t"), None),
        request(ffi::SQLITE_FUNCTION, None, Some("upper")),
        request(ffi::SQLITE_TRANSACTION, Some("BEGIN"), None),
        request(ffi::SQLITE_SAVEPOINT, Some("BEGIN"), Some("s")),
        request(ffi::SQLITE_RECURSIVE, None, None),
        request(ffi::SQLITE_PRAGMA, Some("foreign_keys"), None),
    ] {
        assert!(!changes_programs(unchanging), "{unchanging:?}");
    }
    for changing in [
        request(ffi::SQLITE_PRAGMA, Some("foreign_keys"), Some("ON")),
        request(ffi::SQLITE_CREATE_TRIGGER, Some("g"), Some("t")),
        request(ffi::SQLITE_DROP_TABLE, Some("t"), None),
        request(ffi::SQLITE_ALTER_TABLE, Some("main"), Some("t")),
        request(ffi::SQLITE_ATTACH, Some(""), None),
        request(ffi::SQLITE_DETACH, Some("aux"), None),
        request(ffi::SQLITE_ANALYZE, Some("t"), None),
        request(ffi::SQLITE_CREATE_VTABLE, Some("v"), Some("fts5")),
    ] {
        assert!(changes_programs(changing), "{changing:?}");
    }
}
