//! Canonical JSON, the bytes that are hashed wherever a hash must not depend on how a value was
//! written: object keys in byte order at every level, no whitespace. The trusted-code signature
//! and the audit chain both hash this form, so changing it breaks every signature and chain.

use serde::Serialize;
use serde_json::Value;

/// The canonical bytes of `value`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    value_to_vec(serde_json::to_value(value)?)
}

/// The canonical bytes of a JSON value (for callers that first drop some of its fields).
pub fn value_to_vec(mut value: Value) -> serde_json::Result<Vec<u8>> {
    sort_keys(&mut value);
    serde_json::to_vec(&value)
}

fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Unsorted {
        zeta: u64,
        alpha: Vec<Value>,
        #[serde(rename = "Beta")]
        beta: &'static str,
    }

    #[test]
    fn keys_are_sorted_at_every_level_without_whitespace() {
        let v = Unsorted {
            zeta: 1,
            alpha: vec![serde_json::json!({"b": 1, "a": {"d": null, "c": "\u{e9}\""}})],
            beta: "x",
        };
        assert_eq!(
            String::from_utf8(to_vec(&v).unwrap()).unwrap(),
            r#"{"Beta":"x","alpha":[{"a":{"c":"é\"","d":null},"b":1}],"zeta":1}"#
        );
    }

    #[test]
    fn audit_entries_hash_the_bytes_they_always_have() {
        // Chains written before this module sorted the top-level keys with a BTreeMap.
        let entry = serde_json::json!({
            "seq": 7, "time": "2026-01-01T00:00:00", "event": "decision", "actor": "daemon",
            "uid": "u-1", "outcome": "approved", "reasons": ["é \"quoted\"\n", "b"],
            "prev": "00", "hash": "h", "sig": "s"
        });
        let Value::Object(map) = entry.clone() else {
            unreachable!()
        };
        let before: std::collections::BTreeMap<String, Value> = map
            .into_iter()
            .filter(|(k, _)| k != "hash" && k != "sig")
            .collect();
        let mut now = entry;
        if let Value::Object(m) = &mut now {
            m.remove("hash");
            m.remove("sig");
        }
        assert_eq!(
            value_to_vec(now).unwrap(),
            serde_json::to_vec(&before).unwrap()
        );
    }
}
