//! The aggregates' arithmetic, as extension-functions.c does it: stdev()
//! and variance() by Welford's method, mode() and the quartiles over the
//! distinct values in increasing order, integers read as C `int`s (their
//! low 32 bits), as 2.2.1 read them.

use super::Out;

/// stdev() and variance(): the running mean and sum of squared deviations.
#[derive(Default)]
pub struct Spread {
    mean: f64,
    squares: f64,
    count: i64,
}

impl Spread {
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.squares += delta * (x - self.mean);
    }

    /// The sample variance (0 for fewer than 2 values).
    pub fn variance(&self) -> f64 {
        if self.count > 1 {
            self.squares / (self.count - 1) as f64
        } else {
            0.0
        }
    }
}

/// The values of mode() and the quartiles: integers if the first one was
/// an integer, else reals.
pub enum Sample {
    Ints(Vec<i64>),
    Reals(Vec<f64>),
}

/// Distinct values in increasing order, each with its count; the first of
/// equal values (0.0 and -0.0) stands for them.
fn runs<T: Copy + PartialOrd>(mut values: Vec<T>) -> Vec<(T, i64)> {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let mut out: Vec<(T, i64)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some((last, count)) if *last == v => *count += 1,
            _ => out.push((v, 1)),
        }
    }
    out
}

/// The low 32 bits of an integer, signed: a C `int` read from it.
fn as_c_int(v: i64) -> i64 {
    i64::from(v as i32)
}

/// mode(): the only most frequent value, or NULL on a tie.
pub fn mode(sample: Sample) -> Out {
    fn pick<T: Copy + PartialOrd>(values: Vec<T>) -> Option<T> {
        let (mut best, mut most, mut ties) = (None, 0, 0);
        for (v, count) in runs(values) {
            if count == most {
                ties += 1;
            } else if count > most {
                best = Some(v);
                most = count;
                ties = 1;
            }
        }
        if ties == 1 {
            best
        } else {
            None
        }
    }
    match sample {
        Sample::Ints(values) => pick(values).map_or(Out::Null, |v| Out::Int(as_c_int(v))),
        Sample::Reals(values) => pick(values).map_or(Out::Null, Out::Real),
    }
}

/// Which quartile.
#[derive(Clone, Copy)]
pub enum Quartile {
    Lower,
    Upper,
}

/// lower_quartile() and upper_quartile(): the mean of the distinct values
/// that have at least the quartile's share of the values at or below them
/// and the rest at or above them; an integer when that is one integer.
pub fn quartile(sample: Sample, which: Quartile) -> Out {
    /// The values taken (each once) and how many.
    fn taken<T: Copy + PartialOrd>(values: Vec<T>, which: Quartile, mut add: impl FnMut(T)) -> i64 {
        let count = values.len() as i64;
        let below = match which {
            Quartile::Lower => count as f64 / 4.0,
            Quartile::Upper => (count * 3) as f64 / 4.0,
        };
        let above = count as f64 - below;
        let (mut seen, mut taken) = (0i64, 0i64);
        for (v, c) in runs(values) {
            let at_or_below = (seen + c) as i32;
            let at_or_above = (count - seen) as i32;
            if f64::from(at_or_below) >= below {
                if f64::from(at_or_above) >= above {
                    taken += 1;
                    add(v);
                } else {
                    break;
                }
            }
            seen += c;
        }
        taken
    }
    match sample {
        Sample::Ints(values) => {
            let mut sum = 0i64;
            let n = taken(values, which, |v| sum = sum.wrapping_add(as_c_int(v)));
            if n == 1 {
                Out::Int(sum)
            } else {
                Out::Real(sum as f64 / n as f64)
            }
        }
        Sample::Reals(values) => {
            let mut sum = 0.0;
            let n = taken(values, which, |v| sum += v);
            Out::Real(sum / n as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real(out: Out) -> f64 {
        match out {
            Out::Real(r) => r,
            _ => panic!("not a REAL"),
        }
    }

    #[test]
    fn mode_is_null_on_a_tie_and_reads_a_c_int() {
        assert!(matches!(mode(Sample::Ints(vec![1, 2, 2, 3])), Out::Int(2)));
        assert!(matches!(mode(Sample::Ints(vec![1, 1, 2, 2])), Out::Null));
        assert!(matches!(
            mode(Sample::Ints(vec![5_000_000_001, 5_000_000_001, 1])),
            Out::Int(705_032_705)
        ));
        assert_eq!(real(mode(Sample::Reals(vec![1.5, 2.0, 2.0]))), 2.0);
    }

    #[test]
    fn quartiles_average_the_values_on_the_boundary() {
        assert_eq!(
            real(quartile(Sample::Ints(vec![1, 2, 3, 4]), Quartile::Lower)),
            1.5
        );
        assert!(matches!(
            quartile(Sample::Ints(vec![2, 2, 3]), Quartile::Upper),
            Out::Int(3)
        ));
        assert_eq!(
            real(quartile(
                Sample::Reals(vec![1.5, 2.0, 2.0, 3.0]),
                Quartile::Lower
            )),
            1.75
        );
    }

    #[test]
    fn spread_is_the_sample_variance() {
        let mut spread = Spread::default();
        assert_eq!(spread.variance(), 0.0);
        for x in [1.0, 2.0, 3.0, 4.0] {
            spread.add(x);
        }
        assert!((spread.variance() - 5.0 / 3.0).abs() < 1e-15);
    }
}
