//! `kafkit-peers`: runs kafkit, rdkafka and rskafka on the same workloads against one
//! broker, and prints the medians side by side with kafkit's ratio to the best peer.
//!
//! ```text
//! cargo build --release -p kafkit-cli -p kafkit-peers
//! target/release/kafkit-peers compare            # starts a Tansu broker itself
//! ```
//!
//! Each client runs as its own process, so its CPU (user + system) and peak RSS are its own.
//! kafkit runs as `kafkit perf`; the peers run as `kafkit-peers client rdkafka|rskafka`.

mod compare;
mod peers;

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
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Compare(a) => compare::run(a),
        Cmd::Client(a) => peers::run(a),
    };
    if let Err(e) = r {
        eprintln!("kafkit-peers: error: {e}");
        std::process::exit(1);
    }
}
