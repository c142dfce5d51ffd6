//! Zipf-distributed ranks by table lookup.
//!
//! `rand_distr::Zipf` samples by rejection with two `powf` calls per try; with the catalog sizes here a
//! cumulative table (8 bytes per rank) and a binary search are several times faster and exact, which
//! matters when writing benchmark files of tens of millions of events.

use rand::Rng;

#[derive(Clone, Debug)]
pub(crate) struct ZipfTable {
    /// `cumulative[k]` = P(rank <= k), ranks 0-based; the last entry is 1.
    cumulative: Vec<f64>,
}

impl ZipfTable {
    /// P(rank k) proportional to 1 / (k + 1)^exponent for k in 0..n. `n = 0` is treated as 1.
    pub(crate) fn new(n: usize, exponent: f64) -> ZipfTable {
        let mut cumulative = Vec::with_capacity(n.max(1));
        let mut total = 0.0;
        for k in 0..n.max(1) {
            total += ((k + 1) as f64).powf(-exponent);
            cumulative.push(total);
        }
        for c in &mut cumulative {
            *c /= total;
        }
        ZipfTable { cumulative }
    }

    /// A 0-based rank.
    pub(crate) fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        let u: f64 = rng.gen();
        // Rounding can leave the last entry a hair under 1; min keeps the rank in range.
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn frequencies_follow_the_power_law() {
        let table = ZipfTable::new(100, 1.0);
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = [0usize; 100];
        for _ in 0..200_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        // With exponent 1, rank 1 sells twice rank 2 and ten times rank 10.
        let ratio2 = counts[0] as f64 / counts[1] as f64;
        let ratio10 = counts[0] as f64 / counts[9] as f64;
        assert!((1.85..2.15).contains(&ratio2), "{ratio2}");
        assert!((8.5..11.5).contains(&ratio10), "{ratio10}");
        assert!(counts[99] > 0);
    }

    #[test]
    fn exponent_zero_is_uniform_and_one_rank_always_wins() {
        let table = ZipfTable::new(4, 0.0);
        let mut rng = StdRng::seed_from_u64(2);
        let mut counts = [0usize; 4];
        for _ in 0..40_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        let single = ZipfTable::new(1, 1.07);
        assert_eq!(single.sample(&mut rng), 0);
        assert_eq!(ZipfTable::new(0, 1.0).sample(&mut rng), 0);
    }
}
