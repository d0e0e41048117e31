//! Partition choice matches librdkafka's for every key of a reference set of 1,200: picks
//! recorded from confluent-kafka (librdkafka 2.16) producing to Tansu with
//! `partitioner=murmur2_random` (the Java client's algorithm) and `consistent_random`, on 7
//! and 64 partitions (`scripts/golden/partitioners.py`).

use bytes::Bytes;
use kafkit::{Balancer, Crc32Balancer, Message, Murmur2Balancer};

#[test]
fn murmur2_and_crc32_balancers_pick_what_librdkafka_picked() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/partitioners.json")).unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for case in golden["cases"].as_array().unwrap() {
        let n = case["partitions"].as_i64().unwrap() as i32;
        let partitions: Vec<i32> = (0..n).collect();
        let balancer: Box<dyn Balancer> = match case["partitioner"].as_str().unwrap() {
            "murmur2_random" => Box::new(Murmur2Balancer::new()),
            "consistent_random" => Box::new(Crc32Balancer::new()),
            other => panic!("unknown partitioner {other}"),
        };
        let crc = case["partitioner"] == "consistent_random";
        for (key, want) in case["picks"].as_object().unwrap() {
            // consistent_random sends an empty key to a random partition: nothing to compare.
            if crc && key.is_empty() {
                continue;
            }
            let msg = Message::new(Some(Bytes::copy_from_slice(key.as_bytes())), None::<Bytes>);
            assert_eq!(balancer.balance(&msg, &partitions) as i64, want.as_i64().unwrap(), "{case:?} key {key:?}");
            checked += 1;
        }
    }
    assert!(checked >= 4 * 1000, "{checked}");
}

/// kafka-go's Hash and ReferenceHash, computed by Go itself (`hash/fnv`, Go's int32
/// arithmetic) with kafka-go's formulas for 1,202 keys on 7, 16 and 64 partitions
/// (`scripts/golden/kafka_go_hash.sh`).
#[test]
fn hash_and_reference_hash_pick_what_go_computes_with_kafka_gos_formulas() {
    use kafkit::{Hash, ReferenceHash};
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/kafka_go_hash.json")).unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (hash, reference) = (Hash::new(), ReferenceHash::new());
    let mut checked = 0;
    for (n, picks) in golden.as_object().unwrap() {
        let partitions: Vec<i32> = (0..n.parse::<i32>().unwrap()).collect();
        for (key, want) in picks.as_object().unwrap() {
            let msg = Message::new(Some(Bytes::copy_from_slice(key.as_bytes())), None::<Bytes>);
            assert_eq!(hash.balance(&msg, &partitions) as i64, want["hash"].as_i64().unwrap(), "Hash {n} {key:?}");
            assert_eq!(
                reference.balance(&msg, &partitions) as i64,
                want["reference_hash"].as_i64().unwrap(),
                "ReferenceHash {n} {key:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * 1202);
}
