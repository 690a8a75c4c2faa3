//! The encoder on a tiny randomly initialised config (no downloads).

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
mod common;

use common::{batch, max_abs_diff, tiny_config};
use models::tiny::{seeded_values, seeded_var_builder};
use models::{checkpoint::load_into, BertConfig, BertEncoder, Mode, Precision};

/// Seed of the weights under test.
const WEIGHTS: u64 = 1;
/// Seed of a second model, the target of checkpoint loads.
const FRESH: u64 = 2;

/// An encoder whose weights are drawn from `seed`, with non-trivial
/// LayerNorm parameters so that parity tests exercise them: the same on
/// every run.
fn build(cfg: &BertConfig, seed: u64) -> (VarMap, BertEncoder) {
    let varmap = VarMap::new();
    let encoder = BertEncoder::load(seeded_var_builder(&varmap, seed), cfg).unwrap();
    let noise = Init::Randn {
        mean: 0.0,
        stdev: 0.2,
    };
    for (name, var) in varmap.data().lock().unwrap().iter() {
        if name.contains("LayerNorm") {
            let values = seeded_values(var.shape(), seed, &format!("{name}.noise"), noise);
            let noise = Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap();
            var.set(&(var.as_tensor() + noise).unwrap()).unwrap();
        }
    }
    (varmap, encoder)
}

#[test]
fn matches_candle_transformers_bert_on_the_same_weights() {
    let cfg = tiny_config(0.1);
    let (varmap, encoder) = build(&cfg, WEIGHTS);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    varmap.save(&path).unwrap();
    let reference_cfg: candle_transformers::models::bert::Config =
        serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    let vb =
        unsafe { VarBuilder::from_mmaped_safetensors(&[&path], DType::F32, &Device::Cpu).unwrap() };
    let reference = candle_transformers::models::bert::BertModel::load(vb, &reference_cfg).unwrap();
    let (ids, mask) = batch(&Device::Cpu);
    let want = reference
        .forward(&ids, &ids.zeros_like().unwrap(), Some(&mask))
        .unwrap();
    let got = encoder.forward(&ids, &mask, Mode::Eval).unwrap();
    // Compare real tokens only: padded positions are never used.
    let diff = max_abs_diff(&got.get(0).unwrap(), &want.get(0).unwrap()).max(max_abs_diff(
        &got.get(1).unwrap().narrow(0, 0, 4).unwrap(),
        &want.get(1).unwrap().narrow(0, 0, 4).unwrap(),
    ));
    assert!(diff < 1e-4, "max diff {diff}");
}

#[test]
fn train_mode_without_dropout_equals_eval_mode() {
    let cfg = tiny_config(0.0);
    let (_, encoder) = build(&cfg, WEIGHTS);
    let (ids, mask) = batch(&Device::Cpu);
    let a = encoder.forward(&ids, &mask, Mode::Train).unwrap();
    let b = encoder.forward(&ids, &mask, Mode::Eval).unwrap();
    assert!(max_abs_diff(&a, &b) < 1e-5);
}

#[test]
fn only_training_mode_records_the_graph_for_backpropagation() {
    // An inference output that recorded its ops would keep every
    // intermediate tensor of the forward pass alive while it is held
    // (a cache of frozen-layer outputs grew past 20 GB that way).
    let cfg = tiny_config(0.0);
    let (_, encoder) = build(&cfg, WEIGHTS);
    let (ids, mask) = batch(&Device::Cpu);
    let bottom = encoder.forward_bottom(&ids, &mask, 2, Mode::Eval).unwrap();
    assert!(!bottom.track_op());
    assert!(!encoder.forward(&ids, &mask, Mode::Eval).unwrap().track_op());
    assert!(encoder
        .forward(&ids, &mask, Mode::Train)
        .unwrap()
        .track_op());
}

#[test]
fn padding_does_not_change_the_pooled_embedding() {
    let cfg = tiny_config(0.1);
    let (_, encoder) = build(&cfg, WEIGHTS);
    let (ids, mask) = batch(&Device::Cpu);
    let padded = encoder
        .embed(&ids, &mask, Mode::Eval)
        .unwrap()
        .get(1)
        .unwrap();
    let alone_ids = Tensor::new(&[[2u32, 8, 12, 3]], &Device::Cpu).unwrap();
    let alone_mask = Tensor::new(&[[1u32, 1, 1, 1]], &Device::Cpu).unwrap();
    let alone = encoder
        .embed(&alone_ids, &alone_mask, Mode::Eval)
        .unwrap()
        .get(0)
        .unwrap();
    assert!(max_abs_diff(&padded, &alone) < 1e-5);
}

#[test]
fn every_variable_receives_a_gradient() {
    let cfg = tiny_config(0.1);
    let (varmap, encoder) = build(&cfg, WEIGHTS);
    let (ids, mask) = batch(&Device::Cpu);
    let pooled = encoder.embed(&ids, &mask, Mode::Train).unwrap();
    let loss = pooled.sqr().unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let vars = varmap.data().lock().unwrap();
    assert_eq!(vars.len(), 5 + 16 * cfg.num_hidden_layers);
    for (name, var) in vars.iter() {
        let g = grads
            .get(var)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        // Position / token-type rows beyond the batch get zero gradient by
        // construction; every other tensor must have a non-zero one.
        assert!(norm > 0.0, "zero gradient for {name}");
    }
}

#[test]
fn dropout_is_active_only_in_training() {
    let cfg = tiny_config(0.3);
    let (_, encoder) = build(&cfg, WEIGHTS);
    let (ids, mask) = batch(&Device::Cpu);
    let a = encoder.forward(&ids, &mask, Mode::Train).unwrap();
    let b = encoder.forward(&ids, &mask, Mode::Train).unwrap();
    assert!(
        max_abs_diff(&a, &b) > 1e-3,
        "two training passes should differ"
    );
    let c = encoder.forward(&ids, &mask, Mode::Eval).unwrap();
    let d = encoder.forward(&ids, &mask, Mode::Eval).unwrap();
    assert_eq!(max_abs_diff(&c, &d), 0.0);
}

#[test]
fn mean_pool_ignores_padding() {
    let hidden = Tensor::new(&[[[1f32, 2.], [3., 4.], [100., 100.]]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 0]], &Device::Cpu).unwrap();
    let pooled = BertEncoder::mean_pool(&hidden, &mask).unwrap();
    assert_eq!(pooled.to_vec2::<f32>().unwrap(), vec![vec![2f32, 3.]]);
}

#[test]
fn checkpoints_load_with_or_without_the_bert_prefix() {
    let cfg = tiny_config(0.1);
    let (source, encoder) = build(&cfg, WEIGHTS);
    let (ids, mask) = batch(&Device::Cpu);
    let want = encoder.embed(&ids, &mask, Mode::Eval).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Write once with the `bert.` prefix plus an unused pooler tensor.
    let mut tensors: std::collections::HashMap<String, Tensor> = source
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (format!("bert.{k}"), v.as_tensor().clone()))
        .collect();
    tensors.insert(
        "bert.pooler.dense.bias".into(),
        Tensor::zeros(32, DType::F32, &Device::Cpu).unwrap(),
    );
    let prefixed = dir.path().join("prefixed.safetensors");
    candle_core::safetensors::save(&tensors, &prefixed).unwrap();
    let plain = dir.path().join("plain.safetensors");
    source.save(&plain).unwrap();
    for path in [&prefixed, &plain] {
        let (target, fresh) = build(&cfg, FRESH);
        let report = load_into(&target, path, |_| false).unwrap();
        assert_eq!(report.loaded.len(), 5 + 16 * cfg.num_hidden_layers);
        let got = fresh.embed(&ids, &mask, Mode::Eval).unwrap();
        assert!(max_abs_diff(&got, &want) < 1e-6, "{}", path.display());
    }
    let report = load_into(&build(&cfg, FRESH).0, &prefixed, |_| false).unwrap();
    assert_eq!(report.unused, ["bert.pooler.dense.bias"]);
}

#[test]
fn checkpoint_errors_name_the_tensor() {
    let cfg = tiny_config(0.1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.safetensors");
    let mut small = cfg.clone();
    small.intermediate_size = 48;
    build(&small, WEIGHTS).0.save(&path).unwrap();
    let err = load_into(&build(&cfg, FRESH).0, &path, |_| false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("intermediate.dense") && err.contains("shape"),
        "{err}"
    );

    let partial = dir.path().join("partial.safetensors");
    let t: std::collections::HashMap<String, Tensor> = [(
        "embeddings.word_embeddings.weight".to_string(),
        Tensor::zeros((50, 32), DType::F32, &Device::Cpu).unwrap(),
    )]
    .into();
    candle_core::safetensors::save(&t, &partial).unwrap();
    let err = load_into(&build(&cfg, FRESH).0, &partial, |_| false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing tensor `embeddings."), "{err}");
    let report = load_into(&build(&cfg, FRESH).0, &partial, |n| {
        n != "embeddings.word_embeddings.weight"
    })
    .unwrap();
    assert_eq!(report.loaded, ["embeddings.word_embeddings.weight"]);

    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not safetensors").unwrap();
    let err = load_into(&build(&cfg, FRESH).0, &junk, |_| false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("junk.safetensors") && err.contains("not a readable safetensors"),
        "{err}"
    );
}

#[test]
fn bottom_then_top_equals_the_full_forward() {
    let cfg = tiny_config(0.1);
    let (_, encoder) = build(&cfg, WEIGHTS);
    let (ids, mask) = batch(&Device::Cpu);
    let full = encoder.forward(&ids, &mask, Mode::Eval).unwrap();
    for split in 0..=cfg.num_hidden_layers {
        let bottom = encoder
            .forward_bottom(&ids, &mask, split, Mode::Eval)
            .unwrap();
        let top = encoder
            .forward_top(&bottom, &mask, split, Mode::Eval)
            .unwrap();
        assert_eq!(max_abs_diff(&full, &top), 0.0, "split at {split}");
    }
}

#[test]
fn reduced_precision_inference_stays_close_to_f32_and_f32_comes_back() {
    let cfg = tiny_config(0.1);
    let (_, mut encoder) = build(&cfg, WEIGHTS);
    let (ids, mask) = batch(&Device::Cpu);
    let reference = encoder.forward(&ids, &mask, Mode::Eval).unwrap();
    let cpu = models::CpuFeatures::detect();
    // LayerNorm outputs are about 1 in size: bf16 keeps about 3 decimal
    // digits of each product, int8 about 2 of each row's range.
    for (precision, bound) in [(Precision::Bf16, 0.05f32), (Precision::Int8, 0.15)] {
        if let Err(why) = cpu.kernels(precision) {
            eprintln!("SKIPPED: encoder in {precision}: {why}");
            continue;
        }
        encoder.set_precision(precision).unwrap();
        let got = encoder.forward(&ids, &mask, Mode::Eval).unwrap();
        let diff = max_abs_diff(&got, &reference);
        assert!(diff < bound, "{precision}: max diff {diff} against f32");
        assert!(diff > 0.0, "{precision}: the packed layers did not run");
        let trained = encoder.forward(&ids, &mask, Mode::Train).unwrap();
        assert_eq!(trained.dims(), reference.dims(), "training stays f32");
    }
    encoder.set_precision(Precision::F32).unwrap();
    let back = encoder.forward(&ids, &mask, Mode::Eval).unwrap();
    assert_eq!(max_abs_diff(&back, &reference), 0.0);
}
