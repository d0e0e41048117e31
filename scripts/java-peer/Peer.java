// The Apache Kafka Java client (kafka-clients) as a peer for kafkit's interop tests: it produces
// and consumes what a test asks, and reports, as JSON lines on stdout, what it did.
//
// Built and run by scripts/java-peer.sh (javac against kafka-clients and its runtime
// dependencies, from `scripts/kafka.sh libs`; Jackson, from the same directory, reads and
// writes the JSON). Two ways to drive it:
//
//   Peer produce --bootstrap B --topic T [OPTIONS] < records.jsonl   (or --generate N)
//   Peer consume --bootstrap B --topic T [OPTIONS] > records.jsonl
//   Peer session [--bootstrap B]     # commands as JSON objects, one per line on stdin
//
// A command line's `--some-option V` is the field "some_option": "V" of a session command. In a
// session every command ends with one line {"done": CMD, ...} or {"error": MESSAGE, "cmd": CMD};
// the session keeps going after an error, and ends at the end of stdin. A session's own
// options (--bootstrap) are defaults for its commands. One JVM can so do all of a test's work:
// a JVM takes about a second to start with this classpath.
//
// Commands (fields; defaults in brackets):
//   produce   open + send + close: topic, records | generate, partition [the partitioner],
//             producer options, txn ["c3,a2": a transaction of the next 3 records committed,
//             then one of the next 2 aborted; needs transactional_id; without it, with a
//             transactional_id, one committed transaction of all records]
//   open      name, producer options: codec none|gzip|snappy|lz4|zstd [none], acks all|1|0 [all],
//             idempotence true|false [the Java default, true], transactional_id (then
//             initTransactions), transaction_timeout_ms, linger_ms, batch_size,
//             max_request_size [16777216], partitioner_ignore_keys [false]
//   send      name, topic, records | generate, partition, flush [true]: sends, flushes and prints
//             per record {"i", "partition", "offset", "timestamp"} as the broker acknowledged it
//             (with flush false nothing is printed: the records are in flight)
//   begin | commit | abort | flush | close   name. abort and commit flush first, so that the
//             records of an aborted transaction are in the log.
//   consume   topic, partitions [all; e.g. [0, 2] or "0,2"], group (subscribe with this group id;
//             else assign; group_protocol classic|consumer [classic: JoinGroup; consumer:
//             KIP-848's ConsumerGroupHeartbeat], session_timeout_ms [45000]), isolation
//             read_committed|read_uncommitted [read_uncommitted],
//             offset [the beginning], count (stop once this many records arrived), timeout_ms
//             [30000], idle_ms (also stop after this long without a record), commit [false]
//             (commitSync at the end), positions [true]. Prints each record, then (with
//             positions) the consumer's position in each partition.
//   create_topics  topics, partitions [1], configs {"k": "v"}
//   txn_perf  transactional produce throughput: topic, transactional_id, records, txn_records
//             [1000], record_size [100], key_size [16] (keys: the record's number, %0Nd),
//             linger_ms [5], batch_size [1048576], acks all. Values are random text from the
//             generator of kafkit's perf_txn.rs (the same bytes). Timed after
//             initTransactions: begin, send txn_records, commit, until records are sent.
//             Done line: records, transactions, seconds, records_per_sec,
//             transactions_per_sec, client_cpu_seconds and cpu_us_per_record (the JVM's
//             process CPU over the timed part: every thread, JIT and GC included).
//   version   the kafka-clients version
//
// perf_produce and perf_consume (command line only) are the load tests of the side-by-side
// harness `kafkit-peers compare`, with the Rust peers' options and JSON report: Perf.java's
// header describes them (scripts/java-peer.sh perf runs them on the JVM's default flags).
// group_member (command line only) is one member of its rebalance measurement `kafkit-peers
// rebalance`: Member.java's header describes it.
//
// A record, in and out: {"key": base64|null, "value": base64|null, "headers": [[name,
// base64|null], ...], "timestamp": ms}; a record in may name its "partition"; a record out
// also has "topic", "partition", "offset", "timestamp_type", "leader_epoch". generate N makes
// keys KEY_PREFIX+i [key-] and values VALUE_PREFIX+i [value-] (keyless true: null keys).

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class Peer {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final PrintStream OUT =
            new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);

    private final Map<String, KafkaProducer<byte[], byte[]>> producers = new HashMap<>();

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            System.err.println("usage: Peer produce|consume|session|create_topics|version [--option value ...]");
            System.err.println("       Peer perf_produce|perf_consume TOPIC [OPTIONS] (see Perf.java)");
            System.err.println("       Peer group_member TOPIC --brokers B --group G --assignor eager|cooperative (see Member.java)");
            System.exit(2);
        }
        if (args[0].equals("perf_produce") || args[0].equals("perf_consume")) {
            // The harness's load tests: options and report of their own (Perf.java).
            System.exit(Perf.run(args));
        }
        if (args[0].equals("group_member")) {
            // One member of the harness's rebalance measurement (Member.java).
            System.exit(Member.run(args));
        }
        Peer peer = new Peer();
        ObjectNode opts = options(args);
        if (!args[0].equals("session")) {
            opts.put("cmd", args[0]);
            if (args[0].equals("produce") && !opts.has("records") && !opts.has("generate")) {
                opts.set("records", readRecords());
            }
            boolean ok = peer.run(opts);
            peer.closeAll();
            OUT.flush();
            System.exit(ok ? 0 : 1);
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isBlank()) continue;
            ObjectNode cmd;
            try {
                cmd = (ObjectNode) JSON.readTree(line);
            } catch (Exception e) {
                emit(JSON.createObjectNode().put("error", "not a JSON object: " + e.getMessage()));
                continue;
            }
            for (Map.Entry<String, JsonNode> f : opts.properties()) {
                if (!cmd.has(f.getKey())) cmd.set(f.getKey(), f.getValue());
            }
            peer.run(cmd);
        }
        peer.closeAll();
        OUT.flush();
    }

    /** `--some-option V` as {"some_option": "V"}. */
    private static ObjectNode options(String[] args) {
        ObjectNode o = JSON.createObjectNode();
        for (int i = 1; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --option value, got " + args[i]);
            }
            o.put(args[i].substring(2).replace('-', '_'), args[++i]);
        }
        return o;
    }

    private static ArrayNode readRecords() throws Exception {
        ArrayNode recs = JSON.createArrayNode();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (!line.isBlank()) recs.add(JSON.readTree(line));
        }
        return recs;
    }

    private static void emit(JsonNode n) {
        OUT.println(n.toString());
    }

    /** Runs one command; prints its output and its done or error line. */
    private boolean run(ObjectNode cmd) {
        String name = cmd.path("cmd").asText("");
        long t0 = System.nanoTime();
        try {
            ObjectNode done = switch (name) {
                case "produce" -> produce(cmd);
                case "open" -> open(cmd);
                case "send" -> send(cmd);
                case "begin" -> { producer(cmd).beginTransaction(); yield null; }
                case "commit" -> { producer(cmd).flush(); producer(cmd).commitTransaction(); yield null; }
                case "abort" -> { producer(cmd).flush(); producer(cmd).abortTransaction(); yield null; }
                case "flush" -> { producer(cmd).flush(); yield null; }
                case "close" -> { producer(cmd).close(Duration.ofSeconds(10)); producers.remove(text(cmd, "name")); yield null; }
                case "consume" -> consume(cmd);
                case "create_topics" -> createTopics(cmd);
                case "txn_perf" -> txnPerf(cmd);
                case "version" -> JSON.createObjectNode().put("kafka_clients", clientsVersion());
                default -> throw new IllegalArgumentException("unknown command " + name);
            };
            ObjectNode line = JSON.createObjectNode().put("done", name);
            if (done != null) line.setAll(done);
            line.put("ms", (System.nanoTime() - t0) / 1_000_000);
            emit(line);
            return true;
        } catch (Throwable e) {
            StringBuilder why = new StringBuilder();
            for (Throwable c = e; c != null; c = c.getCause()) {
                why.append(why.length() == 0 ? "" : ": caused by ").append(c);
            }
            emit(JSON.createObjectNode().put("error", why.toString()).put("cmd", name));
            return false;
        } finally {
            OUT.flush();
        }
    }

    private static String text(JsonNode cmd, String field) {
        JsonNode v = cmd.get(field);
        if (v == null || v.isNull()) throw new IllegalArgumentException("missing \"" + field + "\"");
        return v.asText();
    }

    private static String text(JsonNode cmd, String field, String dflt) {
        JsonNode v = cmd.get(field);
        return v == null || v.isNull() ? dflt : v.asText();
    }

    private static long num(JsonNode cmd, String field, long dflt) {
        return Long.parseLong(text(cmd, field, Long.toString(dflt)));
    }

    private static byte[] bytes(JsonNode v) {
        return v == null || v.isNull() ? null : Base64.getDecoder().decode(v.asText());
    }

    private static String b64(byte[] b) {
        return b == null ? null : Base64.getEncoder().encodeToString(b);
    }

    private KafkaProducer<byte[], byte[]> producer(JsonNode cmd) {
        KafkaProducer<byte[], byte[]> p = producers.get(text(cmd, "name"));
        if (p == null) throw new IllegalArgumentException("no producer named " + text(cmd, "name") + " is open");
        return p;
    }

    private ObjectNode open(JsonNode cmd) {
        String name = text(cmd, "name");
        if (producers.containsKey(name)) throw new IllegalArgumentException("producer " + name + " is open already");
        Properties p = new Properties();
        p.put("bootstrap.servers", text(cmd, "bootstrap"));
        p.put("client.id", "kafkit-java-peer-" + name);
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("compression.type", text(cmd, "codec", "none"));
        p.put("acks", text(cmd, "acks", "all"));
        p.put("max.request.size", text(cmd, "max_request_size", Integer.toString(16 << 20)));
        p.put("partitioner.ignore.keys", text(cmd, "partitioner_ignore_keys", "false"));
        String[][] optional = {
            {"idempotence", "enable.idempotence"},
            {"transactional_id", "transactional.id"},
            {"transaction_timeout_ms", "transaction.timeout.ms"},
            {"linger_ms", "linger.ms"},
            {"batch_size", "batch.size"},
        };
        for (String[] o : optional) {
            if (cmd.hasNonNull(o[0])) p.put(o[1], cmd.get(o[0]).asText());
        }
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p);
        if (cmd.hasNonNull("transactional_id")) {
            try {
                producer.initTransactions();
            } catch (RuntimeException e) {
                producer.close(Duration.ZERO);
                throw e;
            }
        }
        producers.put(name, producer);
        return null;
    }

    /** The command's records: given, or generated. */
    private static List<JsonNode> records(JsonNode cmd) {
        List<JsonNode> out = new ArrayList<>();
        if (cmd.has("records")) {
            cmd.get("records").forEach(out::add);
            return out;
        }
        long n = num(cmd, "generate", 0);
        String kp = text(cmd, "key_prefix", "key-"), vp = text(cmd, "value_prefix", "value-");
        boolean keyless = Boolean.parseBoolean(text(cmd, "keyless", "false"));
        Base64.Encoder enc = Base64.getEncoder();
        for (long i = 0; i < n; i++) {
            ObjectNode r = JSON.createObjectNode();
            if (keyless) r.putNull("key");
            else r.put("key", enc.encodeToString((kp + i).getBytes(StandardCharsets.UTF_8)));
            r.put("value", enc.encodeToString((vp + i).getBytes(StandardCharsets.UTF_8)));
            out.add(r);
        }
        return out;
    }

    /** Sends `recs` to the command's topic (and partition, unless a record names its own). */
    private static List<Future<RecordMetadata>> sendAll(KafkaProducer<byte[], byte[]> p, JsonNode cmd, List<JsonNode> recs) {
        String topic = text(cmd, "topic");
        List<Future<RecordMetadata>> futs = new ArrayList<>();
        for (JsonNode r : recs) {
            JsonNode part = r.hasNonNull("partition") ? r.get("partition") : cmd.get("partition");
            Integer partition = part == null || part.isNull() ? null : part.asInt();
            Long ts = r.hasNonNull("timestamp") ? r.get("timestamp").asLong() : null;
            List<Header> headers = new ArrayList<>();
            for (JsonNode h : r.path("headers")) headers.add(new RecordHeader(h.get(0).asText(), bytes(h.get(1))));
            futs.add(p.send(new ProducerRecord<>(topic, partition, ts, bytes(r.get("key")), bytes(r.get("value")), headers)));
        }
        return futs;
    }

    /** Prints each acknowledged record's partition, offset and timestamp. */
    private static void report(List<Future<RecordMetadata>> futs, int first, String txn) throws Exception {
        for (int i = 0; i < futs.size(); i++) {
            RecordMetadata md = futs.get(i).get();
            ObjectNode line = JSON.createObjectNode().put("i", first + i).put("partition", md.partition())
                    .put("offset", md.offset()).put("timestamp", md.timestamp());
            if (txn != null) line.put("txn", txn);
            emit(line);
        }
    }

    private ObjectNode send(JsonNode cmd) throws Exception {
        KafkaProducer<byte[], byte[]> p = producer(cmd);
        List<Future<RecordMetadata>> futs = sendAll(p, cmd, records(cmd));
        if (Boolean.parseBoolean(text(cmd, "flush", "true"))) {
            p.flush();
            report(futs, 0, null);
        }
        return JSON.createObjectNode().put("records", futs.size());
    }

    private ObjectNode produce(ObjectNode cmd) throws Exception {
        String name = "produce-" + System.nanoTime();
        cmd.put("name", name);
        open(cmd);
        KafkaProducer<byte[], byte[]> p = producers.get(name);
        List<JsonNode> recs = records(cmd);
        try {
            boolean transactional = cmd.hasNonNull("transactional_id");
            String plan = text(cmd, "txn", transactional ? "c" + recs.size() : null);
            if (plan == null) {
                List<Future<RecordMetadata>> futs = sendAll(p, cmd, recs);
                p.flush();
                report(futs, 0, null);
                return JSON.createObjectNode().put("records", recs.size());
            }
            if (!transactional) throw new IllegalArgumentException("txn needs a transactional_id");
            int next = 0, committed = 0, aborted = 0;
            for (String step : plan.split(",")) {
                int n = Integer.parseInt(step.substring(1));
                if (next + n > recs.size()) throw new IllegalArgumentException("txn plan " + plan + " needs more records");
                p.beginTransaction();
                List<Future<RecordMetadata>> futs = sendAll(p, cmd, recs.subList(next, next + n));
                p.flush();
                report(futs, next, step.startsWith("c") ? "commit" : "abort");
                switch (step.charAt(0)) {
                    case 'c' -> { p.commitTransaction(); committed += n; }
                    case 'a' -> { p.abortTransaction(); aborted += n; }
                    default -> throw new IllegalArgumentException("txn step " + step + ": c or a, then a count");
                }
                next += n;
            }
            if (next != recs.size()) throw new IllegalArgumentException("txn plan " + plan + " leaves records unsent");
            return JSON.createObjectNode().put("records", recs.size()).put("committed", committed).put("aborted", aborted);
        } finally {
            producers.remove(name).close(Duration.ofSeconds(10));
        }
    }

    private static ObjectNode consume(JsonNode cmd) {
        String topic = text(cmd, "topic");
        Properties p = new Properties();
        p.put("bootstrap.servers", text(cmd, "bootstrap"));
        p.put("client.id", "kafkit-java-peer-consumer");
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.put("isolation.level", text(cmd, "isolation", "read_uncommitted"));
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        p.put("max.partition.fetch.bytes", Integer.toString(16 << 20));
        p.put("fetch.max.bytes", Integer.toString(64 << 20));
        String group = text(cmd, "group", null);
        if (group != null) p.put("group.id", group);
        if (cmd.hasNonNull("group_protocol")) p.put("group.protocol", text(cmd, "group_protocol"));
        if (cmd.hasNonNull("session_timeout_ms")) p.put("session.timeout.ms", text(cmd, "session_timeout_ms"));
        long count = num(cmd, "count", Long.MAX_VALUE), idle = num(cmd, "idle_ms", Long.MAX_VALUE);
        long deadline = System.currentTimeMillis() + num(cmd, "timeout_ms", 30_000);
        long n = 0;
        ObjectNode positions = JSON.createObjectNode();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            if (group != null) {
                c.subscribe(List.of(topic));
            } else {
                List<TopicPartition> tps = new ArrayList<>();
                JsonNode parts = cmd.get("partitions");
                if (parts == null || parts.isNull()) {
                    for (PartitionInfo pi : c.partitionsFor(topic)) tps.add(new TopicPartition(topic, pi.partition()));
                } else if (parts.isArray()) {
                    parts.forEach(x -> tps.add(new TopicPartition(topic, x.asInt())));
                } else {
                    for (String s : parts.asText().split(",")) tps.add(new TopicPartition(topic, Integer.parseInt(s.trim())));
                }
                c.assign(tps);
                if (cmd.hasNonNull("offset")) tps.forEach(tp -> c.seek(tp, cmd.get("offset").asLong()));
                else c.seekToBeginning(tps);
            }
            long last = System.currentTimeMillis();
            while (n < count && System.currentTimeMillis() < deadline && System.currentTimeMillis() - last < idle) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
                    ArrayNode headers = JSON.createArrayNode();
                    for (Header h : r.headers()) headers.add(JSON.createArrayNode().add(h.key()).add(b64(h.value())));
                    ObjectNode line = JSON.createObjectNode().put("topic", r.topic()).put("partition", r.partition())
                            .put("offset", r.offset()).put("timestamp", r.timestamp())
                            .put("timestamp_type", r.timestampType().name).put("key", b64(r.key()))
                            .put("value", b64(r.value()));
                    line.set("headers", headers);
                    line.put("leader_epoch", r.leaderEpoch().orElse(-1));
                    emit(line);
                    n++;
                    last = System.currentTimeMillis();
                }
            }
            if (Boolean.parseBoolean(text(cmd, "commit", "false"))) c.commitSync();
            if (Boolean.parseBoolean(text(cmd, "positions", "true"))) {
                for (TopicPartition tp : c.assignment()) {
                    positions.put(Integer.toString(tp.partition()), c.position(tp, Duration.ofSeconds(10)));
                }
            }
        }
        ObjectNode done = JSON.createObjectNode().put("records", n);
        done.set("positions", positions);
        return done;
    }

    private static ObjectNode createTopics(JsonNode cmd) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", text(cmd, "bootstrap"));
        List<NewTopic> topics = new ArrayList<>();
        Map<String, String> configs = new HashMap<>();
        for (Map.Entry<String, JsonNode> f : cmd.path("configs").properties()) configs.put(f.getKey(), f.getValue().asText());
        for (JsonNode t : cmd.get("topics")) {
            Optional<Integer> partitions = Optional.of((int) num(cmd, "partitions", 1));
            topics.add(new NewTopic(t.asText(), partitions, Optional.empty()).configs(configs));
        }
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(topics).all().get();
        }
        return JSON.createObjectNode().put("topics", topics.size());
    }

    /** kafka-clients' version, from the properties file in its jar (as its AppInfoParser reads it). */
    /** Values of random text: kafkit's perf_txn::random_values (a 64-bit LCG seeded with 42). */
    private static byte[][] randomValues(int n, int size) {
        byte[] alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .".getBytes(StandardCharsets.US_ASCII);
        long x = 42;
        byte[][] out = new byte[n][];
        for (int i = 0; i < n; i++) {
            byte[] v = new byte[size];
            for (int j = 0; j < size; j++) {
                x = x * 6364136223846793005L + 1442695040888963407L;
                v[j] = alphabet[(int) (x >>> 58)];
            }
            out[i] = v;
        }
        return out;
    }

    private static ObjectNode txnPerf(JsonNode cmd) {
        String topic = text(cmd, "topic");
        long records = num(cmd, "records", 10000), perTxn = num(cmd, "txn_records", 1000);
        int recordSize = (int) num(cmd, "record_size", 100), keySize = (int) num(cmd, "key_size", 16);
        Properties p = new Properties();
        p.put("bootstrap.servers", text(cmd, "bootstrap"));
        p.put("client.id", "kafkit-java-peer-txn-perf");
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("acks", "all");
        p.put("transactional.id", text(cmd, "transactional_id"));
        p.put("linger.ms", text(cmd, "linger_ms", "5"));
        p.put("batch.size", text(cmd, "batch_size", Integer.toString(1 << 20)));
        byte[][] values = randomValues((int) Math.max(1, Math.min(records, 100_000)), recordSize);
        String keyFormat = "%0" + keySize + "d";
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            long cpu0 = os.getProcessCpuTime(), t0 = System.nanoTime();
            long txns = 0;
            for (long i = 0; i < records; ) {
                producer.beginTransaction();
                long end = Math.min(i + perTxn, records);
                for (; i < end; i++) {
                    byte[] key = keySize > 0 ? String.format(keyFormat, i).getBytes(StandardCharsets.US_ASCII) : null;
                    producer.send(new ProducerRecord<>(topic, key, values[(int) (i % values.length)]));
                }
                producer.commitTransaction();
                txns++;
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            double cpu = (os.getProcessCpuTime() - cpu0) / 1e9;
            return JSON.createObjectNode().put("records", records).put("transactions", txns).put("seconds", secs)
                    .put("records_per_sec", records / secs).put("transactions_per_sec", txns / secs)
                    .put("client_cpu_seconds", cpu).put("cpu_us_per_record", cpu * 1e6 / records)
                    .put("cpu_of", "the timed part (after initTransactions)");
        }
    }

    private static String clientsVersion() throws java.io.IOException {
        Properties p = new Properties();
        try (var in = KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            if (in != null) p.load(in);
        }
        return p.getProperty("version", "unknown");
    }

    private void closeAll() {
        producers.values().forEach(p -> p.close(Duration.ofSeconds(10)));
        producers.clear();
    }
}
