//! The bytes held by task results, counted as the JSON a client reads, so their total can be
//! bounded: each stored result is entered with its size and its task's expiry, and leaves the
//! count when its task expires (as the store drops it). Tasks are never removed otherwise.
//!
//! It counts what this process stored: with a shared store, each replica bounds its own share.

use std::{cmp::Reverse, collections::BinaryHeap, io};

/// Results held: their total size, and each one's size by its expiry.
#[derive(Default)]
pub struct ResultBytes {
    held: usize,
    by_expiry: BinaryHeap<Reverse<(u64, usize)>>,
}

impl ResultBytes {
    /// Forgets the results expired by `now_ms`.
    fn expire(&mut self, now_ms: u64) {
        while let Some(Reverse((expires_at_ms, bytes))) = self.by_expiry.peek().copied() {
            if expires_at_ms > now_ms {
                break;
            }
            self.by_expiry.pop();
            self.held -= bytes;
        }
    }

    /// Bytes held at `now_ms`.
    pub fn held(&mut self, now_ms: u64) -> usize {
        self.expire(now_ms);
        self.held
    }

    /// Milliseconds from `now_ms` until the oldest result expires (0 when none is held).
    pub fn next_expiry_in_ms(&mut self, now_ms: u64) -> u64 {
        self.expire(now_ms);
        self.by_expiry
            .peek()
            .map_or(0, |Reverse((at, _))| at.saturating_sub(now_ms))
    }

    /// Enters a result of `bytes` kept until `expires_at_ms`.
    pub fn add(&mut self, bytes: usize, expires_at_ms: u64) {
        self.held += bytes;
        self.by_expiry.push(Reverse((expires_at_ms, bytes)));
    }
}

/// The size of `value` as JSON, counted as it is written rather than held.
pub fn json_size(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter fails only if serialising does, which a JSON value never does.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_leave_the_count_as_they_expire() {
        let mut bytes = ResultBytes::default();
        bytes.add(100, 2_000);
        bytes.add(50, 1_000);
        assert_eq!(bytes.held(500), 150);
        assert_eq!(bytes.next_expiry_in_ms(500), 500);
        assert_eq!(bytes.held(1_000), 100);
        assert_eq!(bytes.held(2_500), 0);
        assert_eq!(bytes.next_expiry_in_ms(2_500), 0);
    }

    #[test]
    fn the_size_is_that_of_the_json() {
        let value = serde_json::json!({ "a": [1, 2], "b": "é" });
        assert_eq!(json_size(&value), serde_json::to_string(&value).unwrap().len());
    }
}
