//! Deterministic random streams: one `Pcg64` per consumer, derived from the scenario seed and
//! the consumer's name, so adding a consumer does not perturb the others.

use rand::RngCore;
use rand_pcg::Pcg64;

/// splitmix64 finaliser.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a name (stable across platforms and releases).
pub fn name_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A random stream.
pub struct Rng(Pcg64);

impl Rng {
    /// The stream named `name` of scenario seed `seed`.
    pub fn stream(seed: u64, name: &str) -> Rng {
        let h = name_hash(name);
        let a = mix64(seed ^ mix64(h));
        let b = mix64(a ^ h.rotate_left(17));
        let state = ((a as u128) << 64) | b as u128;
        let inc = ((mix64(h ^ 0x5851_F42D_4C95_7F2D) as u128) << 64)
            | mix64(seed.wrapping_add(h)) as u128;
        Rng(Pcg64::new(state, inc))
    }
    #[inline]
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in [0, 1).
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in 0..n (n > 0), multiply-shift.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.u64() as u128 * n as u128) >> 64) as u64
    }
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.f64() < p
    }
    /// Exponential with the given mean.
    #[inline]
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }
    /// Exponential duration in ns with the given mean (at least 1).
    #[inline]
    pub fn exp_ns(&mut self, mean_ns: u64) -> u64 {
        (self.exp(mean_ns as f64) as u64).max(1)
    }
    /// Standard normal (Box-Muller; one value per call).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    /// Log-normal with the given mean and shape sigma.
    pub fn lognormal(&mut self, mean: f64, sigma: f64) -> f64 {
        let mu = mean.ln() - sigma * sigma / 2.0;
        (mu + sigma * self.normal()).exp()
    }
    /// `x` scaled by a uniform factor in [1 - j, 1 + j].
    #[inline]
    pub fn jitter(&mut self, x: f64, j: f64) -> f64 {
        x * (1.0 - j + 2.0 * j * self.f64())
    }
    /// Round a real count stochastically to an integer (keeps means exact at small rates).
    #[inline]
    pub fn round(&mut self, x: f64) -> u64 {
        let f = x.floor();
        f as u64 + (self.f64() < x - f) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_stable() {
        let mut a = Rng::stream(1, "anon");
        let mut b = Rng::stream(1, "anon");
        let mut c = Rng::stream(1, "net");
        let mut d = Rng::stream(2, "anon");
        let x = a.u64();
        assert_eq!(x, b.u64());
        assert_ne!(x, c.u64());
        assert_ne!(x, d.u64());
        let mut r = Rng::stream(3, "t");
        let m: f64 = (0..20000).map(|_| r.exp(5.0)).sum::<f64>() / 20000.0;
        assert!((m - 5.0).abs() < 0.2, "{m}");
        let m: f64 = (0..20000).map(|_| r.lognormal(8.0, 1.0)).sum::<f64>() / 20000.0;
        assert!((m - 8.0).abs() < 0.6, "{m}");
    }
}
