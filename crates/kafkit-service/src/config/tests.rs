use super::*;
use std::time::Duration;

/// Writes `text` to `name` in `dir`, a directory of the test's own that is removed when the
/// test drops it.
fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn the_last_layer_wins_and_each_value_knows_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let f =
        file(&dir, "layers.toml", "[writer]\nlinger = \"20ms\"\nbatch_size = 7\n\n[reader]\ngroup_id = \"g-file\"\n");
    let c = Config::builder()
        .file(&f)
        .env_from(vars(&[("KAFKIT_WRITER__BATCH_SIZE", "8"), ("KAFKIT_READER__GROUP_ID", "g-env")]))
        .set("reader.group_id", "g-code")
        .build()
        .unwrap();
    let s = c.settings();
    assert_eq!(s.writer.linger, Duration::from_millis(20), "file over default");
    assert_eq!(s.writer.batch_size, 8, "env over file");
    assert_eq!(s.reader.group_id.as_deref(), Some("g-code"), "code over env");
    assert_eq!(s.writer.batch_bytes, Size::bytes(1 << 20), "default where nothing is set");
    assert_eq!(c.source_of("writer.linger"), ValueSource::File { path: f.clone(), line: Some(2) });
    assert_eq!(c.source_of("writer.batch_size"), ValueSource::Env { var: "KAFKIT_WRITER__BATCH_SIZE".into() });
    assert_eq!(c.source_of("reader.group_id"), ValueSource::Code);
    assert_eq!(c.source_of("writer.batch_bytes"), ValueSource::Default);
}

#[test]
fn yaml_files_layer_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&dir, "layers.yaml", "writer:\n  linger: 15ms\nconsumer:\n  retry:\n    max_attempts: 9\n");
    let c = Config::builder().file(&f).build().unwrap();
    assert_eq!(c.settings().writer.linger, Duration::from_millis(15));
    assert_eq!(c.settings().consumer.retry.max_attempts, 9);
    assert_eq!(c.source_of("consumer.retry.max_attempts"), ValueSource::File { path: f, line: Some(5) });
}

#[test]
fn human_readable_durations_and_sizes() {
    let c = Config::builder()
        .toml_str("t", "[writer]\nlinger = \"1m 30s\"\nqueue_bytes = \"64 KiB\"\nmax_request_bytes = 2048\n")
        .env_from(vars(&[("KAFKIT_READER__PREFETCH_BYTES", "1MiB"), ("KAFKIT_READER__MAX_WAIT", "250ms")]))
        .build()
        .unwrap();
    let s = c.settings();
    assert_eq!(s.writer.linger, Duration::from_secs(90));
    assert_eq!(s.writer.queue_bytes.get(), 64 * 1024);
    assert_eq!(s.writer.max_request_bytes.get(), 2048);
    let r = s.reader_config().unwrap();
    assert_eq!(r.prefetch_bytes, 1 << 20);
    assert_eq!(r.max_wait, Duration::from_millis(250));
}

#[test]
fn an_error_names_the_key_its_file_and_line_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&dir, "bad.toml", "[writer]\nbatch_size = 3\nlinger = \"soon\"\n");
    let e = Config::builder().file(&f).build().unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.issues[0].key, "writer.linger", "{shown}");
    assert_eq!(e.issues[0].source, ValueSource::File { path: f.clone(), line: Some(3) }, "{shown}");
    assert!(shown.contains(&format!("{}:3", f.display())) && shown.contains("soon"), "{shown}");

    let e = Config::builder().env_from(vars(&[("KAFKIT_WRITER__ACKS", "most")])).build().unwrap_err();
    let shown = e.to_string();
    assert!(shown.starts_with("writer.acks (from env KAFKIT_WRITER__ACKS): "), "{shown}");
    assert!(shown.contains("\"all\" (-1)"), "names what was expected: {shown}");
}

#[test]
fn unknown_keys_are_errors_in_files_and_variables() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&dir, "unknown.toml", "[writer]\nlinger = \"5ms\"\nlingr = \"5ms\"\n");
    let e = Config::builder().file(&f).build().unwrap_err();
    assert_eq!(e.issues[0].key, "writer.lingr", "{e}");
    assert_eq!(e.issues[0].source, ValueSource::File { path: f, line: Some(3) }, "{e}");
    assert!(e.to_string().contains("expected one of: topic, balancer"), "{e}");

    let e = Config::builder().env_from(vars(&[("KAFKIT_WRITTER__LINGER", "5ms")])).build().unwrap_err();
    assert_eq!(e.issues[0].key, "writter", "{e}");
    assert!(e.to_string().contains("env KAFKIT_WRITTER__LINGER"), "{e}");
    // Variables of other tools are not this layer's.
    Config::builder().env_from(vars(&[("KAFKIT_CACHE", "/x"), ("KAFKIT_TEST_CLUSTER", "/y")])).build().unwrap();
}

#[test]
fn secrets_come_only_from_the_environment_files_or_code() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&dir, "secret.toml", "[sasl]\nmechanism = \"PLAIN\"\nusername = \"bob\"\npassword = \"hunter2\"\n");
    let e = Config::builder().file(&f).build().unwrap_err();
    assert_eq!(e.issues[0].key, "sasl.password");
    assert!(e.to_string().contains("KAFKIT_SASL_PASSWORD") && !e.to_string().contains("hunter2"), "{e}");

    let pw = file(&dir, "pw", "bob-secret\n");
    let f = file(
        &dir,
        "ok.toml",
        &format!("[sasl]\nmechanism = \"PLAIN\"\nusername = \"bob\"\npassword_file = {:?}\n", pw),
    );
    let c = Config::builder().file(&f).build().unwrap();
    let d = c.settings().cluster_config().unwrap().dialer;
    assert_eq!(d.sasl().unwrap().mechanism(), "PLAIN");

    let c = Config::builder()
        .env_from(vars(&[
            ("KAFKIT_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKIT_SASL_USERNAME", "alice"),
            ("KAFKIT_SASL_PASSWORD", "alice-secret"),
        ]))
        .build()
        .unwrap();
    let entries = c.entries();
    let pw = entries.iter().find(|e| e.key == "sasl.password").unwrap();
    assert_eq!(pw.value, "\"<redacted>\"");
    assert_eq!(pw.source, ValueSource::Env { var: "KAFKIT_SASL_PASSWORD".into() });
    assert!(entries.iter().all(|e| !e.value.contains("alice-secret")));
    assert!(!format!("{:?}", c.settings()).contains("alice-secret"));
}

#[test]
fn entries_list_every_setting_with_its_source() {
    let c = Config::builder()
        .toml_str("defaults.toml", "[consumer]\nordering = \"key\"\n")
        .env_from(vars(&[("KAFKIT_BROKERS", "a:1,b:2")]))
        .build()
        .unwrap();
    let entries = c.entries();
    let get = |k: &str| entries.iter().find(|e| e.key == k).unwrap_or_else(|| panic!("no {k}"));
    assert_eq!(get("brokers").value, "[\"a:1\", \"b:2\"]");
    assert_eq!(get("brokers").source, ValueSource::Env { var: "KAFKIT_BROKERS".into() });
    assert_eq!(get("consumer.ordering").value, "\"key\"");
    assert_eq!(get("consumer.ordering").source, ValueSource::Embedded { name: "defaults.toml".into(), line: Some(2) });
    assert_eq!(get("writer.linger").value, "\"5ms\"");
    assert_eq!(get("writer.linger").source, ValueSource::Default);
    assert_eq!(get("writer.batch_size").value, "100");
    assert_eq!(get("cluster.backoff.jitter").value, "0.2");
    assert_eq!(get("reader.group_id").value, "unset");
    assert!(entries.len() > 80, "{} entries", entries.len());
}

/// The defaults convert into kafkit's own defaults, field by field. (That every field is
/// mapped at all is checked by the compiler: the conversions and defaults destructure and
/// build kafkit's structs without `..`.)
#[test]
fn defaults_are_kafkits() {
    let s = Settings::default();
    let w = s.writer_config().unwrap();
    let k = kafkit::WriterConfig::default();
    assert_eq!(
        (w.topic, w.batch_size, w.batch_bytes, w.linger, w.acks, w.compression, w.idempotent, w.max_in_flight),
        (k.topic, k.batch_size, k.batch_bytes, k.linger, k.acks, k.compression, k.idempotent, k.max_in_flight)
    );
    assert_eq!(
        (w.produce_concurrency, w.delivery_timeout, w.allow_auto_topic_creation, w.unknown_topic_retries),
        (k.produce_concurrency, k.delivery_timeout, k.allow_auto_topic_creation, k.unknown_topic_retries)
    );
    assert_eq!(
        (w.queue_capacity, w.queue_bytes, w.max_request_bytes),
        (k.queue_capacity, k.queue_bytes, k.max_request_bytes)
    );
    let r = s.reader_config().unwrap();
    let k = kafkit::ReaderConfig::new("", 0);
    assert_eq!(
        (r.session_timeout, r.heartbeat_interval, r.rebalance_timeout),
        (k.session_timeout, k.heartbeat_interval, k.rebalance_timeout)
    );
    assert_eq!(
        (r.commit, r.partition_watch_interval, r.close_timeout, r.start),
        (k.commit, k.partition_watch_interval, k.close_timeout, k.start)
    );
    assert_eq!(
        (r.min_bytes, r.max_bytes, r.fetch_max_bytes, r.fetch_concurrency),
        (k.min_bytes, k.max_bytes, k.fetch_max_bytes, k.fetch_concurrency)
    );
    assert_eq!(
        (r.max_wait, r.prefetch_bytes, r.isolation, r.reset),
        (k.max_wait, k.prefetch_bytes, k.isolation, k.reset)
    );
    let names = |v: &[std::sync::Arc<dyn kafkit::consumer::Assignor>]| {
        v.iter().map(|a| a.name().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(names(&r.assignors), names(&k.assignors));
    let c = s.cluster_config().unwrap();
    let k = kafkit::ClusterConfig::default();
    assert_eq!((c.metadata_max_age, c.backoff, c.retry_timeout), (k.metadata_max_age, k.backoff, k.retry_timeout));
    assert_eq!(
        (c.dialer.client_id(), c.dialer.connect_timeout(), c.dialer.request_timeout(), c.dialer.max_response_bytes()),
        (k.dialer.client_id(), k.dialer.connect_timeout(), k.dialer.request_timeout(), k.dialer.max_response_bytes())
    );
}

#[test]
fn every_kafkit_setting_can_be_set() {
    let text = r#"
brokers = ["k1:9092"]
[cluster]
client_id = "svc"
connect_timeout = "2s"
request_timeout = "7s"
max_response_bytes = "8MiB"
max_versions = { JoinGroup = 5 }
metadata_max_age = "1m"
retry_timeout = "9s"
backoff = { min = "50ms", max = "2s", jitter = 0.1 }
[tls]
enabled = true
server_name = "broker.example"
[reader]
partitions = ["t:1", "u:2"]
group_instance_id = "i-1"
session_timeout = "10s"
heartbeat_interval = "1s"
rebalance_timeout = "20s"
assignors = ["cooperative-sticky"]
commit = "on-read"
partition_watch_interval = "2s"
close_timeout = "3s"
start = 42
min_bytes = 10
max_bytes = "2MiB"
fetch_concurrency = 1
fetch_max_bytes = "10MiB"
max_wait = "100ms"
prefetch_bytes = "4MiB"
isolation = "read-committed"
reset = "fail"
[writer]
topic = "out"
balancer = "murmur2"
batch_size = 10
batch_bytes = "256KiB"
linger = "1ms"
acks = 1
compression = "zstd"
idempotent = false
max_in_flight = 1
produce_concurrency = 1
delivery_timeout = "30s"
allow_auto_topic_creation = true
unknown_topic_retries = 1
queue_capacity = 10
queue_bytes = "1MiB"
max_request_bytes = "512KiB"
"#;
    let c = Config::builder().toml_str("all.toml", text).build().unwrap();
    let s = c.settings();
    let cc = s.cluster_config().unwrap();
    assert_eq!(cc.dialer.client_id(), Some("svc"));
    assert_eq!(cc.dialer.connect_timeout(), Duration::from_secs(2));
    assert_eq!(cc.dialer.max_response_bytes(), 8 << 20);
    assert!(cc.dialer.tls().is_some());
    assert_eq!(cc.backoff.jitter, 0.1);
    assert_eq!(cc.retry_timeout, Duration::from_secs(9));
    let r = s.reader_config().unwrap();
    assert_eq!(r.partitions, vec![kafkit::TopicPartition::new("t", 1), kafkit::TopicPartition::new("u", 2)]);
    assert_eq!(r.commit, kafkit::CommitMode::OnRead);
    assert_eq!(r.start, kafkit::StartOffset::At(42));
    assert_eq!(r.isolation, kafkit::IsolationLevel::ReadCommitted);
    assert_eq!(r.reset, kafkit::OffsetReset::Fail);
    assert_eq!(r.assignors[0].name(), "cooperative-sticky");
    assert_eq!((r.min_bytes, r.max_bytes, r.prefetch_bytes), (10, 2 << 20, 4 << 20));
    let w = s.writer_config().unwrap();
    assert_eq!(w.topic.as_deref(), Some("out"));
    assert_eq!(w.acks, kafkit::Acks::Leader);
    assert_eq!(w.compression, kafkit::Compression::Zstd);
    assert_eq!((w.batch_bytes, w.queue_bytes, w.max_request_bytes), (256 << 10, 1 << 20, 512 << 10));
    assert!(!w.idempotent && w.allow_auto_topic_creation);

    let e = Config::builder()
        .toml_str("v.toml", "[cluster]\nmax_versions = { Joingroop = 5 }\n")
        .build()
        .unwrap()
        .settings()
        .cluster_config()
        .unwrap_err();
    assert!(e.contains("Joingroop"), "{e}");
}

#[test]
fn the_app_section_is_the_applications_own() {
    #[derive(serde::Deserialize, Debug)]
    struct App {
        orders_topic: String,
        #[serde(default)]
        slow_ms: u64,
    }
    let c = Config::builder()
        .toml_str("a.toml", "[app]\norders_topic = \"orders\"\n")
        .env_from(vars(&[("KAFKIT_APP__SLOW_MS", "25")]))
        .build()
        .unwrap();
    let app: App = c.app().unwrap();
    assert_eq!((app.orders_topic.as_str(), app.slow_ms), ("orders", 25));
    assert_eq!(c.source_of("app.slow_ms"), ValueSource::Env { var: "KAFKIT_APP__SLOW_MS".into() });
    let c = Config::builder().env_from(vars(&[("KAFKIT_APP__SLOW_MS", "soon")])).build().unwrap();
    let e = c.app::<App>().unwrap_err();
    assert_eq!(e.to_string(), "app.slow_ms (from env KAFKIT_APP__SLOW_MS): expected u64, found string \"soon\"");
}
