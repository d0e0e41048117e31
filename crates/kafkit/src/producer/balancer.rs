//! Partition choice for written messages (kafka-go's `Balancer`).
//!
//! | balancer | picks | compatible with |
//! |---|---|---|
//! | [`RoundRobin`] | each partition in turn | kafka-go `RoundRobin` |
//! | [`LeastBytes`] | the partition that has been sent the fewest bytes | kafka-go `LeastBytes` |
//! | [`Hash`](struct@Hash) | FNV-1a of the key, as a signed 32-bit int, modulo, made positive | kafka-go `Hash`, sarama's default |
//! | [`ReferenceHash`] | FNV-1a of the key, `& 0x7fffffff`, modulo | kafka-go `ReferenceHash` |
//! | [`Crc32Balancer`] | CRC-32 (IEEE) of the key, modulo | librdkafka `consistent` / `consistent_random` |
//! | [`Murmur2Balancer`] | murmur2 of the key, `& 0x7fffffff`, modulo | the Java client's default partitioner, librdkafka `murmur2` / `murmur2_random` |
//!
//! The hashing balancers send messages without a key round-robin ([`Hash`](struct@Hash)) or to a random
//! partition ([`ReferenceHash`], [`Crc32Balancer`], [`Murmur2Balancer`] unless
//! `consistent`), as their namesakes do. Any `Fn(&Message, &[i32]) -> i32` is a balancer too.

use crate::message::Message;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Chooses a partition for each message.
///
/// `partitions` holds the topic's partition ids in ascending order (never empty); the result
/// must be one of them.
pub trait Balancer: Send + Sync {
    /// The partition for `msg`.
    fn balance(&self, msg: &Message, partitions: &[i32]) -> i32;
}

impl<F> Balancer for F
where
    F: Fn(&Message, &[i32]) -> i32 + Send + Sync,
{
    fn balance(&self, msg: &Message, partitions: &[i32]) -> i32 {
        self(msg, partitions)
    }
}

/// Each partition in turn (kafka-go `RoundRobin`). The default balancer.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// A round-robin balancer starting at the first partition.
    pub fn new() -> Self {
        RoundRobin::default()
    }
}

impl Balancer for RoundRobin {
    fn balance(&self, _msg: &Message, partitions: &[i32]) -> i32 {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        partitions[i % partitions.len()]
    }
}

/// The partition that has been sent the fewest bytes so far, by key and value size (kafka-go
/// `LeastBytes`); ties go to the lowest partition. A partition that joins the list starts
/// from zero.
#[derive(Debug, Default)]
pub struct LeastBytes {
    /// The partition ids last balanced over and the bytes sent to each, by position (never
    /// by the raw id, which a broker chooses).
    sent: Mutex<(Vec<i32>, Vec<u64>)>,
}

impl LeastBytes {
    /// A balancer with nothing sent yet.
    pub fn new() -> Self {
        LeastBytes::default()
    }
}

impl Balancer for LeastBytes {
    fn balance(&self, msg: &Message, partitions: &[i32]) -> i32 {
        let size = msg.size() as u64;
        let Ok(mut guard) = self.sent.lock() else { return partitions[0] };
        let (ids, sent) = &mut *guard;
        if ids.as_slice() != partitions {
            // Keep the counts of the partitions still listed.
            let old: std::collections::HashMap<i32, u64> = ids.iter().copied().zip(sent.iter().copied()).collect();
            *sent = partitions.iter().map(|p| old.get(p).copied().unwrap_or(0)).collect();
            *ids = partitions.to_vec();
        }
        let Some(i) = (0..partitions.len()).min_by_key(|&i| (sent[i], partitions[i])) else { return partitions[0] };
        sent[i] = sent[i].saturating_add(size);
        partitions[i]
    }
}

/// 32-bit FNV-1a.
pub fn fnv1a32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

/// The Java client's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed
/// `0x9747b28c`.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ len as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// A random partition, from a small xorshift generator seeded by the clock (partition choice
/// needs spread, not cryptographic randomness).
#[derive(Debug)]
struct Random {
    state: std::sync::atomic::AtomicU64,
}

impl Default for Random {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x2545_f491_4f6c_dd1d);
        Random { state: std::sync::atomic::AtomicU64::new(seed | 1) }
    }
}

impl Random {
    fn pick(&self, partitions: &[i32]) -> i32 {
        let mut x = self.state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.store(x, Ordering::Relaxed);
        partitions[(x % partitions.len() as u64) as usize]
    }
}

/// FNV-1a of the key as a signed 32-bit int, modulo the partition count, negated when
/// negative (kafka-go `Hash`, which matches sarama's default partitioner). Messages without a
/// key go round-robin.
#[derive(Debug, Default)]
pub struct Hash {
    fallback: RoundRobin,
}

impl Hash {
    /// A hash balancer.
    pub fn new() -> Self {
        Hash::default()
    }
}

impl Balancer for Hash {
    fn balance(&self, msg: &Message, partitions: &[i32]) -> i32 {
        let Some(key) = &msg.key else { return self.fallback.balance(msg, partitions) };
        let p = (fnv1a32(key) as i32).wrapping_rem(partitions.len() as i32);
        partitions[p.unsigned_abs() as usize]
    }
}

/// FNV-1a of the key `& 0x7fffffff`, modulo the partition count (kafka-go `ReferenceHash`,
/// sarama's reference-hash partitioner). Messages without a key go to a random partition.
#[derive(Debug, Default)]
pub struct ReferenceHash {
    random: Random,
}

impl ReferenceHash {
    /// A reference-hash balancer.
    pub fn new() -> Self {
        ReferenceHash::default()
    }
}

impl Balancer for ReferenceHash {
    fn balance(&self, msg: &Message, partitions: &[i32]) -> i32 {
        let Some(key) = &msg.key else { return self.random.pick(partitions) };
        partitions[((fnv1a32(key) & 0x7fff_ffff) as usize) % partitions.len()]
    }
}

/// CRC-32 (IEEE) of the key modulo the partition count: librdkafka's `consistent_random`
/// partitioner, or `consistent` with [`Crc32Balancer::consistent`] (kafka-go
/// `CRC32Balancer`). As in librdkafka, an empty key counts as no key.
#[derive(Debug, Default)]
pub struct Crc32Balancer {
    consistent: bool,
    random: Random,
}

impl Crc32Balancer {
    /// Messages without a key go to a random partition (librdkafka `consistent_random`).
    pub fn new() -> Self {
        Crc32Balancer::default()
    }
    /// Messages without a key are hashed as an empty key, so they all share one partition
    /// (librdkafka `consistent`).
    pub fn consistent() -> Self {
        Crc32Balancer { consistent: true, ..Default::default() }
    }
}

impl Balancer for Crc32Balancer {
    fn balance(&self, msg: &Message, partitions: &[i32]) -> i32 {
        let key = msg.key.as_deref().unwrap_or_default();
        if key.is_empty() && !self.consistent {
            return self.random.pick(partitions);
        }
        partitions[(crc32fast::hash(key) as usize) % partitions.len()]
    }
}

/// murmur2 of the key `& 0x7fffffff`, modulo the partition count: the Java client's default
/// partitioner for keyed records, librdkafka's `murmur2_random`, or `murmur2` with
/// [`Murmur2Balancer::consistent`] (kafka-go `Murmur2Balancer`). As in librdkafka, only a
/// null key is "no key"; an empty key is hashed (unlike [`Crc32Balancer`]).
#[derive(Debug, Default)]
pub struct Murmur2Balancer {
    consistent: bool,
    random: Random,
}

impl Murmur2Balancer {
    /// Messages without a key go to a random partition (librdkafka `murmur2_random`).
    pub fn new() -> Self {
        Murmur2Balancer::default()
    }
    /// Messages without a key are hashed as an empty key (librdkafka `murmur2`).
    pub fn consistent() -> Self {
        Murmur2Balancer { consistent: true, ..Default::default() }
    }
}

impl Balancer for Murmur2Balancer {
    fn balance(&self, msg: &Message, partitions: &[i32]) -> i32 {
        if msg.key.is_none() && !self.consistent {
            return self.random.pick(partitions);
        }
        let key = msg.key.as_deref().unwrap_or_default();
        partitions[((murmur2(key) as u32 & 0x7fff_ffff) as usize) % partitions.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn keyed(k: &str) -> Message {
        Message::new(Some(Bytes::copy_from_slice(k.as_bytes())), None::<Bytes>)
    }

    #[test]
    fn murmur2_matches_the_java_clients_test_vectors() {
        // From Apache Kafka's UtilsTest.testMurmur2.
        for (k, h) in [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            ("abc", 479470107),
        ] {
            assert_eq!(murmur2(k.as_bytes()), h, "{k}");
        }
    }

    /// Reference vectors of librdkafka's tests/0048-partitioner.c, kafka-python's
    /// test_partitioner.py and kafka-go's balancer tests.
    #[test]
    fn partitions_match_librdkafka_kafka_python_and_kafka_go_vectors() {
        let squares: Vec<i32> = (0..17).map(|i| i * i).collect();
        let crc = Crc32Balancer::new();
        for (k, h) in [
            ("23456", 0xb1b451d7u32),
            ("this is another string with more length to it perhaps", 0xb0150df7),
            ("hejsan", 0xd077037e),
        ] {
            assert_eq!(crc.balance(&keyed(k), &squares), squares[(h % 17) as usize], "{k}");
        }
        let mm = Murmur2Balancer::new();
        for (k, h) in [
            ("", 0x106e08d9u32),
            ("23456", 0x058d780f),
            ("this is another string with more length to it perhaps", 0x4f7703da),
            ("hejsan", 0x5ec19395),
        ] {
            assert_eq!(mm.balance(&keyed(k), &squares), squares[(h % 17) as usize], "{k:?}");
        }
        let thousand: Vec<i32> = (0..1000).collect();
        for (k, p) in [("", 681), ("a", 524), ("ab", 434), ("abc", 107), ("123456789", 566), ("\0 ", 742)] {
            assert_eq!(mm.balance(&keyed(k), &thousand), p, "{k:?}");
        }
        for (k, h) in [
            ("kafka", 0xd067cf64u32),
            ("giberish123456789", 0x8f552b0c),
            ("1234", 0x9fc97b14),
            ("234", 0xe7c009ca),
            ("34", 0x873930da),
            ("4", 0x5a4b5ca1),
            ("PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c),
            ("", 0x106e08d9),
        ] {
            assert_eq!(murmur2(k.as_bytes()) as u32, h, "{k:?}");
        }
        let h = Hash::new();
        assert_eq!(h.balance(&keyed("blah"), &[0, 1]), 0);
        assert_eq!(h.balance(&keyed("blah"), &[0, 1, 2]), 1);
        assert_eq!(h.balance(&keyed("boop"), &[0, 1, 2]), 2);
        // The hash code has its top bit set: sarama's rule negates the remainder.
        assert_eq!(h.balance(&keyed("20"), &(0..16).collect::<Vec<_>>()), 1);
    }

    #[test]
    fn fnv1a_matches_its_reference_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9cf968);
    }

    #[test]
    fn hash_negates_negative_remainders_and_reference_hash_masks() {
        // fnv1a32("foobar") = 0xbf9cf968, negative as i32 (-1080231576).
        let parts: Vec<i32> = (0..7).collect();
        let signed = 0xbf9cf968u32 as i32;
        assert_eq!(Hash::new().balance(&keyed("foobar"), &parts), (signed % 7).abs());
        assert_eq!(ReferenceHash::new().balance(&keyed("foobar"), &parts), ((0xbf9cf968u32 & 0x7fffffff) % 7) as i32);
    }

    #[test]
    fn round_robin_and_least_bytes_spread() {
        let parts = [3, 5, 9];
        let rr = RoundRobin::new();
        let picks: Vec<i32> = (0..6).map(|_| rr.balance(&keyed("k"), &parts)).collect();
        assert_eq!(picks, vec![3, 5, 9, 3, 5, 9]);
        let lb = LeastBytes::new();
        let big = Message::new(None::<Bytes>, Some(Bytes::from(vec![0u8; 100])));
        let small = Message::new(None::<Bytes>, Some(Bytes::from(vec![0u8; 10])));
        assert_eq!(lb.balance(&big, &parts), 3);
        assert_eq!(lb.balance(&small, &parts), 5);
        assert_eq!(lb.balance(&small, &parts), 9);
        assert_eq!(lb.balance(&small, &parts), 5);
    }

    #[test]
    fn keyless_messages_follow_each_balancers_rule() {
        let parts: Vec<i32> = (0..4).collect();
        let none = Message::new(None::<Bytes>, Some(Bytes::from_static(b"v")));
        let h = Hash::new();
        let picks: Vec<i32> = (0..4).map(|_| h.balance(&none, &parts)).collect();
        assert_eq!(picks, vec![0, 1, 2, 3]);
        // Consistent: every keyless message hashes as the empty key.
        let c = Crc32Balancer::consistent();
        let first = c.balance(&none, &parts);
        assert!((0..20).all(|_| c.balance(&none, &parts) == first));
        assert_eq!(first, (crc32fast::hash(b"") % 4) as i32);
        // Random: in range, and not all on one partition over many picks.
        let r = Murmur2Balancer::new();
        let picks: std::collections::HashSet<i32> = (0..200).map(|_| r.balance(&none, &parts)).collect();
        assert!(picks.len() > 1 && picks.iter().all(|p| parts.contains(p)));
        // A closure is a balancer.
        let last = |_: &Message, p: &[i32]| p[p.len() - 1];
        assert_eq!(last.balance(&none, &parts), 3);
    }
}
