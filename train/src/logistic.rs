//! A binary logistic regression (linfa-logistic) turned into the
//! probability of extraction, for the account scorer and the prompt head.

use anyhow::{anyhow, Result};
use linfa::{traits::Fit, DatasetBase};
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};

/// Weights and intercept of the logit of extraction, fitted on rows `x`
/// labeled by `positive` (extraction) with L2 penalty `alpha`. `what`
/// names the model in errors.
pub fn fit_extraction_logit(
    x: Array2<f64>,
    positive: &[bool],
    alpha: f64,
    max_iterations: u64,
    what: &str,
) -> Result<(Vec<f32>, f32)> {
    let y: Array1<usize> = positive.iter().map(|&p| usize::from(p)).collect();
    let fitted = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(max_iterations)
        .fit(&DatasetBase::new(x, y))
        .map_err(|e| anyhow!("fitting the {what}: {e}"))?;
    // linfa-logistic models the probability of its "positive" class, the
    // more frequent label; turn it into the probability of extraction.
    let sign = if fitted.labels().pos.class == 1 {
        1.0
    } else {
        -1.0
    };
    let weights = fitted.params().iter().map(|&w| (sign * w) as f32).collect();
    Ok((weights, (sign * fitted.intercept()) as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logit_rises_with_extraction_whichever_class_is_more_frequent() {
        for extraction_rows in [3usize, 9] {
            let n = 12;
            let x = Array2::from_shape_fn(
                (n, 1),
                |(i, _)| if i < extraction_rows { 1.0 } else { -1.0 },
            );
            let positive: Vec<bool> = (0..n).map(|i| i < extraction_rows).collect();
            let (w, _) = fit_extraction_logit(x, &positive, 0.1, 100, "test model").unwrap();
            assert!(
                w[0] > 0.0,
                "{extraction_rows} extraction rows: weight {}",
                w[0]
            );
        }
    }
}
