//! Compact serde for instants in stored records: milliseconds since the
//! Unix epoch, as `chrono::serde::ts_milliseconds` does for one instant.

/// `Vec<Instant>` as a sequence of epoch milliseconds.
pub mod vec {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::engine::Instant;

    pub fn serialize<S: Serializer>(v: &[Instant], s: S) -> Result<S::Ok, S::Error> {
        let millis: Vec<i64> = v.iter().map(Instant::timestamp_millis).collect();
        millis.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Instant>, D::Error> {
        let millis = Vec::<i64>::deserialize(d)?;
        millis
            .into_iter()
            .map(|m| {
                Instant::from_timestamp_millis(m).ok_or_else(|| {
                    serde::de::Error::custom(format!("instant out of range: {m} ms"))
                })
            })
            .collect()
    }
}
