//! The wordcount example against a reference model written in Rust.

use std::collections::HashMap;

use elmbox_tests::{load, sources};
use serde_json::{json, Value};

/// What the app should answer, computed independently.
#[derive(Default)]
struct Model {
    counts: HashMap<String, u64>,
    total: u64,
}

impl Model {
    fn add(&mut self, text: &str) -> Value {
        for word in text.split_whitespace() {
            *self.counts.entry(word.to_lowercase()).or_default() += 1;
            self.total += 1;
        }
        let mut top: Vec<(&String, &u64)> = self.counts.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<Value> = top
            .into_iter()
            .take(3)
            .map(|(w, c)| json!({"word": w, "count": c}))
            .collect();
        json!({"top": top, "distinct": self.counts.len(), "total": self.total})
    }
}

/// A small deterministic generator, so the test needs no dependencies.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn counts_match_the_reference_model() {
    const VOCABULARY: [&str; 12] = [
        "elm", "Wasm", "quickjs", "the", "a", "memory", "ELM", "event", "port", "timer", "flat",
        "heap",
    ];
    for source in sources("wordcount") {
        let mut app = load(&source.js);
        let mut model = Model::default();
        let mut seed = 0x9e3779b97f4a7c15;
        for i in 0..3_000 {
            let n = next(&mut seed) % 6;
            let words: Vec<&str> = (0..n)
                .map(|_| VOCABULARY[(next(&mut seed) % VOCABULARY.len() as u64) as usize])
                .collect();
            let text = words.join(if i % 2 == 0 { " " } else { "  \t " });
            let event = json!({ "text": text }).to_string();
            let expected = model.add(&text);
            assert_eq!(
                app.dispatch(&event).unwrap(),
                vec![expected],
                "{}: event {i}",
                source.label
            );
        }
    }
}

#[test]
fn undecodable_events_answer_an_error_and_keep_the_state() {
    for source in sources("wordcount") {
        let mut app = load(&source.js);
        app.dispatch(r#"{"text":"one two two"}"#).unwrap();
        for bad in ["hello", r#"{"txt":"a"}"#, r#"{"text":5}"#] {
            let out = app.dispatch(bad).unwrap();
            let error = out[0]["error"].as_str().unwrap_or_default();
            assert!(
                error.starts_with("Problem with the"),
                "{}: {bad}: {out:?}",
                source.label
            );
        }
        let out = app.dispatch(r#"{"text":"two"}"#).unwrap();
        assert_eq!(
            out[0],
            json!({"top": [{"word": "two", "count": 3}, {"word": "one", "count": 1}], "distinct": 2, "total": 4}),
            "{}",
            source.label
        );
    }
}
