//! The produce path without I/O: from the messages handed to the writer to encoded Produce
//! request frames — balancer, accumulator append (one lock, a shared outcome per batch),
//! batch numbering and encoding (per codec), request building and frame encoding.
//! `cargo bench -p kafkit --bench produce_path`.
//!
//! 10,000 messages over 6 partitions, round-robin, 1 MiB batches: the shape of `kafkit perf`
//! and of the comparison harness (`kafkit-peers`).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafkit::producer::bench_produce_path;
use kafkit::{Compression, Message, WriterConfig};

const MESSAGES: usize = 10_000;

fn messages(size: usize) -> Vec<Message> {
    let value = Bytes::from(vec![b'x'; size]);
    (0..MESSAGES).map(|_| Message::new(None, Some(value.clone()))).collect()
}

fn bench(c: &mut Criterion) {
    for (size, label) in [(100, "100B"), (1024, "1KiB")] {
        let mut g = c.benchmark_group(format!("produce_path/{label}"));
        g.throughput(Throughput::Elements(MESSAGES as u64));
        for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let config = WriterConfig::default()
                .with_topic("bench")
                .with_compression(codec)
                .with_batch_size(usize::MAX / 2)
                .with_batch_bytes(1 << 20)
                .with_queue_capacity(usize::MAX);
            g.bench_function(format!("{codec:?}").to_lowercase(), |b| {
                // Building the messages is the application's work, not the writer's.
                b.iter_batched(
                    || messages(size),
                    |m| bench_produce_path(&config, 6, m).expect("the produce path"),
                    BatchSize::LargeInput,
                )
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
