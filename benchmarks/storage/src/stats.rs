//! Figures gathered over rounds, and how they are reported: medians, the spread around them, and
//! the ratio of two medians.

/// The figures one quantity took over the rounds (a rate: higher is better).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    values: Vec<f64>,
}

impl Samples {
    /// Records one round's figure.
    pub fn push(&mut self, value: f64) {
        self.values.push(value);
    }

    /// The rounds recorded.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no round was recorded.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The median (the mean of the middle two for an even count); NaN when empty.
    pub fn median(&self) -> f64 {
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    /// The lowest and highest figures.
    pub fn range(&self) -> (f64, f64) {
        self.values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    }

    /// How far the extremes lie from the median, as a share of it: `(max - min) / median`.
    pub fn spread(&self) -> f64 {
        let (lo, hi) = self.range();
        (hi - lo) / self.median()
    }

    /// `median UNIT [min-max, spread N%]`, each figure with `digits` decimals.
    pub fn summary(&self, digits: usize, unit: &str) -> String {
        let (lo, hi) = self.range();
        format!(
            "{:.digits$}{unit} [{lo:.digits$}-{hi:.digits$}, spread {:.0}%]",
            self.median(),
            self.spread() * 100.0,
        )
    }
}

/// Per-round ratios of two sides' figures, a / b, in the rounds' order: how stable the
/// comparison was, beside the ratio of the medians.
pub fn round_ratios(a: &Samples, b: &Samples) -> Samples {
    let mut ratios = Samples::default();
    for (x, y) in a.values.iter().zip(&b.values) {
        ratios.push(x / y);
    }
    ratios
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[f64]) -> Samples {
        let mut s = Samples::default();
        for &v in values {
            s.push(v);
        }
        s
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(of(&[5.0, 1.0, 3.0]).median(), 3.0);
        assert_eq!(of(&[4.0, 1.0, 3.0, 2.0]).median(), 2.5);
        assert!(of(&[]).median().is_nan());
    }

    #[test]
    fn spread_is_the_range_over_the_median() {
        let s = of(&[90.0, 100.0, 120.0]);
        assert_eq!(s.range(), (90.0, 120.0));
        assert!((s.spread() - 0.3).abs() < 1e-12);
        assert_eq!(s.summary(1, " MB/s"), "100.0 MB/s [90.0-120.0, spread 30%]");
    }

    #[test]
    fn round_ratios_pair_rounds_in_order() {
        let r = round_ratios(&of(&[10.0, 30.0]), &of(&[5.0, 10.0]));
        assert_eq!(r.range(), (2.0, 3.0));
    }
}
