//! Which Kafka partition an item's purchases go to.
//!
//! Purchases are keyed by item id, and every producer must put a given item in the same partition as
//! Kafka's own Java client would: a Java purchase server, `kcat` with the `murmur2_random` partitioner
//! and the agent then all agree, and each item is aggregated by exactly one engine (which is what makes
//! merging the partitions' top lists exact, see [`crate::merge_snapshots`]). So this is Kafka's default
//! partitioner bit for bit: `org.apache.kafka.common.utils.Utils.murmur2` and `toPositive`.
//!
//! ```
//! use topsellers_model::{home_partition, murmur2};
//! assert_eq!(murmur2(b"foobar"), -790_332_482);
//! assert_eq!(home_partition("foobar", 12), (-790_332_482i32 & 0x7fff_ffff) as u32 % 12);
//! ```

/// Kafka's 32-bit murmur2 hash of `key`, as `Utils.murmur2` computes it (signed, like Java's `int`).
///
/// Java does the arithmetic on `int` with wrap-around and a logical shift (`>>>`); here it is done on
/// `u32` with wrapping multiplication, which gives the same bits, and reinterpreted as `i32` at the end.
pub fn murmur2(key: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java mixes in `data.length` as an `int`; keys are item ids (at most a few hundred bytes), and
    // truncating a longer length the way Java never could is harmless for a hash.
    let mut h = SEED ^ key.len() as u32;
    let mut chunks = key.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // The tail: Java's `switch (length % 4)` falls through from case 3 to case 1, and only a
    // non-empty tail is followed by the multiplication.
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition (of `partitions`) that Kafka's default partitioner picks for a record keyed by
/// `item_id`: `toPositive(murmur2(key)) % partitions`.
///
/// The key bytes are the item id exactly as the event carries it (ingest has normalised it already);
/// hashing any other spelling would send one item to two partitions. `toPositive` clears the sign bit
/// rather than taking the absolute value, so `i32::MIN` maps to 0 like in Java.
///
/// # Panics
/// If `partitions` is 0: a topic has at least one partition, so zero is a programming error.
pub fn home_partition(item_id: &str, partitions: u32) -> u32 {
    assert!(partitions > 0, "a Kafka topic has at least one partition");
    (murmur2(item_id.as_bytes()) & 0x7fff_ffff) as u32 % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own vectors, from `UtilsTest.testMurmur2` in the Java client
    /// (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java). Their lengths cover every
    /// tail case: 2, 6, 24 (none), 26, 48 (none) and 3 bytes (Kafka writes the last as a byte array).
    #[test]
    fn murmur2_matches_kafka_utils_test() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), expected, "{:?}", String::from_utf8_lossy(key));
        }
    }

    /// More published values of the Java function, covering the one-byte tail and lengths 4 and 5
    /// (from Akka's `Murmur2Spec`, which checks its port against Kafka's `Utils.murmur2`).
    #[test]
    fn murmur2_matches_other_published_java_values() {
        let cases: [(&str, i32); 5] = [
            ("1", -1_993_445_489),
            ("12", 126_087_238),
            ("123", -267_702_483),
            ("1234", -1_614_185_708),
            ("12345", -1_188_365_604),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), expected, "{key:?}");
        }
    }

    #[test]
    fn home_partition_clears_the_sign_bit_like_to_positive() {
        // murmur2("21") is negative: toPositive keeps the low 31 bits, it does not negate.
        let positive = (-973_932_308i32 & 0x7fff_ffff) as u32;
        assert_eq!(positive, 1_173_551_340);
        for partitions in [1, 6, 12, 24, 7] {
            assert_eq!(home_partition("21", partitions), positive % partitions);
        }
        assert_eq!(home_partition("21", 1), 0);
    }
}
