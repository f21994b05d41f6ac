//! What parsing a request may build, measured before anything is built.
//!
//! rmcp parses a message into `serde_json::Value` trees (arguments, `_meta`, any unknown
//! field), and on 2026-07-28 over HTTP turns the whole message into a second tree to check its
//! headers. A tree costs far more than its text: `[0,0,0,…]` is 2 bytes an element on the wire
//! and 32 to 64 in memory. So every message is first walked once without building anything
//! (serde's `IgnoredAny` pattern, counting as it goes), refused past a count of values or a
//! depth, and the memory its parses will take is estimated from the walk, for the transports to
//! count against their in-flight budget before the message goes on.

use std::{cell::Cell, fmt, sync::Arc};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bounds on one message, from MCP_MAX_JSON_VALUES and MCP_MAX_JSON_DEPTH.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    pub max_values: usize,
    pub max_depth: usize,
}

/// What a message holds, from the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// JSON values of every kind, object keys not included.
    pub values: usize,
    /// Bytes of every string and key, as written (escapes make the parsed text only shorter).
    pub string_bytes: usize,
}

/// Memory of one `Value` tree, per value, from above: the value itself (32 bytes) and as much
/// again of spare capacity in a growing array, or a `String` key (24 bytes) and a B-tree
/// node's share when it sits in an object.
const BYTES_PER_VALUE: usize = 2 * (size_of::<serde_json::Value>() + size_of::<String>());

impl Shape {
    /// Bytes one parse of the message into a `Value` tree may hold.
    pub fn tree_bytes(&self) -> usize {
        self.values * BYTES_PER_VALUE + self.string_bytes
    }
}

/// The memory all messages being handled may hold at once (MCP_MAX_BODY_BYTES_IN_FLIGHT), in
/// bytes, as permits; a message holds its share until its answer has left.
#[derive(Clone)]
pub struct InFlightBudget {
    permits: Arc<Semaphore>,
    max: usize,
}

impl InFlightBudget {
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// What a request that finds no room is told.
    pub fn full(&self) -> String {
        format!(
            "this server holds as many request bytes as it may ({}, MCP_MAX_BODY_BYTES_IN_FLIGHT); retry shortly",
            self.max
        )
    }

    /// `bytes` of the budget, or `None` when that much is not free now. A message that needs
    /// more than the whole budget takes all of it, so it runs alone rather than never.
    pub fn try_hold(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let bytes = bytes.min(self.max) as u32;
        self.permits.clone().try_acquire_many_owned(bytes).ok()
    }

    /// Grows `held` to `bytes` in all (within the whole budget); `false` when the rest is not
    /// free now.
    pub fn grow(&self, held: &mut OwnedSemaphorePermit, bytes: usize) -> bool {
        let more = bytes.min(self.max).saturating_sub(held.num_permits());
        if more == 0 {
            return true;
        }
        match self.try_hold(more) {
            Some(extra) => {
                held.merge(extra);
                true
            }
            None => false,
        }
    }
}

/// Why a message was not taken.
#[derive(Debug)]
pub enum Unparsable {
    /// Not JSON at all.
    Syntax(serde_json::Error),
    TooManyValues {
        max: usize,
    },
    TooDeep {
        max: usize,
    },
    /// A request id longer than [`MAX_ID_BYTES`]: every answer repeats the id whole.
    IdTooLong,
}

/// The longest request id taken. JSON-RPC answers repeat the id as it came, so it is the one
/// piece of client text an answer cannot clip.
pub const MAX_ID_BYTES: usize = 256;

/// Refuses an id (a string id's length in bytes) that every answer would have to repeat whole.
pub fn check_id(id_bytes: usize) -> Result<(), Unparsable> {
    if id_bytes > MAX_ID_BYTES {
        return Err(Unparsable::IdTooLong);
    }
    Ok(())
}

impl fmt::Display for Unparsable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(e) => write!(
                f,
                "Parse error: not valid JSON ({})",
                crate::telemetry::clip(&e.to_string())
            ),
            Self::TooManyValues { max } => write!(
                f,
                "Invalid Request: the message holds more than {max} JSON values (MCP_MAX_JSON_VALUES); send less at once"
            ),
            Self::TooDeep { max } => write!(
                f,
                "Invalid Request: the message nests deeper than {max} levels (MCP_MAX_JSON_DEPTH)"
            ),
            Self::IdTooLong => write!(f, "Invalid Request: the request id is longer than {MAX_ID_BYTES} bytes"),
        }
    }
}

impl Unparsable {
    /// The JSON-RPC error code: Parse error for text that is not JSON, Invalid Request otherwise.
    pub fn code(&self) -> i32 {
        match self {
            Self::Syntax(_) => -32700,
            _ => -32600,
        }
    }
}

/// Walks `bytes` once, building nothing; stops at the first value past a limit.
pub fn measure(bytes: &[u8], limits: ParseLimits) -> Result<Shape, Unparsable> {
    let count = Count {
        limits,
        values: Cell::new(0),
        string_bytes: Cell::new(0),
        exceeded: Cell::new(None),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let walked = Walk {
        count: &count,
        depth: 0,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    match (walked, count.exceeded.take()) {
        (_, Some(exceeded)) => Err(exceeded),
        (Err(e), None) => Err(Unparsable::Syntax(e)),
        (Ok(()), None) => Ok(Shape {
            values: count.values.get(),
            string_bytes: count.string_bytes.get(),
        }),
    }
}

struct Count {
    limits: ParseLimits,
    values: Cell<usize>,
    string_bytes: Cell<usize>,
    /// Set when a limit stopped the walk (the error serde carries out is only a marker).
    exceeded: Cell<Option<Unparsable>>,
}

impl Count {
    fn value<E: de::Error>(&self) -> Result<(), E> {
        let values = self.values.get() + 1;
        self.values.set(values);
        if values > self.limits.max_values {
            return self.stop(Unparsable::TooManyValues {
                max: self.limits.max_values,
            });
        }
        Ok(())
    }

    fn string<E: de::Error>(&self, text: &str) -> Result<(), E> {
        self.string_bytes.set(self.string_bytes.get() + text.len());
        Ok(())
    }

    fn stop<E: de::Error>(&self, why: Unparsable) -> Result<(), E> {
        self.exceeded.set(Some(why));
        Err(E::custom("parse limit"))
    }
}

/// One value at `depth` (0: the message itself).
struct Walk<'c> {
    count: &'c Count,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Walk<'_> {
    fn nested<E: de::Error>(&self) -> Result<Walk<'_>, E> {
        self.count.value()?;
        if self.depth >= self.count.limits.max_depth {
            self.count.stop(Unparsable::TooDeep {
                max: self.count.limits.max_depth,
            })?;
        }
        Ok(Walk {
            count: self.count,
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.count.value()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.count.value()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.count.value()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.count.value()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.count.value()
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.count.value()?;
        self.count.string(text)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        while seq
            .next_element_seed(Walk {
                count: inner.count,
                depth: inner.depth,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        while map.next_key_seed(Key(inner.count))?.is_some() {
            map.next_value_seed(Walk {
                count: inner.count,
                depth: inner.depth,
            })?;
        }
        Ok(())
    }
}

/// An object's key: its bytes count, it is not a value of its own.
struct Key<'c>(&'c Count);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        self.0.string(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ParseLimits = ParseLimits {
        max_values: 10,
        max_depth: 3,
    };

    #[test]
    fn counts_values_and_string_bytes() {
        let shape = measure(br#"{"a":[1,"xy",null],"bc":{"d":true}}"#, LIMITS).unwrap();
        // the outer object, the array and its three elements, the inner object and its value
        assert_eq!(
            shape,
            Shape {
                values: 7,
                string_bytes: 1 + 2 + 2 + 1
            }
        );
        assert!(shape.tree_bytes() >= 7 * 32);
    }

    #[test]
    fn stops_past_a_limit() {
        let many = format!("[{}]", vec!["0"; 20].join(","));
        assert!(matches!(
            measure(many.as_bytes(), LIMITS),
            Err(Unparsable::TooManyValues { max: 10 })
        ));
        assert!(matches!(
            measure(b"[[[[1]]]]", LIMITS),
            Err(Unparsable::TooDeep { max: 3 })
        ));
        assert!(measure(b"[[[1]]]", LIMITS).is_ok());
        assert!(matches!(measure(b"{oops", LIMITS), Err(Unparsable::Syntax(_))));
        assert!(matches!(measure(b"{} {}", LIMITS), Err(Unparsable::Syntax(_))));
    }
}
