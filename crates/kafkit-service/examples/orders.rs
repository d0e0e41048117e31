//! An order service: reads orders (JSON) in batches, writes one result per order, sends
//! poison orders (not JSON, or a negative amount) to the dead-letter topic, and shuts down
//! gracefully on SIGTERM or SIGINT.
//!
//! ```sh
//! cargo run -p kafkit-service --features example --bin kafkit-orders -- orders.toml
//! ```
//!
//! `orders.toml` (every key may also come from the environment, `KAFKIT_...`):
//!
//! ```toml
//! brokers = ["localhost:9092"]
//! [reader]
//! group_id = "order-service"
//! [consumer.batch]
//! max_records = 50
//! max_wait = "200ms"
//! [app]
//! orders_topic = "orders"
//! results_topic = "order-results"
//! work_per_batch = "0ms"   # a pretend cost per batch
//! ```
//!
//! Each result's key is the order id and its header `source` says `partition:offset` of the
//! order it came from. On exit it prints one line of stats to stderr and exits 0 (clean
//! shutdown), 1 (an error) or 2 (a bad configuration).

use kafkit_service::{Batch, BatchFailure, Classify, Config, Failure, Service};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Deserialize)]
struct App {
    #[serde(default = "orders_topic")]
    orders_topic: String,
    #[serde(default = "results_topic")]
    results_topic: String,
    #[serde(default, with = "humantime_serde")]
    work_per_batch: Duration,
}

fn orders_topic() -> String {
    "orders".into()
}
fn results_topic() -> String {
    "order-results".into()
}

#[derive(Deserialize)]
struct Order {
    id: u64,
    customer: String,
    amount: f64,
}

#[derive(Serialize)]
struct OrderResult<'a> {
    id: u64,
    customer: &'a str,
    total_cents: i64,
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        use std::io::IsTerminal;
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
    let file = std::env::args().nth(1);
    let config = match Config::load(file.as_deref().map(std::path::Path::new)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orders: bad configuration: {e}");
            std::process::exit(2);
        }
    };
    let app: App = match config.app() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("orders: bad configuration: {e}");
            std::process::exit(2);
        }
    };
    let code = match run(config, app).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("orders: {e}");
            1
        }
    };
    std::process::exit(code);
}

async fn run(config: Config, app: App) -> kafkit_service::Result<()> {
    let mut service = Service::connect(&config).await?;
    let out = service.producer();
    let results = app.results_topic.clone();
    let work = app.work_per_batch;
    service.handle_batch(&app.orders_topic, move |batch: Batch| {
        let (out, results) = (out.clone(), results.clone());
        async move {
            let mut poison = Vec::new();
            let mut pending = Vec::new();
            for (i, r) in batch.records().iter().enumerate() {
                let order: Order = match r.json().or_dead_letter() {
                    Ok(o) => o,
                    Err(f) => {
                        poison.push((i, f.with_kind("InvalidOrder")));
                        continue;
                    }
                };
                if order.amount < 0.0 {
                    poison.push((
                        i,
                        Failure::dead_letter(format!("order {}: negative amount", order.id)).with_kind("InvalidOrder"),
                    ));
                    continue;
                }
                let result = OrderResult {
                    id: order.id,
                    customer: &order.customer,
                    total_cents: (order.amount * 100.0).round() as i64,
                };
                let m = kafkit_service::json::message(Some(order.id.to_string().into()), &result)
                    .or_dead_letter()
                    .map_err(BatchFailure::All)?
                    .with_topic(results.as_str())
                    .with_header("source", Some(format!("{}:{}", r.partition(), r.offset()).into()));
                // Queued now, acknowledged below; the service also flushes before it commits.
                pending.push(out.queue(m).await.map_err(Failure::retry)?);
            }
            tokio::time::sleep(work).await;
            for f in pending {
                f.await.map_err(Failure::retry)?;
            }
            if poison.is_empty() {
                Ok(())
            } else {
                Err(BatchFailure::Records(poison))
            }
        }
    });
    let control = service.control();
    eprintln!("orders: running");
    let r = service.run().await;
    let stats = control.stats();
    let s = stats.get(&app.orders_topic).cloned().unwrap_or_default();
    eprintln!(
        "orders: stopped ({:?}): handled={} dead_lettered={} retried={} failed={} p99={:?}",
        control.phase(),
        s.handled,
        s.dead_lettered,
        s.retried,
        s.failed,
        s.latency.p99
    );
    r
}
