//! The string functions, on bytes as extension-functions.c sees them: a
//! string ends at its first NUL, and a character is a byte and the
//! continuation bytes (0b10xxxxxx) after it, compared by the value its
//! decoder gives it (0xFFFD for what is not UTF-8).

/// The bytes up to the first NUL.
pub fn c_str(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// How many bytes follow a first byte (4: not a first byte).
fn trailing(first: u8) -> usize {
    match first {
        0x00..=0x7f => 0,
        0x80..=0xbf => 4,
        0xc0..=0xdf => 1,
        0xe0..=0xef => 2,
        0xf0..=0xf7 => 3,
        _ => 4,
    }
}

/// The value of the character at `at` (0 at the end), as the decoder of
/// extension-functions.c computes it, in C `int` arithmetic.
fn value(s: &[u8], at: usize) -> i32 {
    const BITS: [i32; 4] = [0, 12416, 925824, 63447168];
    const MASK: [u32; 4] = [0, 0xffff_ff80, 0xffff_f800, 0xffff_0000];
    let byte = |i: usize| i32::from(s.get(i).copied().unwrap_or(0));
    let first = byte(at);
    let extra = trailing(first as u8);
    match extra {
        0 => first,
        4 => 0xfffd,
        _ => {
            let mut c = first;
            for k in 1..=extra {
                c = c.wrapping_shl(6).wrapping_add(byte(at + k));
            }
            c = c.wrapping_sub(BITS[extra]);
            let u = c as u32;
            if MASK[extra] & u == 0 || u & 0xffff_f800 == 0xd800 || u & 0xffff_fffe == 0xfffe {
                0xfffd
            } else {
                c
            }
        }
    }
}

/// Where the character after the one at `at` starts.
fn next(s: &[u8], at: usize) -> usize {
    let mut at = at + 1;
    while at < s.len() && s[at] & 0xc0 == 0x80 {
        at += 1;
    }
    at
}

/// The characters of `s`, as byte ranges.
fn chars(s: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= s.len() {
            return None;
        }
        let start = at;
        at = next(s, at);
        Some(start..at)
    })
}

/// How many characters `s` has.
pub fn char_count(s: &[u8]) -> usize {
    chars(s).count()
}

/// reverse(): the characters in reverse order (each one's bytes kept).
pub fn reverse(s: &[u8]) -> Vec<u8> {
    let ranges: Vec<_> = chars(s).collect();
    let mut out = Vec::with_capacity(s.len());
    for range in ranges.into_iter().rev() {
        out.extend_from_slice(&s[range]);
    }
    out
}

/// proper(): the first ASCII letter after a space or tab (or at the start)
/// upper case, the others lower case.
pub fn proper(s: &[u8]) -> Vec<u8> {
    let mut first = true;
    s.iter()
        .map(|&b| {
            if b == b' ' || b == b'\t' {
                first = true;
                b
            } else {
                let out = if first {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                };
                first = false;
                out
            }
        })
        .collect()
}

/// padl(), padr() and padc(): `s` with `left` spaces before it and `right`
/// after it.
pub fn pad(s: &[u8], left: usize, right: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(left + s.len() + right);
    out.resize(left, b' ');
    out.extend_from_slice(s);
    out.resize(left + s.len() + right, b' ');
    out
}

/// strfilter(): the characters of `s` that `allowed` has, each as spelled
/// in `allowed`.
pub fn strfilter(s: &[u8], allowed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for range in chars(s) {
        let c = value(s, range.start);
        if let Some(found) = chars(allowed).find(|r| value(allowed, r.start) == c) {
            out.extend_from_slice(&allowed[found]);
        }
    }
    out
}

/// charindex(): the 1-based position of `needle` in `haystack`, searching
/// after its first `skip` characters; 0 when absent or `needle` is empty.
pub fn charindex(needle: &[u8], haystack: &[u8], skip: usize) -> i64 {
    if needle.is_empty() {
        return 0;
    }
    let starts: Vec<usize> = chars(haystack).map(|r| r.start).skip(skip).collect();
    for (index, &start) in starts.iter().enumerate() {
        let (mut a, mut b) = (0, start);
        loop {
            let (ca, cb) = (value(needle, a), value(haystack, b));
            if ca == 0 {
                return (index + skip) as i64 + 1;
            }
            if ca != cb || cb == 0 {
                break;
            }
            a = next(needle, a);
            b = next(haystack, b);
        }
    }
    0
}

/// leftstr(): the first `n` characters.
pub fn leftstr(s: &[u8], n: usize) -> &[u8] {
    match chars(s).nth(n) {
        Some(range) => &s[..range.start],
        None => s,
    }
}

/// rightstr(): the last `n` characters.
pub fn rightstr(s: &[u8], n: usize) -> &[u8] {
    let count = char_count(s);
    match chars(s).nth(count.saturating_sub(n)) {
        Some(range) => &s[range.start..],
        None => &s[s.len()..],
    }
}

/// The code of extension-functions.c's soundex: its first ASCII letter
/// upper case, then the digits of the letters from that one on (each byte
/// taken modulo 128), "?000" without a letter.
fn soundex(s: &[u8]) -> [u8; 4] {
    const CODES: &[u8; 64] = b"0012301200224550126230102020000000123012002245501262301020200000";
    let Some(first) = s.iter().position(u8::is_ascii_alphabetic) else {
        return *b"?000";
    };
    let mut out = [b'0'; 4];
    out[0] = s[first].to_ascii_uppercase();
    let mut j = 1;
    for &b in &s[first..] {
        if j == 4 {
            break;
        }
        let b = usize::from(b & 0x7f);
        let code = if b >= 64 { CODES[b - 64] } else { b'0' };
        if code != b'0' {
            out[j] = code;
            j += 1;
        }
    }
    out
}

/// difference(): how many of the 4 characters of the two soundex codes match.
pub fn difference(a: &[u8], b: &[u8]) -> i64 {
    let (a, b) = (soundex(a), soundex(b));
    a.iter().zip(&b).filter(|(x, y)| x == y).count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_are_kept_whole() {
        assert_eq!(reverse("añ€😀b".as_bytes()), "b😀€ña".as_bytes());
        assert_eq!(leftstr("€😀ab".as_bytes(), 3), "€😀a".as_bytes());
        assert_eq!(rightstr("€😀ab".as_bytes(), 3), "😀ab".as_bytes());
        assert_eq!(rightstr(b"abc", 10), b"abc");
        assert_eq!(
            strfilter("a€b😀c€".as_bytes(), "€c".as_bytes()),
            "€c€".as_bytes()
        );
        assert_eq!(charindex("😀".as_bytes(), "a😀b😀".as_bytes(), 2), 4);
        assert_eq!(charindex(b"", b"abc", 0), 0);
        assert_eq!(char_count("é😀".as_bytes()), 2);
    }

    #[test]
    fn proper_and_difference_are_ascii_only() {
        // A non-ASCII first letter stays as it is, and the rest are lowered.
        assert_eq!(
            proper("hELLO\twORLD éCOLE".as_bytes()),
            "Hello\tWorld école".as_bytes()
        );
        // The first letter's own digit counts, and nothing is collapsed.
        assert_eq!(soundex(b"Robert"), *b"R616");
        assert_eq!(soundex(b"123"), *b"?000");
        assert_eq!(difference(b"Robert", b"Rupert"), 4);
        assert_eq!(c_str(b"a\0b"), b"a");
    }
}
