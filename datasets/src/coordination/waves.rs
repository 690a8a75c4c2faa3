//! Account-creation waves: how many accounts of the window were created
//! within `wave_hours` of each other, against what a steady creation rate
//! over the window's whole creation span would give. Sorted windows, no
//! pairs.

use super::activity::Accounts;

/// Creation-wave evidence of one account (all zero when its creation time
/// is unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WaveEvidence {
    /// Other accounts created within `wave_hours / 2` either side of it.
    pub wave_peers: u32,
    /// `(wave_peers + 1)` over the count a steady rate would give.
    pub wave_ratio: f32,
}

/// Creation-wave evidence of every account (index order of `accounts`).
pub fn wave_evidence(accounts: &Accounts, wave_hours: i64) -> Vec<WaveEvidence> {
    let mut created: Vec<(i64, usize)> = accounts
        .activity
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.created_at.map(|c| (c.timestamp(), i)))
        .collect();
    created.sort_unstable();
    let mut out = vec![WaveEvidence::default(); accounts.len()];
    let (Some(first), Some(last)) = (created.first(), created.last()) else {
        return out;
    };
    let half = wave_hours * 1800;
    let span = (last.0 - first.0).max(2 * half) as f64;
    let expected = (created.len() as f64 * (2 * half) as f64 / span).max(1.0);
    let (mut lo, mut hi) = (0usize, 0usize);
    for &(t, i) in &created {
        while created[lo].0 < t - half {
            lo += 1;
        }
        while hi < created.len() && created[hi].0 <= t + half {
            hi += 1;
        }
        let within = (hi - lo) as u32;
        out[i] = WaveEvidence {
            wave_peers: within - 1,
            wave_ratio: (f64::from(within) / expected) as f32,
        };
    }
    out
}
