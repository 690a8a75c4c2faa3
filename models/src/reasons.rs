//! Why a session scored as it did: the threshold comparison and the most
//! unusual behavioural features, in words an analyst can read.

use datasets::{FeatureVector, FEATURE_NAMES};

/// A standardised feature this many standard deviations from the training
/// mean is named among a session's reasons.
pub const UNUSUAL_FEATURE_Z: f32 = 3.0;
/// Most unusual features named per session.
pub const MAX_FEATURE_REASONS: usize = 3;

/// Reasons for a session's score: the threshold comparison when flagged,
/// then up to [`MAX_FEATURE_REASONS`] behavioural features at least
/// [`UNUSUAL_FEATURE_Z`] standard deviations from the training mean,
/// largest first.
pub fn session_reasons(score: f32, threshold: f32, features: &FeatureVector) -> Vec<String> {
    let mut reasons = Vec::new();
    if score >= threshold {
        reasons.push(format!(
            "model score {score:.3} >= session threshold {threshold:.3}"
        ));
    }
    let mut unusual: Vec<(usize, f32)> = features
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, z)| z.abs() >= UNUSUAL_FEATURE_Z)
        .collect();
    unusual.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    reasons.extend(
        unusual
            .iter()
            .take(MAX_FEATURE_REASONS)
            .map(|&(i, z)| format!("unusual {} (z {z:+.1})", FEATURE_NAMES[i])),
    );
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use datasets::NUM_FEATURES;

    #[test]
    fn reasons_name_the_threshold_and_the_most_unusual_features() {
        let mut f = [0f32; NUM_FEATURES];
        f[2] = -3.5;
        f[5] = 6.0;
        f[7] = 2.9;
        f[9] = 3.0;
        f[11] = 4.0;
        let r = session_reasons(0.9, 0.8, &f);
        assert_eq!(r.len(), 4);
        assert!(r[0].starts_with("model score 0.900 >= session threshold 0.800"));
        assert_eq!(r[1], format!("unusual {} (z +6.0)", FEATURE_NAMES[5]));
        assert_eq!(r[2], format!("unusual {} (z +4.0)", FEATURE_NAMES[11]));
        assert_eq!(r[3], format!("unusual {} (z -3.5)", FEATURE_NAMES[2]));
        let r = session_reasons(0.1, 0.8, &[0f32; NUM_FEATURES]);
        assert!(r.is_empty());
    }
}
