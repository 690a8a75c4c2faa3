//! What the encoder's test files share: a tiny config, a batch and a
//! comparison.

use candle_core::{Device, Tensor};
use models::{BertConfig, HiddenAct};

/// Two layers, heads 16 wide (inference runs the fused attention on
/// AVX-512), with `dropout` everywhere.
pub fn tiny_config(dropout: f32) -> BertConfig {
    BertConfig {
        vocab_size: 50,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 64,
        hidden_act: HiddenAct::Gelu,
        hidden_dropout_prob: dropout,
        attention_probs_dropout_prob: dropout,
        max_position_embeddings: 64,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        pad_token_id: 0,
        initializer_range: 0.02,
        model_type: "bert".into(),
    }
}

/// Two sequences, the second padded: ids (2, 7) and mask, on `device`.
pub fn batch(device: &Device) -> (Tensor, Tensor) {
    let ids = Tensor::new(
        &[[2u32, 17, 5, 9, 33, 41, 3], [2, 8, 12, 3, 0, 0, 0]],
        device,
    );
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]], device);
    (ids.unwrap(), mask.unwrap())
}

/// The largest absolute difference between `a` and `b` (`b` moved to
/// `a`'s device first).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let b = b.to_device(a.device()).unwrap();
    let diff = (a - b).unwrap().abs().unwrap().flatten_all().unwrap();
    diff.max(0).unwrap().to_scalar().unwrap()
}
