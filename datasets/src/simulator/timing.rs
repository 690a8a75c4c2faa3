//! When requests happen: session start times and gaps between requests.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand_distr::{Distribution, LogNormal};

use crate::features::region_utc_offset;

/// Relative activity of people by local hour (0-23).
const DAY_WEIGHTS: [f64; 24] = [
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.0, 2.0, 3.0, 4.0, 4.5, 4.5, 4.0, 4.5, 4.5, 4.5, 4.5, 4.5, 5.0,
    5.5, 5.5, 5.0, 3.5, 2.0,
];
/// Students: afternoons and late evenings.
const STUDENT_WEIGHTS: [f64; 24] = [
    2.5, 1.5, 0.8, 0.4, 0.2, 0.2, 0.4, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0, 2.5, 3.0, 4.0, 5.0, 5.5, 5.5,
    6.0, 6.5, 6.5, 5.5, 4.0,
];

/// Office workers: business hours, a dip at lunch.
const OFFICE_WEIGHTS: [f64; 24] = [
    0.05, 0.02, 0.02, 0.02, 0.02, 0.05, 0.2, 0.8, 3.0, 5.0, 5.5, 5.0, 3.0, 4.5, 5.5, 5.5, 5.0, 4.0,
    1.5, 0.6, 0.4, 0.3, 0.2, 0.1,
];

/// Whose daily rhythm a start time follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rhythm {
    /// Ordinary people and office hours.
    People,
    /// Students, skewed to evenings.
    Students,
    /// Office workers: business hours.
    Office,
    /// Machines: any hour equally.
    AnyHour,
}

fn weighted_hour<R: Rng>(rng: &mut R, weights: &[f64; 24]) -> u32 {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (h, w) in weights.iter().enumerate() {
        if x < *w {
            return h as u32;
        }
        x -= w;
    }
    23
}

/// A start time on a uniformly chosen day in `[from, to)`, at an hour drawn
/// from the rhythm in the region's local time.
pub fn start_time<R: Rng>(
    rng: &mut R,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    region: &str,
    rhythm: Rhythm,
) -> DateTime<Utc> {
    let days = ((to - from).num_days()).max(1);
    let day = from + Duration::days(rng.random_range(0..days));
    let day = day
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let local_hour = match rhythm {
        Rhythm::People => weighted_hour(rng, &DAY_WEIGHTS),
        Rhythm::Students => weighted_hour(rng, &STUDENT_WEIGHTS),
        Rhythm::Office => weighted_hour(rng, &OFFICE_WEIGHTS),
        Rhythm::AnyHour => rng.random_range(0..24),
    };
    let utc_hour = (local_hour as i32 - region_utc_offset(region)).rem_euclid(24);
    let t = day
        + Duration::hours(i64::from(utc_hour))
        + Duration::milliseconds(rng.random_range(0..3_600_000));
    t.clamp(from, to - Duration::hours(1))
}

/// A log-normal draw with the given median and shape, in seconds.
pub fn lognormal_seconds<R: Rng>(rng: &mut R, median: f64, sigma: f64) -> f64 {
    LogNormal::new(median.ln(), sigma)
        .expect("valid log-normal parameters")
        .sample(rng)
}

/// A person's gap before the next request: reading the answer plus thinking
/// and typing. Kept under 25 minutes so the session stays one session.
pub fn human_gap<R: Rng>(rng: &mut R, median_s: f64) -> Duration {
    let s = lognormal_seconds(rng, median_s, 0.8).clamp(4.0, 1500.0);
    Duration::milliseconds((s * 1000.0) as i64)
}

/// A script's gap: a fixed interval with relative jitter.
pub fn machine_gap<R: Rng>(rng: &mut R, interval_s: f64, jitter: f64) -> Duration {
    let s = interval_s * (1.0 + rng.random_range(-jitter..=jitter));
    Duration::milliseconds((s.max(0.05) * 1000.0) as i64)
}

/// `1 + Geometric` with the given mean (>= 1), capped.
pub fn count_with_mean<R: Rng>(rng: &mut R, mean: f64, cap: usize) -> usize {
    let p = 1.0 / mean.max(1.0);
    let mut n = 1;
    while n < cap && rng.random::<f64>() > p {
        n += 1;
    }
    n
}
