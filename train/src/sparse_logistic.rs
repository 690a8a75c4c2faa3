//! A binary L2-regularised logistic regression on a sparse design matrix.
//!
//! It minimises linfa-logistic's objective (the summed log loss plus
//! `alpha / 2` times the squared weights, the intercept unpenalised) with
//! linfa-logistic's solver (argmin's L-BFGS, More-Thuente line search, 10
//! stored steps, from zeros), but multiplies only the stored entries.
//! linfa-logistic takes a dense matrix; a session's TF-IDF row holds about
//! 4% of the vocabulary, and the dense fit spent most of its time on zeros.

use anyhow::{anyhow, bail, Result};
use argmin::{
    core::{CostFunction, Executor, Gradient},
    solver::{linesearch::MoreThuenteLineSearch, quasinewton::LBFGS},
};
use ndarray::{s, Array1, ArrayView1};
use sprs::CsMat;

/// How the regression is fitted.
#[derive(Debug, Clone, Copy)]
pub struct SparseLogisticConfig {
    /// L2 penalty of the weights.
    pub alpha: f64,
    /// L-BFGS iterations at most.
    pub max_iterations: u64,
    /// The solver stops once the gradient's norm is under this.
    pub gradient_tolerance: f64,
}

impl Default for SparseLogisticConfig {
    /// linfa-logistic's defaults.
    fn default() -> Self {
        SparseLogisticConfig {
            alpha: 1.0,
            max_iterations: 100,
            gradient_tolerance: 1e-4,
        }
    }
}

/// A fitted regression: the probability of the positive class is
/// `sigmoid(x . weights + intercept)`.
#[derive(Debug, Clone)]
pub struct SparseLogistic {
    /// One weight per column.
    pub weights: Array1<f64>,
    /// The intercept.
    pub intercept: f64,
}

/// The objective over a CSR matrix `x` and labels `y` in {-1, 1}; the last
/// parameter is the intercept.
struct Objective<'a> {
    x: &'a CsMat<f64>,
    /// `x` transposed, in CSR order, for the gradient's product.
    xt: CsMat<f64>,
    y: Array1<f64>,
    alpha: f64,
}

impl Objective<'_> {
    /// The weights and the intercept of a parameter vector.
    fn split<'p>(&self, p: &'p Array1<f64>) -> (ArrayView1<'p, f64>, f64) {
        let n = self.x.cols();
        (p.slice(s![..n]), p[n])
    }

    /// `y * (x . w + b)` per row.
    fn margins(&self, p: &Array1<f64>) -> Array1<f64> {
        let (w, b) = self.split(p);
        (self.x * &w + b) * &self.y
    }
}

impl CostFunction for Objective<'_> {
    type Param = Array1<f64>;
    type Output = f64;

    fn cost(&self, p: &Array1<f64>) -> Result<f64, argmin::core::Error> {
        let (w, _) = self.split(p);
        let loss: f64 = self.margins(p).iter().map(|&m| -log_logistic(m)).sum();
        Ok(loss + 0.5 * self.alpha * w.dot(&w))
    }
}

impl Gradient for Objective<'_> {
    type Param = Array1<f64>;
    type Gradient = Array1<f64>;

    fn gradient(&self, p: &Array1<f64>) -> Result<Array1<f64>, argmin::core::Error> {
        let (w, _) = self.split(p);
        // d(loss)/d(margin) times d(margin)/d(x . w + b).
        let residual = self.margins(p).mapv(|m| logistic(m) - 1.0) * &self.y;
        let mut grad = Array1::zeros(p.len());
        grad.slice_mut(s![..w.len()])
            .assign(&(&self.xt * &residual + &w * self.alpha));
        grad[w.len()] = residual.sum();
        Ok(grad)
    }
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `ln(logistic(x))` without overflow.
fn log_logistic(x: f64) -> f64 {
    if x > 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

impl SparseLogistic {
    /// Fits on the rows of `x` (CSR) with `positive` telling each row's
    /// class; both classes needed.
    pub fn fit(x: &CsMat<f64>, positive: &[bool], config: &SparseLogisticConfig) -> Result<Self> {
        if !x.is_csr() || x.rows() != positive.len() {
            bail!(
                "the design matrix must be CSR with one row per label ({} rows, {} labels)",
                x.rows(),
                positive.len()
            );
        }
        let positives = positive.iter().filter(|&&p| p).count();
        if positives == 0 || positives == positive.len() {
            bail!("a logistic regression needs rows of both classes");
        }
        if x.data().iter().any(|v| !v.is_finite()) {
            bail!("the design matrix holds a value that is not finite");
        }
        let objective = Objective {
            x,
            xt: x.transpose_view().to_csr(),
            y: positive
                .iter()
                .map(|&p| if p { 1.0 } else { -1.0 })
                .collect(),
            alpha: config.alpha,
        };
        let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
            .with_tolerance_grad(config.gradient_tolerance)
            .map_err(|e| anyhow!("logistic regression settings: {e}"))?;
        let start = Array1::<f64>::zeros(x.cols() + 1);
        let result = Executor::new(objective, solver)
            .configure(|state| state.param(start).max_iters(config.max_iterations))
            .run()
            .map_err(|e| anyhow!("fitting the logistic regression: {e}"))?;
        let best = result
            .state
            .best_param
            .ok_or_else(|| anyhow!("the logistic regression's solver kept no parameters"))?;
        let n = x.cols();
        Ok(SparseLogistic {
            weights: best.slice(s![..n]).to_owned(),
            intercept: best[n],
        })
    }

    /// Probability of the positive class for each row of `x` (CSR).
    pub fn probabilities(&self, x: &CsMat<f64>) -> Result<Vec<f64>> {
        if x.cols() != self.weights.len() {
            bail!(
                "the design matrix has {} columns, the regression {}",
                x.cols(),
                self.weights.len()
            );
        }
        Ok((x * &self.weights)
            .iter()
            .map(|&z| logistic(z + self.intercept))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use linfa::{traits::Fit, DatasetBase};
    use linfa_logistic::LogisticRegression;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// A mostly-zero matrix whose first columns lean towards the class.
    fn sparse_problem(rows: usize, cols: usize) -> (Array2<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let positive: Vec<bool> = (0..rows).map(|i| i % 3 == 0).collect();
        let mut x = Array2::zeros((rows, cols));
        for (r, &p) in positive.iter().enumerate() {
            for c in 0..cols {
                let lean = if c < 3 && p { 0.3 } else { 0.0 };
                if rng.random::<f64>() < 0.1 + lean {
                    x[[r, c]] = rng.random_range(0.1..1.0);
                }
            }
        }
        (x, positive)
    }

    #[test]
    fn matches_linfa_logistic_on_the_same_problem() {
        let (dense, positive) = sparse_problem(300, 40);
        let config = SparseLogisticConfig::default();
        let sparse = CsMat::csr_from_dense(dense.view(), 0.0);
        let ours = SparseLogistic::fit(&sparse, &positive, &config).unwrap();
        let labels: Array1<usize> = positive.iter().map(|&p| usize::from(p)).collect();
        let theirs = LogisticRegression::default()
            .alpha(config.alpha)
            .max_iterations(config.max_iterations)
            .fit(&DatasetBase::new(dense.clone(), labels))
            .unwrap();
        // linfa's probabilities are those of its own "positive" class.
        let of_one = theirs.labels().pos.class == 1;
        let p_theirs = theirs.predict_probabilities(&dense);
        let p_ours = ours.probabilities(&sparse).unwrap();
        for (a, &b) in p_ours.iter().zip(&p_theirs) {
            let b = if of_one { b } else { 1.0 - b };
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        // The leaning columns carry the class.
        assert!(ours.weights.slice(s![..3]).iter().all(|&w| w > 0.5));
    }

    #[test]
    fn rejects_one_class_and_mismatched_shapes() {
        let (dense, mut positive) = sparse_problem(30, 5);
        let sparse = CsMat::csr_from_dense(dense.view(), 0.0);
        let config = SparseLogisticConfig::default();
        assert!(SparseLogistic::fit(&sparse, &positive[..10], &config).is_err());
        positive.iter_mut().for_each(|p| *p = false);
        assert!(SparseLogistic::fit(&sparse, &positive, &config).is_err());
        positive[0] = true;
        let fitted = SparseLogistic::fit(&sparse, &positive, &config).unwrap();
        let narrow = CsMat::csr_from_dense(dense.slice(s![.., ..4]), 0.0);
        assert!(fitted.probabilities(&narrow).is_err());
    }

    #[test]
    fn log_logistic_is_stable_at_both_ends() {
        assert!((log_logistic(0.0) - 0.5f64.ln()).abs() < 1e-12);
        assert!(log_logistic(800.0).abs() < 1e-300);
        assert!((log_logistic(-800.0) + 800.0).abs() < 1e-9);
    }
}
