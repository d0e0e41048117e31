//! `kafkit-peers`: runs kafkit and its peers (rdkafka, rskafka, the Java client, franz-go,
//! kafka-go) on the same workloads against one broker, and prints the medians side by side
//! with kafkit's ratio to the best peer: at full speed, then at half load for latency
//! ([`latency`]).
//!
//! ```text
//! cargo build --release -p kafkit-cli -p kafkit-peers
//! target/release/kafkit-peers compare            # starts a Tansu broker itself
//! ```
//!
//! Each client runs as its own process, so its CPU (user + system) and peak RSS are its own.
//! kafkit's consumer runs as `kafkit perf consume`; the producers (kafkit's with `kafkit perf
//! produce`'s settings) and the Rust peers run as `kafkit-peers client kafkit|rdkafka|rskafka`;
//! the Java and Go peers through `scripts/java-peer.sh` and `scripts/go-peer.sh`.
//! Every producer sends the same records: see `kafkit-peers payload` and [`payload`].

mod bench;
mod compare;
mod latency;
mod payload;
mod peers;
mod rebalance;
mod requests;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs every workload for every client, repeatedly, and prints the table.
    Compare(compare::Args),
    /// One load test by one peer client (what `compare` runs in a child process).
    Client(peers::Args),
    /// Measures how long a consumer group of 3 stops when a 4th member joins, eager and
    /// cooperative, kafkit's and the Java client's: see `rebalance.rs`.
    Rebalance(rebalance::Args),
    /// One kafkit member of a consumer group (what `rebalance` runs in a child process).
    Member(rebalance::MemberArgs),
    /// Shows the records the clients send: the text's source, a sample, and the lz4 ratio of
    /// 1 MiB of consecutive records.
    Payload(PayloadArgs),
}

#[derive(clap::Args)]
struct PayloadArgs {
    /// Value bytes per record.
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    #[command(flatten)]
    payload: compare::PayloadOpts,
}

fn show_payload(a: PayloadArgs) -> Result<(), String> {
    let text = payload::Text::load(a.payload.payload_text.as_deref())?;
    let p = payload::Payload::new(&text, a.record_size, a.payload.key_size)?;
    println!("{}", compare::describe(&p)?);
    for i in 0..3 {
        let key = p.key(i).map(|k| String::from_utf8_lossy(&k).into_owned());
        println!("record {i}: key {key:?}, value {:?}", String::from_utf8_lossy(&p.value(i)));
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Compare(a) => compare::run(a),
        Cmd::Client(a) => peers::run(a),
        Cmd::Payload(a) => show_payload(a),
        Cmd::Rebalance(a) => rebalance::run(a),
        Cmd::Member(a) => rebalance::member(a),
    };
    if let Err(e) = r {
        eprintln!("kafkit-peers: error: {e}");
        std::process::exit(1);
    }
}
