//! The output of an encoder's frozen bottom layers, computed once per
//! session and shared by every fit that starts from the same frozen
//! weights.
//!
//! With `--train-layers K`, a fit runs the bottom layers of each session
//! once and trains only the top `K` on their cached output. The main job
//! then fits three models from one base model on overlapping data: the
//! bundle (training and validation sessions) and each cross-fit fold
//! (training sessions only). Kept in one [`FrozenLayers`], the bottom
//! layers run once per session for all three instead of once per fit,
//! which was two thirds of cross-fitting's time. Entries are keyed by the
//! session's token ids, and the whole store by a fingerprint of the frozen
//! weights, so a fit from other weights (a warm start) never reads them.

use std::collections::HashMap;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use models::{BertEncoder, Mode, SessionTokenizer};
use xxhash_rust::xxh3::Xxh3;

/// Sessions per batch when the frozen layers run.
const BATCH: usize = 32;

/// What the stored hidden states were computed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrozenIdentity {
    /// Layers below this one are frozen.
    pub(crate) start_layer: usize,
    /// [`frozen_weights_fingerprint`] of those layers' weights.
    pub(crate) weights: u64,
    /// Where the tensors live.
    pub(crate) device: String,
}

/// Hidden states after the frozen layers, (tokens, hidden) per session,
/// by token ids; see the module docs.
#[derive(Default)]
pub struct FrozenLayers {
    identity: Option<FrozenIdentity>,
    hidden: HashMap<Vec<u32>, Tensor>,
}

impl FrozenLayers {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sessions stored.
    pub fn len(&self) -> usize {
        self.hidden.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.hidden.is_empty()
    }

    /// The frozen layers' output for each of `encoded`, running `encoder`
    /// (in length-sorted batches) only on sessions not stored yet under
    /// `identity`. A new identity empties the store first.
    pub(crate) fn hidden_states(
        &mut self,
        encoder: &BertEncoder,
        tokenizer: &SessionTokenizer,
        encoded: &[Vec<u32>],
        identity: FrozenIdentity,
        device: &Device,
        what: &str,
    ) -> Result<Vec<Tensor>> {
        if self.identity.as_ref() != Some(&identity) {
            self.hidden.clear();
        }
        let start_layer = identity.start_layer;
        self.identity = Some(identity);
        let mut missing: Vec<usize> = (0..encoded.len())
            .filter(|&i| !self.hidden.contains_key(&encoded[i]))
            .collect();
        missing.sort_by_key(|&i| encoded[i].len());
        tracing::info!(
            sessions = encoded.len(),
            stored = encoded.len() - missing.len(),
            "frozen layers"
        );
        let bar = crate::progress::bar(missing.len() as u64, what);
        for chunk in missing.chunks(BATCH) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].as_slice()).collect();
            let (ids, mask) = tokenizer.pad_batch(&batch, device)?;
            let out = encoder.forward_bottom(&ids, &mask, start_layer, Mode::Eval)?;
            for (row, &i) in chunk.iter().enumerate() {
                let h = out
                    .get(row)?
                    .narrow(0, 0, encoded[i].len())?
                    .contiguous()?
                    .detach();
                self.hidden.insert(encoded[i].clone(), h);
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(encoded.iter().map(|e| self.hidden[e].clone()).collect())
    }
}

/// A fingerprint of the variables of `varmap` that `frozen` names: their
/// names, shapes and values, in name order.
pub(crate) fn frozen_weights_fingerprint(
    varmap: &VarMap,
    frozen: impl Fn(&str) -> bool,
) -> Result<u64> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("the variable map's lock is poisoned"))?;
    let mut names: Vec<&String> = vars.keys().filter(|n| frozen(n)).collect();
    names.sort();
    let mut hasher = Xxh3::new();
    for name in names {
        let values = vars[name]
            .as_tensor()
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        hasher.update(name.as_bytes());
        for d in vars[name].dims() {
            hasher.update(&(*d as u64).to_le_bytes());
        }
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        hasher.update(&bytes);
    }
    Ok(hasher.digest())
}

#[cfg(test)]
mod tests {
    use candle_nn::VarBuilder;

    use super::*;

    fn tiny_encoder(varmap: &VarMap) -> BertEncoder {
        let config = models::tiny::tiny_config(50);
        let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
        BertEncoder::load(vb, &config).unwrap()
    }

    #[test]
    fn stored_sessions_are_not_run_again_and_other_weights_start_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = models::tiny::write_tiny_bundle(
            &dir.path().join("tiny"),
            vec!["explain each step", "hello there"],
            0.5,
            0,
        )
        .unwrap();
        let bundle = models::bundle::Bundle::load(&path, &Device::Cpu).unwrap();
        let varmap = VarMap::new();
        let encoder = tiny_encoder(&varmap);
        let identity = |weights| FrozenIdentity {
            start_layer: 1,
            weights,
            device: "cpu".into(),
        };
        let a: Vec<Vec<u32>> = vec![vec![2, 5, 7, 3], vec![2, 9, 3], vec![2, 5, 7, 3]];
        let b: Vec<Vec<u32>> = vec![vec![2, 9, 3], vec![2, 11, 12, 13, 3]];
        let mut store = FrozenLayers::new();
        let tok = &bundle.tokenizer;
        let first = store
            .hidden_states(&encoder, tok, &a, identity(1), &Device::Cpu, "a")
            .unwrap();
        assert_eq!(store.len(), 2, "one entry per distinct session");
        assert_eq!(first[0].dims(), [4, 32]);
        let second = store
            .hidden_states(&encoder, tok, &b, identity(1), &Device::Cpu, "b")
            .unwrap();
        assert_eq!(store.len(), 3, "only the new session was run");
        let same = (&second[0] - &first[1]).unwrap().abs().unwrap();
        assert_eq!(same.max_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
        // Alone, the new session's states match a batch run with others.
        let mut alone = FrozenLayers::new();
        let solo = alone
            .hidden_states(&encoder, tok, &b[1..], identity(1), &Device::Cpu, "c")
            .unwrap();
        let diff = (&solo[0] - &second[1]).unwrap().abs().unwrap();
        assert!(diff.max_all().unwrap().to_scalar::<f32>().unwrap() < 1e-5);
        store
            .hidden_states(&encoder, tok, &b, identity(2), &Device::Cpu, "d")
            .unwrap();
        assert_eq!(store.len(), 2, "other weights empty the store");
    }

    #[test]
    fn the_fingerprint_follows_the_frozen_weights_only() {
        let varmap = VarMap::new();
        let _encoder = tiny_encoder(&varmap);
        let frozen = |n: &str| !n.starts_with("encoder.layer.1.");
        let before = frozen_weights_fingerprint(&varmap, frozen).unwrap();
        let set = |name: &str| {
            let data = varmap.data().lock().unwrap();
            let var = data
                .iter()
                .find(|(n, _)| n.starts_with(name))
                .map(|(_, v)| v.clone())
                .unwrap();
            drop(data);
            var.set(&var.as_tensor().affine(1.0, 0.5).unwrap()).unwrap();
        };
        set("encoder.layer.1.");
        assert_eq!(frozen_weights_fingerprint(&varmap, frozen).unwrap(), before);
        set("encoder.layer.0.");
        assert_ne!(frozen_weights_fingerprint(&varmap, frozen).unwrap(), before);
    }
}
