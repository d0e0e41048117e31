// The Java client's load tests for the side-by-side harness (`kafkit-peers compare`): the same
// options, records and JSON report as `kafkit-peers client kafkit|rdkafka|rskafka produce|consume`
// (crates/kafkit-peers/src/peers.rs). Peer.java hands these two commands over to this class:
//
//   Peer perf_produce TOPIC [OPTIONS]     (scripts/java-peer.sh perf perf_produce TOPIC ...)
//   Peer perf_consume TOPIC [OPTIONS]
//
// Options (defaults in brackets, as the Rust peers'):
//   --brokers B           bootstrap servers [127.0.0.1:9092] (--bootstrap too)
//   --records N           records to send or read [1000000]
//   --record-size S       value bytes per record (produce) [100]: 12 digits of the record's
//                         number, then text
//   --key-size K          key bytes per record (produce; 0: no keys) [16] (--keys too)
//   --payload-text PATH   the text values are cut from (produce): its first 4 MiB, raw or an lz4
//                         frame [$KAFKIT_PAYLOAD_TEXT, else the Debian package index when
//                         present, else random words]
//   --compression C       none|gzip|snappy|lz4|zstd (produce) [none]
//   --partitions P        partitions of the topic (it exists already) [6]
//   --rate R              records per second to send at (perf_produce; 0: at once) [0]
//   --timeout-ms T        how long the load may take before it fails [300000]
//   --java-defaults       produce with the Java client's defaults but for acks=all and the
//                         compression (consume: no effect, it always runs on the defaults)
//   --json                print the report as one JSON object (the last line of stdout)
//
// Record i has the very same key and value as in the Rust peers (a port of
// crates/kafkit-peers/src/payload.rs) and goes to partition i % P. The producer sends every
// record at once with a callback (send() without waiting), then flush()es; the consumer
// assign()s every partition, seeks to the beginning, and polls until it has N records, each
// sequence number 0..N-1 exactly once. Errors: one line on stderr, exit code 1.

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

final class Perf {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A bad option or a failed load: its message is the one line printed. */
    static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;

        Failure(String message) {
            super(message);
        }
    }

    private Perf() {}

    /** Runs `args` (args[0] is perf_produce or perf_consume); exit code 0, or 1 with one line on stderr. */
    static int run(String[] args) {
        try {
            Options o = Options.parse(args);
            ObjectNode report = args[0].equals("perf_produce") ? produce(o) : consume(o);
            System.out.flush();
            if (o.json) {
                System.out.println(report.toString());
            } else {
                System.out.println(text(report));
            }
            System.out.flush();
            return 0;
        } catch (Failure e) {
            System.err.println("java-peer " + args[0] + ": error: " + e.getMessage());
            return 1;
        } catch (Throwable e) {
            StringBuilder why = new StringBuilder();
            for (Throwable c = e; c != null; c = c.getCause()) {
                why.append(why.length() == 0 ? "" : ": caused by ").append(c);
            }
            System.err.println("java-peer " + args[0] + ": error: " + why);
            return 1;
        }
    }

    // ---- options ----

    static final class Options {
        String topic;
        String brokers = "127.0.0.1:9092";
        long records = 1_000_000;
        int recordSize = 100;
        int keySize = Payload.DEFAULT_KEY_SIZE;
        String payloadText;
        String compression = "none";
        int partitions = 6;
        /** Records per second to send at (perf_produce; 0: as fast as the client takes them). */
        long rate;
        /** Milliseconds the whole load may take. */
        long timeoutMs = 300_000;
        boolean javaDefaults;
        boolean json;

        static Options parse(String[] args) throws Failure {
            Options o = new Options();
            for (int i = 1; i < args.length; i++) {
                String a = args[i];
                if (!a.startsWith("--")) {
                    if (o.topic != null) throw new Failure("one topic only, got " + o.topic + " and " + a);
                    o.topic = a;
                    continue;
                }
                String name = a.substring(2), value = null;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    value = name.substring(eq + 1);
                    name = name.substring(0, eq);
                }
                switch (name) {
                    case "json" -> o.json = flag(name, value);
                    case "java-defaults" -> o.javaDefaults = flag(name, value);
                    default -> {
                        if (value == null) {
                            if (i + 1 >= args.length) throw new Failure("--" + name + " needs a value");
                            value = args[++i];
                        }
                        switch (name) {
                            case "topic" -> o.topic = value;
                            case "brokers", "bootstrap" -> o.brokers = value;
                            case "records" -> o.records = number(name, value, 0, Payload.MAX_RECORDS);
                            case "record-size" -> o.recordSize = (int) number(name, value, 0, 1 << 30);
                            case "key-size", "keys" -> o.keySize = (int) number(name, value, 0, 1 << 20);
                            case "payload-text" -> o.payloadText = value;
                            case "compression" -> o.compression = value;
                            case "partitions" -> o.partitions = (int) number(name, value, 1, 1 << 20);
                            case "rate" -> o.rate = number(name, value, 0, 1_000_000_000);
                            case "timeout-ms" -> o.timeoutMs = number(name, value, 1, Long.MAX_VALUE / 2_000_000);
                            default -> throw new Failure("unknown option --" + name);
                        }
                    }
                }
            }
            if (o.topic == null || o.topic.isEmpty()) throw new Failure("no topic: " + args[0] + " TOPIC [OPTIONS]");
            if (!List.of("none", "gzip", "snappy", "lz4", "zstd").contains(o.compression)) {
                throw new Failure("--compression " + o.compression + ": none, gzip, snappy, lz4 or zstd");
            }
            // Latencies and sequence numbers are kept in arrays of one slot per record.
            if (o.records > Integer.MAX_VALUE - 16) throw new Failure("at most " + (Integer.MAX_VALUE - 16) + " records");
            return o;
        }

        private static boolean flag(String name, String value) throws Failure {
            if (value == null || value.equals("true")) return true;
            if (value.equals("false")) return false;
            throw new Failure("--" + name + " takes no value (or =true|false), got " + value);
        }

        private static long number(String name, String value, long min, long max) throws Failure {
            long n;
            try {
                n = Long.parseLong(value.replace("_", ""));
            } catch (NumberFormatException e) {
                throw new Failure("--" + name + " " + value + ": not a whole number");
            }
            if (n < min || n > max) throw new Failure("--" + name + " " + n + ": from " + min + " to " + max);
            return n;
        }
    }

    // ---- the payload: crates/kafkit-peers/src/payload.rs, byte for byte ----

    static final class Payload {
        /** Digits of the sequence number at the start of every value. */
        static final int SEQ_DIGITS = 12;
        /** Key bytes per record unless told otherwise (0 is keyless). */
        static final int DEFAULT_KEY_SIZE = 16;
        /** Most bytes of text the values are cut from (4 MiB). */
        static final int TEXT_BYTES = 4 << 20;
        /** The most records of a load: sequence numbers have 12 digits. */
        static final long MAX_RECORDS = 1_000_000_000_000L;
        static final String DEBIAN_PACKAGES =
                "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4";
        static final String TEXT_ENV = "KAFKIT_PAYLOAD_TEXT";
        private static final byte[] LZ4_MAGIC = {0x04, 0x22, 0x4d, 0x18};
        private static final long OFFSET_SEED = 0x6b61_666b_6974_0001L;
        private static final long KEY_SEED = 0x6b61_666b_6974_0002L;
        private static final long WORDS_SEED = 0x6b61_666b_6974_0003L;
        private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);

        final byte[] text;
        final String source;
        final int valueSize, keySize;

        Payload(byte[] text, String source, int valueSize, int keySize) throws Failure {
            if (valueSize < SEQ_DIGITS) {
                throw new Failure("values of " + valueSize + " B are too small: each starts with a " + SEQ_DIGITS
                        + "-digit sequence number");
            }
            if (valueSize - SEQ_DIGITS > text.length) {
                throw new Failure("values of " + valueSize + " B need more text than the " + text.length + " B of "
                        + source);
            }
            this.text = text;
            this.source = source;
            this.valueSize = valueSize;
            this.keySize = keySize;
        }

        /** splitmix64's finalizer (Java's long arithmetic wraps as Rust's wrapping_* does; >>> is u64's >>). */
        static long mix(long z) {
            z += 0x9e37_79b9_7f4a_7c15L;
            z = (z ^ (z >>> 30)) * 0xbf58_476d_1ce4_e5b9L;
            z = (z ^ (z >>> 27)) * 0x94d0_49bb_1331_11ebL;
            return z ^ (z >>> 31);
        }

        /** Record i's value: 12 decimal digits of i, then text from an offset that depends on i alone. */
        byte[] value(long i) {
            byte[] v = new byte[valueSize];
            long n = i;
            for (int d = SEQ_DIGITS - 1; d >= 0; d--) {
                v[d] = (byte) ('0' + (int) (n % 10));
                n /= 10;
            }
            int len = valueSize - SEQ_DIGITS;
            int start = (int) Long.remainderUnsigned(mix(i ^ OFFSET_SEED), (long) text.length - len + 1);
            System.arraycopy(text, start, v, SEQ_DIGITS, len);
            return v;
        }

        /** Record i's key (null when keyless): lowercase hex of a hash of i, hashed again every 16 digits. */
        byte[] key(long i) {
            if (keySize == 0) return null;
            byte[] k = new byte[keySize];
            long h = i;
            for (int at = 0; at < keySize; at += 16) {
                h = mix(h ^ KEY_SEED);
                for (int j = 0; j < 16 && at + j < keySize; j++) {
                    k[at + j] = HEX[(int) ((h >>> (60 - 4 * j)) & 0xf)];
                }
            }
            return k;
        }

        /** The text of `explicit`, else of $KAFKIT_PAYLOAD_TEXT, else the Debian index when present, else words. */
        static Payload load(String explicit, int valueSize, int keySize) throws Failure {
            String env = System.getenv(TEXT_ENV);
            String path = explicit != null ? explicit : env != null && !env.isEmpty() ? env : null;
            if (path != null) {
                Object[] t = fromFile(path);
                return new Payload((byte[]) t[0], (String) t[1], valueSize, keySize);
            }
            if (Files.exists(Path.of(DEBIAN_PACKAGES))) {
                byte[] t = (byte[]) fromFile(DEBIAN_PACKAGES)[0];
                String source = "Debian package index (" + DEBIAN_PACKAGES + "), first " + (t.length >> 10) + " KiB";
                return new Payload(t, source, valueSize, keySize);
            }
            String source = "random words (Zipf over 256, fixed seed), " + (TEXT_BYTES >> 10) + " KiB";
            return new Payload(words(TEXT_BYTES), source, valueSize, keySize);
        }

        /** The first 4 MiB of the file: decoded when it is an lz4 frame, as it is otherwise; {bytes, source}. */
        private static Object[] fromFile(String path) throws Failure {
            try {
                byte[] magic = new byte[4];
                int n;
                try (InputStream f = new FileInputStream(path)) {
                    n = f.readNBytes(magic, 0, 4);
                }
                boolean framed = n == 4 && Arrays.equals(magic, LZ4_MAGIC);
                byte[] bytes;
                try (InputStream f = new java.io.BufferedInputStream(new FileInputStream(path), 1 << 16)) {
                    bytes = framed ? Lz4.decode(f, TEXT_BYTES) : f.readNBytes(TEXT_BYTES);
                }
                if (bytes.length == 0) throw new Failure("payload text " + path + ": the file is empty");
                String source = path + (framed ? " (lz4 frame)" : "") + ", first " + (bytes.length >> 10) + " KiB";
                return new Object[] {bytes, source};
            } catch (IOException e) {
                throw new Failure("payload text " + path + ": " + e);
            }
        }

        /** `len` bytes of words from the fixed list, the word of rank r with weight 1/(r+1), lines of ~60. */
        static byte[] words(int len) {
            String[] words = WORDS.trim().split("\\s+");
            long[] cum = new long[words.length];
            long total = 0;
            for (int r = 0; r < words.length; r++) {
                total += 1_000_000_000L / (r + 1);
                cum[r] = total;
            }
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(len + 16);
            long state = WORDS_SEED;
            int line = 0;
            while (out.size() < len) {
                state = mix(state);
                long pick = Long.remainderUnsigned(state, total);
                // partition_point(|&c| c <= pick): the first rank whose cumulative weight passes pick.
                int lo = 0, hi = cum.length;
                while (lo < hi) {
                    int mid = (lo + hi) >>> 1;
                    if (cum[mid] <= pick) lo = mid + 1;
                    else hi = mid;
                }
                byte[] w = words[lo].getBytes(StandardCharsets.US_ASCII);
                out.write(w, 0, w.length);
                line += w.length + 1;
                if (line >= 60) {
                    out.write('\n');
                    line = 0;
                } else {
                    out.write(' ');
                }
            }
            byte[] all = out.toByteArray();
            return Arrays.copyOf(all, Math.min(all.length, Math.max(len, 1)));
        }

        /** payload.rs's WORDS, the most frequent first. */
        private static final String WORDS = ""
            + "the of and to a in is for on that with by this be it as are from or at an not which "
            + "package version depends description size architecture maintainer filename section "
            + "priority optional amd64 all main libc6 lib utils data files support common tools "
            + "library python3 development dev doc server client program module system interface based "
            + "provides user used can you will has have if use into also other more its they when only "
            + "such these debian org perl gnu linux kernel shared runtime headers static binary source "
            + "install config network file text image audio video graphics desktop window manager font "
            + "fonts terminal editor command line shell script scripts languages language english "
            + "translation documentation html manual pages examples test tests testing build packages "
            + "dependency recommends suggests breaks replaces conflicts homepage https www github com "
            + "tag md5sum sha256 installed multi arch same foreign allowed essential required standard "
            + "extra java ruby rust golang haskell ocaml lisp scheme emacs vim qt gtk gnome kde xfce "
            + "x11 wayland protocol format formats parser encoding unicode utf8 compression archive "
            + "storage database sql sqlite postgresql mysql cache memory thread threads process event "
            + "events signal time date clock timer queue stream streams message messages socket http "
            + "json xml yaml plugin plugins extension extensions driver drivers device devices "
            + "hardware usb bluetooth wireless security crypto ssl tls key keys certificate "
            + "authentication password login session account broker topic partition offset consumer "
            + "producer record records batch leader replica cluster group commit transaction "
            + "idempotent retry timeout error errors warning debug release stable update upgrade "
            + "mirror repository snapshot vendor ";
    }

    /**
     * Decodes lz4 frames (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md), linked
     * blocks too (lz4-java's LZ4FrameInputStream takes independent blocks only, and the Debian
     * index has linked ones): every block is decoded into one array, so a match may reach back
     * into the blocks before it. Checksums are skipped, not checked.
     */
    static final class Lz4 {
        private static final int MAGIC = 0x184D2204;

        /** The first `limit` bytes the frames in `in` hold (fewer when they hold fewer). */
        static byte[] decode(InputStream in, int limit) throws IOException, Failure {
            byte[] out = new byte[limit + (4 << 20)];
            int pos = 0;
            while (pos < limit) {
                byte[] m = in.readNBytes(4);
                if (m.length == 0) break;
                if (m.length < 4) throw new Failure("lz4: a truncated frame header");
                int magic = le32(m, 0);
                if ((magic & 0xFFFFFFF0) == 0x184D2A50) {
                    // A skippable frame: its size, then as many bytes.
                    long size = le32(read(in, 4), 0) & 0xFFFFFFFFL;
                    if (in.skip(size) != size) throw new Failure("lz4: a truncated skippable frame");
                    continue;
                }
                if (magic != MAGIC) throw new Failure(String.format("lz4: not a frame (magic %08x)", magic));
                int flg = in.read(), bd = in.read();
                if (flg < 0 || bd < 0 || (flg >>> 6) != 1) throw new Failure("lz4: a frame descriptor of an unknown version");
                boolean blockSums = (flg & 0x10) != 0, contentSize = (flg & 0x08) != 0;
                boolean contentSum = (flg & 0x04) != 0, dictId = (flg & 0x01) != 0;
                read(in, (contentSize ? 8 : 0) + (dictId ? 4 : 0) + 1); // and the header checksum
                while (pos < limit) {
                    int size = le32(read(in, 4), 0);
                    if (size == 0) {
                        if (contentSum) read(in, 4);
                        break;
                    }
                    boolean stored = (size & 0x80000000) != 0;
                    size &= 0x7FFFFFFF;
                    if (size > 4 << 20) throw new Failure("lz4: a block of " + size + " B (4 MiB at most)");
                    byte[] block = read(in, size);
                    if (out.length - pos < (4 << 20)) out = Arrays.copyOf(out, out.length + (8 << 20));
                    if (stored) {
                        System.arraycopy(block, 0, out, pos, size);
                        pos += size;
                    } else {
                        pos = block(block, out, pos);
                    }
                    if (blockSums) read(in, 4);
                }
            }
            return Arrays.copyOf(out, Math.min(pos, limit));
        }

        /** Decodes one compressed block into out at pos (out has room for 4 MiB); the end of it. */
        private static int block(byte[] src, byte[] out, int pos) throws Failure {
            int sp = 0, end = pos + (4 << 20);
            try {
                while (sp < src.length) {
                    int token = src[sp++] & 0xff;
                    int lit = token >>> 4;
                    if (lit == 15) {
                        int b;
                        do {
                            b = src[sp++] & 0xff;
                            lit += b;
                        } while (b == 255);
                    }
                    if (pos + lit > end) throw new Failure("lz4: a block decodes to more than 4 MiB");
                    System.arraycopy(src, sp, out, pos, lit);
                    sp += lit;
                    pos += lit;
                    if (sp >= src.length) break; // the last sequence: literals only
                    int off = (src[sp] & 0xff) | (src[sp + 1] & 0xff) << 8;
                    sp += 2;
                    if (off == 0 || off > pos) throw new Failure("lz4: a match before the start of the data");
                    int len = token & 15;
                    if (len == 15) {
                        int b;
                        do {
                            b = src[sp++] & 0xff;
                            len += b;
                        } while (b == 255);
                    }
                    len += 4;
                    if (pos + len > end) throw new Failure("lz4: a block decodes to more than 4 MiB");
                    // Byte by byte: a match may overlap what it writes.
                    for (int k = 0; k < len; k++) out[pos + k] = out[pos - off + k];
                    pos += len;
                }
            } catch (ArrayIndexOutOfBoundsException e) {
                throw new Failure("lz4: a truncated block");
            }
            return pos;
        }

        private static byte[] read(InputStream in, int n) throws IOException, Failure {
            byte[] b = in.readNBytes(n);
            if (b.length != n) throw new Failure("lz4: the frame ends early");
            return b;
        }

        private static int le32(byte[] b, int at) {
            return (b[at] & 0xff) | (b[at + 1] & 0xff) << 8 | (b[at + 2] & 0xff) << 16 | (b[at + 3] & 0xff) << 24;
        }
    }

    // ---- produce ----

    /** Linger of the tuned producer (ms), as the Rust peers' (peers.rs LINGER). */
    static final int LINGER_MS = 5;
    /** Batch bytes of the tuned producer (1 MiB), as the Rust peers' (peers.rs BATCH_BYTES). */
    static final int BATCH_BYTES = 1 << 20;
    /** Records the other peers hold at most (peers.rs QUEUED); Java bounds bytes instead. */
    static final long QUEUED = 100_000;

    /** The producer's settings: tuned as the Rust peers are, or Java's defaults but acks and compression. */
    static Properties producerProps(Options o) {
        Properties p = new Properties();
        p.put("bootstrap.servers", o.brokers);
        p.put("client.id", "kafkit-java-peer-perf");
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("acks", "all");
        p.put("compression.type", o.compression);
        if (!o.javaDefaults) {
            // Java's default too (since 3.0), said outright.
            p.put("enable.idempotence", "true");
            p.put("linger.ms", Integer.toString(LINGER_MS));
            p.put("batch.size", Integer.toString(BATCH_BYTES));
            // Room for 100,000 records' key and value bytes (the other peers' bound), and for
            // at least 64 batches of 1 MiB (default 32 MiB); send() blocks when it is full.
            long buffer = Math.max(64L << 20, QUEUED * (o.recordSize + o.keySize));
            p.put("buffer.memory", Long.toString(buffer));
            // A full 1 MiB batch and its request's headers (default 1 MiB, which would cut
            // batches short), as rdkafka's message.max.bytes in peers.rs.
            p.put("max.request.size", Integer.toString(BATCH_BYTES + 65536));
        }
        return p;
    }

    /** The settings a producer runs with, as the client resolved them, defaults included. */
    static ObjectNode producerConfig(Options o, Properties p) {
        ProducerConfig c = new ProducerConfig(p);
        ObjectNode out = JSON.createObjectNode();
        out.put("client", "java");
        out.put("kafka_clients", clientsVersion());
        out.put("settings", o.javaDefaults
                ? "Java defaults but acks=all and compression.type"
                : "tuned as the Rust peers: linger 5 ms, 1 MiB batches, acks=all, idempotent");
        for (String k : List.of("acks", "enable.idempotence", "linger.ms", "batch.size", "compression.type",
                "buffer.memory", "max.request.size", "max.in.flight.requests.per.connection", "max.block.ms",
                "delivery.timeout.ms", "request.timeout.ms", "send.buffer.bytes")) {
            out.set(k, JSON.valueToTree(c.values().get(k)));
        }
        // The client resolves acks=all to -1.
        if (out.path("acks").asText().equals("-1")) out.put("acks", "all");
        out.put("partitioning", "record i to partition i % " + o.partitions + " (explicit)");
        out.put("sending", "send() with a callback per record, flush() at the end");
        out.set("jvm", jvm());
        return out;
    }

    static ObjectNode produce(Options o) throws Failure {
        Payload payload = Payload.load(o.payloadText, o.recordSize, o.keySize);
        Properties props = producerProps(o);
        ObjectNode config = producerConfig(o, props);
        int n = (int) o.records;
        // Microseconds from each record's send() to its acknowledgement (written by the
        // producer's I/O thread; flush() returns after every callback ran).
        int[] lat = new int[n];
        AtomicLong acked = new AtomicLong(), failed = new AtomicLong();
        AtomicReference<Exception> firstError = new AtomicReference<>();
        long cpu0, t0, t1;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            cpu0 = processCpuNanos();
            t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                if (o.rate > 0) {
                    // Record i is due i / rate seconds after the start (kafkit_cli::report::Pace).
                    long wait = t0 + i * 1_000_000_000L / o.rate - System.nanoTime();
                    if (wait > 0) LockSupport.parkNanos(wait);
                }
                byte[] key = payload.key(i), value = payload.value(i);
                int partition = i % o.partitions;
                final int at = i;
                final long sent = System.nanoTime();
                producer.send(new ProducerRecord<>(o.topic, partition, key, value), (md, e) -> {
                    if (e != null) {
                        failed.incrementAndGet();
                        firstError.compareAndSet(null, e);
                    } else {
                        lat[at] = (int) Math.min(Integer.MAX_VALUE, (System.nanoTime() - sent) / 1000);
                        acked.incrementAndGet();
                    }
                });
                if ((i & 1023) == 0 && System.nanoTime() - t0 > o.timeoutMs * 1_000_000) {
                    throw new Failure("only " + i + " of " + n + " records sent within " + o.timeoutMs + " ms");
                }
            }
            producer.flush();
            t1 = System.nanoTime();
            if (failed.get() > 0) {
                throw new Failure(failed.get() + " of " + n + " records not acknowledged, the first: "
                        + firstError.get());
            }
            if (acked.get() != n) throw new Failure("only " + acked.get() + " of " + n + " records acknowledged");
            long bytes = (long) n * (o.recordSize + o.keySize);
            // Before close(), as the Rust peers report before closing theirs.
            return report("produce", n, bytes, t1 - t0, lat, processCpuNanos() - cpu0, config);
        }
    }

    // ---- consume ----

    static ObjectNode consume(Options o) throws Failure {
        Properties p = new Properties();
        p.put("bootstrap.servers", o.brokers);
        p.put("client.id", "kafkit-java-peer-perf");
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        // No group (group.id unset: assign() and seekToBeginning()), so nothing to commit.
        p.put("enable.auto.commit", "false");
        ConsumerConfig c = new ConsumerConfig(p);
        ObjectNode config = JSON.createObjectNode();
        config.put("client", "java");
        config.put("kafka_clients", clientsVersion());
        config.put("settings", "Java defaults but enable.auto.commit=false, no group"
                + (o.javaDefaults ? " (--java-defaults changes nothing here)" : ""));
        for (String k : List.of("fetch.min.bytes", "fetch.max.wait.ms", "fetch.max.bytes", "max.partition.fetch.bytes",
                "max.poll.records", "check.crcs", "receive.buffer.bytes", "isolation.level")) {
            config.set(k, JSON.valueToTree(c.values().get(k)));
        }
        config.put("reading", "assign() of partitions 0.." + (o.partitions - 1) + ", seekToBeginning(), poll(100 ms)");
        config.set("jvm", jvm());
        int n = (int) o.records;
        BitSet seen = new BitSet(n);
        // Microseconds from each record's timestamp to its receipt, the clock read for the
        // first record of every poll and then every 64 records (as peers.rs's Receipts).
        int[] lat = new int[n];
        long got = 0, bytes = 0;
        long cpu0, t0, t1;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < o.partitions; i++) tps.add(new TopicPartition(o.topic, i));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            cpu0 = processCpuNanos();
            t0 = System.nanoTime();
            while (got < n) {
                if (System.nanoTime() - t0 > o.timeoutMs * 1_000_000) {
                    throw new Failure("only " + got + " of " + n + " records read within " + o.timeoutMs + " ms");
                }
                ConsumerRecords<byte[], byte[]> rs = consumer.poll(Duration.ofMillis(100));
                long nowUs = 0;
                int left = 0;
                for (ConsumerRecord<byte[], byte[]> r : rs) {
                    long seq = sequence(r);
                    if (seq >= n) {
                        throw new Failure("record " + seq + " (partition " + r.partition() + ", offset " + r.offset()
                                + ") is beyond the " + n + " records asked for");
                    }
                    if (seen.get((int) seq)) {
                        throw new Failure("record " + seq + " read twice (again at partition " + r.partition()
                                + ", offset " + r.offset() + ")");
                    }
                    seen.set((int) seq);
                    if (left == 0) {
                        Instant now = Instant.now();
                        nowUs = now.getEpochSecond() * 1_000_000 + now.getNano() / 1000;
                        left = 64;
                    }
                    left--;
                    lat[(int) got] = (int) Math.max(0, Math.min(Integer.MAX_VALUE, nowUs - r.timestamp() * 1000));
                    got++;
                    bytes += r.value().length + (r.key() == null ? 0 : r.key().length);
                }
            }
            t1 = System.nanoTime();
            // n records, none twice, none beyond n: every sequence number 0..n-1 once.
            if (seen.cardinality() != n) throw new Failure(seen.cardinality() + " distinct records of " + n);
            return report("consume", n, bytes, t1 - t0, lat, processCpuNanos() - cpu0, config);
        }
    }

    /** The record's sequence number: the first 12 bytes of its value, decimal digits. */
    private static long sequence(ConsumerRecord<byte[], byte[]> r) throws Failure {
        byte[] v = r.value();
        String where = " (partition " + r.partition() + ", offset " + r.offset() + ")";
        if (v == null || v.length < Payload.SEQ_DIGITS) {
            throw new Failure("a record without a " + Payload.SEQ_DIGITS + "-digit sequence number" + where);
        }
        long seq = 0;
        for (int i = 0; i < Payload.SEQ_DIGITS; i++) {
            if (v[i] < '0' || v[i] > '9') {
                throw new Failure("a record whose value does not start with " + Payload.SEQ_DIGITS + " digits" + where);
            }
            seq = seq * 10 + (v[i] - '0');
        }
        return seq;
    }

    // ---- the report (the fields of kafkit_cli::report::Report::print) ----

    static ObjectNode report(String what, long records, long bytes, long nanos, int[] latUs, long timedCpuNanos,
            ObjectNode config) {
        double secs = Math.max(nanos / 1e9, 1e-9);
        double cpu = processCpuNanos() / 1e9;
        Arrays.sort(latUs);
        ObjectNode lat = JSON.createObjectNode();
        lat.put("of", what.equals("produce") ? "send to acknowledgement" : "record timestamp to receipt");
        lat.put("p50_ms", percentile(latUs, 0.50));
        lat.put("p99_ms", percentile(latUs, 0.99));
        lat.put("p999_ms", percentile(latUs, 0.999));
        ObjectNode o = JSON.createObjectNode();
        o.put("workload", what);
        o.put("records", records);
        o.put("bytes", bytes);
        o.put("seconds", secs);
        o.put("records_per_sec", records / secs);
        o.put("mb_per_sec", bytes / secs / 1e6);
        o.set("latency", lat);
        o.put("client_cpu_seconds", cpu);
        o.put("cpu_us_per_record", cpu * 1e6 / Math.max(records, 1));
        o.put("cpu_of", "the whole process (every JVM thread: JIT, GC and the client's, start-up included)");
        o.put("timed_cpu_seconds", timedCpuNanos / 1e9);
        o.put("peak_rss_bytes", peakRssBytes());
        o.set("config", config);
        return o;
    }

    /** kafkit_cli::report::percentiles: the ceil(n*q)-th smallest, in ms (0 when none). */
    static double percentile(int[] sortedUs, double q) {
        if (sortedUs.length == 0) return 0.0;
        int i = (int) Math.min(Math.max((long) Math.ceil(sortedUs.length * q), 1), sortedUs.length) - 1;
        return sortedUs[i] / 1000.0;
    }

    /** The report as one line of text (without --json), as Report::print's. */
    static String text(ObjectNode r) {
        ObjectNode lat = (ObjectNode) r.get("latency");
        return String.format("%s: %d records, %.0f records/s, %.1f MB/s, latency (%s) p50 %.2f ms, p99 %.2f ms, "
                        + "p99.9 %.2f ms, client CPU %.2f s (%.2f us/record), peak RSS %.1f MiB; config %s",
                r.get("workload").asText(), r.get("records").asLong(), r.get("records_per_sec").asDouble(),
                r.get("mb_per_sec").asDouble(), lat.get("of").asText(), lat.get("p50_ms").asDouble(),
                lat.get("p99_ms").asDouble(), lat.get("p999_ms").asDouble(), r.get("client_cpu_seconds").asDouble(),
                r.get("cpu_us_per_record").asDouble(), r.get("peak_rss_bytes").asLong() / 1048576.0, r.get("config"));
    }

    /** CPU (user + system, ns) of the whole JVM process so far: every thread, JIT and GC included. */
    static long processCpuNanos() {
        var os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
            long t = sun.getProcessCpuTime();
            if (t >= 0) return t;
        }
        // /proc/self/stat fields 14 and 15 (utime, stime) in clock ticks (100 a second on Linux).
        try {
            String stat = Files.readString(Path.of("/proc/self/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * TimeUnit.SECONDS.toNanos(1) / 100;
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    /** Peak resident memory of the process (VmHWM of /proc/self/status, KiB there), bytes; 0 if unknown. */
    static long peakRssBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.split("\\s+")[1]) * 1024;
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }

    /** The JVM: version, flags, collectors, heap bound. */
    static ObjectNode jvm() {
        ObjectNode j = JSON.createObjectNode();
        var rt = ManagementFactory.getRuntimeMXBean();
        j.put("version", rt.getVmName() + " " + rt.getVmVersion());
        j.put("flags", String.join(" ", rt.getInputArguments().stream().filter(a -> !a.startsWith("-XX:SharedArchiveFile")).toList()));
        List<String> gcs = new ArrayList<>();
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) gcs.add(gc.getName());
        j.put("gc", String.join(", ", gcs));
        j.put("max_heap_bytes", Runtime.getRuntime().maxMemory());
        j.put("cpus", Runtime.getRuntime().availableProcessors());
        return j;
    }

    /** kafka-clients' version, from the properties file in its jar. */
    static String clientsVersion() {
        Properties p = new Properties();
        try (var in = KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            if (in != null) p.load(in);
        } catch (IOException e) {
            return "unknown";
        }
        return p.getProperty("version", "unknown");
    }
}
