//! The encoder on a CUDA GPU against the CPU, on the same weights: hidden
//! states in inference and in training, and every variable's gradient.
//! Built only with the `cuda` feature and run on a machine with a GPU
//! (`scripts/gpu-check.sh`); CI has none.
#![cfg(feature = "cuda")]

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use models::{BertEncoder, Mode};

mod common;

use common::{batch, max_abs_diff, tiny_config};

/// The encoder on `device` with the weights saved at `weights` (none: the
/// random initialisation, then saved there).
fn encoder_on(device: &Device, weights: &std::path::Path) -> (VarMap, BertEncoder) {
    let mut varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let encoder = BertEncoder::load(vb, &tiny_config(0.0)).unwrap();
    match weights.exists() {
        true => varmap.load(weights).unwrap(),
        false => varmap.save(weights).unwrap(),
    }
    (varmap, encoder)
}

/// The pooled embedding in `mode`, and in training every variable's
/// gradient of a fixed weighted sum of it.
fn pass(
    device: &Device,
    weights: &std::path::Path,
    mode: Mode,
) -> (Tensor, HashMap<String, Tensor>) {
    let (varmap, encoder) = encoder_on(device, weights);
    let (ids, mask) = batch(device);
    let pooled = encoder.embed(&ids, &mask, mode).unwrap();
    let cpu_pooled = pooled.to_device(&Device::Cpu).unwrap();
    if mode == Mode::Eval {
        return (cpu_pooled, HashMap::new());
    }
    let scale = Tensor::arange(0f32, 64.0, device)
        .unwrap()
        .reshape((2, 32))
        .unwrap();
    let loss = (&pooled * ((scale / 64.0).unwrap() - 0.5).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let by_name = varmap.data().lock().unwrap();
    let grads = by_name
        .iter()
        .filter_map(|(name, var)| {
            grads
                .get(var)
                .map(|g| (name.clone(), g.to_device(&Device::Cpu).unwrap()))
        })
        .collect();
    (cpu_pooled, grads)
}

#[test]
fn the_encoder_on_cuda_matches_the_cpu() {
    let gpu = Device::new_cuda(0).expect("a CUDA GPU (this test runs only on one)");
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("encoder.safetensors");
    encoder_on(&Device::Cpu, &weights);
    let (cpu_eval, _) = pass(&Device::Cpu, &weights, Mode::Eval);
    let (gpu_eval, _) = pass(&gpu, &weights, Mode::Eval);
    let diff = max_abs_diff(&cpu_eval, &gpu_eval);
    assert!(diff < 1e-4, "inference: {diff}");
    let (cpu_train, cpu_grads) = pass(&Device::Cpu, &weights, Mode::Train);
    let (gpu_train, gpu_grads) = pass(&gpu, &weights, Mode::Train);
    let diff = max_abs_diff(&cpu_train, &gpu_train);
    assert!(diff < 1e-4, "training pass: {diff}");
    assert_eq!(
        cpu_grads.len(),
        gpu_grads.len(),
        "variables with a gradient"
    );
    assert!(!cpu_grads.is_empty());
    for (name, cpu) in &cpu_grads {
        let gpu = &gpu_grads[name];
        let diff = max_abs_diff(cpu, gpu);
        let scale = cpu.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        let scale: f32 = scale.to_scalar().unwrap();
        assert!(
            diff <= 1e-4 + 1e-3 * scale,
            "gradient of {name}: {diff} (largest {scale})"
        );
    }
}
