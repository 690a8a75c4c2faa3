//! Gradients through the vendored candle-core (vendor/candle-core), whose
//! backward pass stores the first gradient of a node instead of adding it
//! into zeros: single consumers, fan-in, subtraction, negation and views
//! must give the analytic gradients.

use candle_core::{Device, Tensor, Var};

fn close(got: &Tensor, want: &[f32]) {
    let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "got {got:?}, want {want:?}");
    }
}

#[test]
fn gradients_match_the_analytic_ones_with_and_without_fan_in() {
    let values = [0.5f32, -1.0, 2.0, 0.25, 3.0, -0.75];
    let x = Var::from_slice(&values, (2, 3), &Device::Cpu).unwrap();
    // y = sum(x * x - x) + sum(exp(-x)) + sum(x^T reshaped): x feeds five
    // nodes (fan-in), through sub, neg, exp, transpose and reshape.
    let squares = (x.as_tensor() * x.as_tensor()).unwrap();
    let diff = (&squares - x.as_tensor()).unwrap();
    let decay = x.as_tensor().neg().unwrap().exp().unwrap();
    let viewed = x.as_tensor().t().unwrap().reshape(6).unwrap();
    let y = (diff.sum_all().unwrap() + decay.sum_all().unwrap()).unwrap();
    let y = (y + viewed.sum_all().unwrap()).unwrap();
    let grads = y.backward().unwrap();
    let want: Vec<f32> = values
        .iter()
        .map(|&v| 2.0 * v - 1.0 - (-v).exp() + 1.0)
        .collect();
    close(grads.get(x.as_tensor()).unwrap(), &want);
}

#[test]
fn a_gradient_reaching_a_node_once_is_stored_as_it_is() {
    let x = Var::from_slice(&[1.0f32, 2.0, 3.0], 3, &Device::Cpu).unwrap();
    // One consumer each: y = sum(3 * x), and z = sum(-x) for subtraction.
    let y = x.as_tensor().affine(3.0, 0.0).unwrap().sum_all().unwrap();
    close(y.backward().unwrap().get(x.as_tensor()).unwrap(), &[3.0; 3]);
    let zero = Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap();
    let z = (&zero - x.as_tensor()).unwrap().sum_all().unwrap();
    close(
        z.backward().unwrap().get(x.as_tensor()).unwrap(),
        &[-1.0; 3],
    );
}
