//! Session tokenisation, feature normalisation and the classifier head.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use chrono::{Duration, TimeZone, Utc};
use datasets::{session_features, Event, Session, NUM_FEATURES};
use models::{
    tiny::{tiny_config, tiny_tokenizer},
    FeatureNormalizer, HeadConfig, Mode, SessionClassifier, SessionTokenizer,
};

fn session(prompts: &[&str]) -> Session {
    let t0 = Utc.with_ymd_and_hms(2026, 2, 10, 12, 0, 0).unwrap();
    Session {
        session_id: "s".into(),
        account_id: "a".into(),
        label: None,
        campaign_id: None,
        archetype: None,
        account: None,
        events: prompts
            .iter()
            .enumerate()
            .map(|(i, p)| Event {
                ts: t0 + Duration::seconds(i as i64 * 10),
                prompt: p.to_string(),
                ip: None,
                asn: None,
                user_agent: None,
                model: None,
                response_tokens: None,
            })
            .collect(),
    }
}

const WORDS: &str =
    "first second third fourth fifth sixth seventh eighth ninth last solve step by problem";

fn tokenizer(max_tokens: usize, max_prompts: usize) -> SessionTokenizer {
    SessionTokenizer::new(tiny_tokenizer([WORDS], 100), max_tokens, max_prompts).unwrap()
}

fn decode(t: &SessionTokenizer, ids: &[u32]) -> String {
    t.tokenizer().decode(ids, false).unwrap()
}

#[test]
fn padding_and_truncation_of_the_tokenizer_file_are_ignored() {
    // all-MiniLM-L6-v2's tokenizer.json pads every text to 128 tokens and
    // truncates at 128: neither may leak into a session's ids.
    let mut padded = tiny_tokenizer([WORDS], 100);
    padded.with_padding(Some(tokenizers::PaddingParams {
        strategy: tokenizers::PaddingStrategy::Fixed(128),
        ..Default::default()
    }));
    padded
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length: 3,
            ..Default::default()
        }))
        .unwrap();
    let padded = SessionTokenizer::new(padded, 64, 4).unwrap();
    let plain = tokenizer(64, 4);
    let s = session(&["solve step by step", "first problem"]);
    let ids = padded.encode(&s).unwrap();
    assert_eq!(ids, plain.encode(&s).unwrap());
    assert_eq!(
        decode(&padded, &ids),
        "[CLS] solve step by step [SEP] first problem [SEP]"
    );
    // The saved tokenizer carries no padding either.
    let saved = padded.tokenizer().to_string(false).unwrap();
    let json: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert!(json["padding"].is_null() && json["truncation"].is_null());
}

#[test]
fn keeps_an_evenly_spaced_sample_of_prompts_with_first_and_last() {
    let t = tokenizer(64, 4);
    let prompts = [
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "last",
    ];
    let ids = t.encode(&session(&prompts)).unwrap();
    let text = decode(&t, &ids);
    assert_eq!(
        text,
        "[CLS] first [SEP] fourth [SEP] seventh [SEP] last [SEP]"
    );
}

#[test]
fn long_prompts_share_the_budget_and_keep_their_beginning() {
    let t = tokenizer(16, 4);
    let long = "solve step by step ".repeat(50);
    let ids = t.encode(&session(&["first", &long, &long])).unwrap();
    assert_eq!(ids.len(), 16);
    // 16 - [CLS] - 3 [SEP] = 12 tokens: "first" keeps 1, the two long ones 5 and 6.
    assert_eq!(
        decode(&t, &ids),
        "[CLS] first [SEP] solve step by step solve [SEP] solve step by step solve step [SEP]"
    );
    // Huge, non-ASCII text: cut before tokenising, never an error.
    let huge = "é".repeat(100_000);
    assert!(t.encode(&session(&[&huge])).unwrap().len() <= 16);
}

#[test]
fn budget_too_small_for_the_prompts_is_an_error() {
    let err = SessionTokenizer::new(tiny_tokenizer([WORDS], 10), 8, 4).unwrap_err();
    assert!(err.to_string().contains("too small"), "{err}");
}

#[test]
fn pads_batches_on_the_right() {
    let t = tokenizer(32, 4);
    let a = t.encode(&session(&["first second third"])).unwrap();
    let b = t.encode(&session(&["last"])).unwrap();
    let (ids, mask) = t.pad_batch(&[a.clone(), b.clone()], &Device::Cpu).unwrap();
    assert_eq!(ids.dims(), &[2, a.len()]);
    let mask = mask.to_vec2::<u32>().unwrap();
    assert_eq!(mask[0].iter().sum::<u32>() as usize, a.len());
    assert_eq!(mask[1].iter().sum::<u32>() as usize, b.len());
    assert_eq!(
        ids.to_vec2::<u32>().unwrap()[1][b.len()..],
        vec![0; a.len() - b.len()]
    );
}

#[test]
fn normaliser_standardises_clips_and_checks_names() {
    let rows: Vec<_> = (0..100)
        .map(|i| {
            let mut r = [0f32; NUM_FEATURES];
            r[0] = i as f32;
            r[1] = 5.0; // constant
            r
        })
        .collect();
    let norm = FeatureNormalizer::fit(&rows);
    assert!((norm.mean[0] - 49.5).abs() < 1e-4);
    assert_eq!(norm.std[1], 1.0);
    let z = norm.apply(&rows[99]);
    assert!((z[0] - 49.5 / norm.std[0]).abs() < 1e-4);
    assert_eq!(z[1], 0.0);
    let mut wild = rows[0];
    wild[0] = 1e9;
    assert_eq!(norm.apply(&wild)[0], models::feature_norm::CLIP);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feature_norm.json");
    std::fs::write(&path, serde_json::to_string(&norm).unwrap()).unwrap();
    assert_eq!(FeatureNormalizer::load(&path).unwrap(), norm);
    let mut other = norm.clone();
    other.names[0] = "something_else".into();
    std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
    let err = FeatureNormalizer::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("feature_norm.json") && err.contains("this build computes"),
        "{err}"
    );
}

#[test]
fn classifier_scores_a_batch_and_trains_every_variable() {
    let t = tokenizer(32, 4);
    let bert = tiny_config(t.tokenizer().get_vocab_size(true));
    let head = HeadConfig {
        num_features: NUM_FEATURES,
        hidden_dim: 16,
        dropout: 0.1,
        max_tokens: 32,
        max_prompts: 4,
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = SessionClassifier::load(vb, &bert, &head).unwrap();
    let sessions = [
        session(&["first second", "third"]),
        session(&["solve step by step problem"]),
    ];
    let encoded: Vec<_> = sessions.iter().map(|s| t.encode(s).unwrap()).collect();
    let (ids, mask) = t.pad_batch(&encoded, &Device::Cpu).unwrap();
    let features: Vec<f32> = sessions.iter().flat_map(session_features).collect();
    let features = Tensor::from_vec(features, (2, NUM_FEATURES), &Device::Cpu).unwrap();
    let out = model.forward(&ids, &mask, &features, Mode::Train).unwrap();
    assert_eq!(out.logits.dims(), &[2]);
    assert_eq!(out.embeddings.dims(), &[2, 32]);
    let loss = out.logits.sqr().unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let vars = varmap.data().lock().unwrap();
    assert!(vars.keys().any(|k| k.starts_with("head.")));
    for (name, var) in vars.iter() {
        assert!(grads.get(var).is_some(), "no gradient for {name}");
    }
}
