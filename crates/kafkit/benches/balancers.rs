//! Partitioning cost per message: each balancer over 1,000 keyed messages (16-byte keys)
//! and 1,000 keyless ones, 64 partitions. `cargo bench -p kafkit --bench balancers`.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kafkit::{Balancer, Crc32Balancer, Hash, LeastBytes, Message, Murmur2Balancer, ReferenceHash, RoundRobin};

fn messages(keyed: bool) -> Vec<Message> {
    (0..1000)
        .map(|i| {
            let key = keyed.then(|| Bytes::from(format!("customer-{i:07}")));
            Message::new(key, Some(Bytes::from_static(&[0u8; 100])))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let partitions: Vec<i32> = (0..64).collect();
    let balancers: Vec<(&str, Box<dyn Balancer>)> = vec![
        ("round_robin", Box::new(RoundRobin::new())),
        ("least_bytes", Box::new(LeastBytes::new())),
        ("hash", Box::new(Hash::new())),
        ("reference_hash", Box::new(ReferenceHash::new())),
        ("crc32", Box::new(Crc32Balancer::new())),
        ("murmur2", Box::new(Murmur2Balancer::new())),
    ];
    for keyed in [true, false] {
        let msgs = messages(keyed);
        let mut g = c.benchmark_group(if keyed { "balance_keyed_16B" } else { "balance_keyless" });
        g.throughput(Throughput::Elements(msgs.len() as u64));
        for (name, b) in &balancers {
            g.bench_function(*name, |bench| {
                bench.iter(|| {
                    let mut sum = 0i64;
                    for m in &msgs {
                        sum += i64::from(b.balance(black_box(m), &partitions));
                    }
                    sum
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
