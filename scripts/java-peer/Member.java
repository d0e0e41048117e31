// One member of a consumer group for the rebalance measurement of the side-by-side harness
// (`kafkit-peers rebalance`, crates/kafkit-peers/src/rebalance.rs): the Java client's twin of
// `kafkit-peers member`. Peer.java hands this command over to this class:
//
//   Peer group_member TOPIC --brokers B --group G --assignor eager|cooperative
//
// It subscribes to TOPIC in group G with the Java client's defaults (classic group protocol,
// session.timeout.ms 45 s, heartbeat.interval.ms 3 s, enable.auto.commit every 5 s) but
// partition.assignment.strategy (eager: RangeAssignor; cooperative: CooperativeStickyAssignor,
// KIP-429) and auto.offset.reset=earliest, and polls until its stdin closes; then it closes the
// consumer (committing, leaving the group). Its lines on stdout:
//
//   s MS          it is about to subscribe (MS: wall-clock milliseconds since the epoch)
//   a MS P,P,...  its assignment changed to these partitions (may be empty)
//   r MS P,P,...  a poll returned records of these partitions
//
// Errors: one line on stderr, exit code 1.

import java.io.InputStream;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

final class Member {
    private Member() {}

    static int run(String[] args) {
        try {
            if (args.length < 2) throw new IllegalArgumentException("usage: Peer group_member TOPIC --brokers B --group G --assignor eager|cooperative");
            String topic = args[1], brokers = null, group = null, assignor = null;
            for (int i = 2; i + 1 < args.length; i += 2) {
                switch (args[i]) {
                    case "--brokers" -> brokers = args[i + 1];
                    case "--group" -> group = args[i + 1];
                    case "--assignor" -> assignor = args[i + 1];
                    default -> throw new IllegalArgumentException("unknown option " + args[i]);
                }
            }
            if (brokers == null || group == null || assignor == null) throw new IllegalArgumentException("--brokers, --group and --assignor are needed");
            String strategy = switch (assignor) {
                case "eager" -> RangeAssignor.class.getName();
                case "cooperative" -> CooperativeStickyAssignor.class.getName();
                default -> throw new IllegalArgumentException("unknown assignor " + assignor + ": eager or cooperative");
            };
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, strategy);
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            AtomicBoolean stop = new AtomicBoolean(false);
            Thread stdin = new Thread(() -> {
                try {
                    InputStream in = System.in;
                    while (in.read() >= 0) { }
                } catch (Exception e) {
                    // stdin gone: stop as at its end.
                }
                stop.set(true);
            });
            stdin.setDaemon(true);
            stdin.start();
            System.out.println("s " + System.currentTimeMillis());
            System.out.flush();
            TreeSet<Integer> assigned = new TreeSet<>();
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
                c.subscribe(List.of(topic));
                while (!stop.get()) {
                    ConsumerRecords<byte[], byte[]> records = c.poll(Duration.ofMillis(100));
                    long now = System.currentTimeMillis();
                    TreeSet<Integer> read = new TreeSet<>();
                    for (ConsumerRecord<byte[], byte[]> r : records) read.add(r.partition());
                    if (!read.isEmpty()) System.out.println("r " + now + " " + join(read));
                    TreeSet<Integer> nowAssigned = new TreeSet<>();
                    for (TopicPartition tp : c.assignment()) nowAssigned.add(tp.partition());
                    if (!nowAssigned.equals(assigned)) {
                        System.out.println("a " + now + " " + join(nowAssigned));
                        assigned = nowAssigned;
                    }
                    System.out.flush();
                }
            }
            return 0;
        } catch (Exception e) {
            System.err.println("group_member: " + e);
            return 1;
        }
    }

    private static String join(TreeSet<Integer> parts) {
        StringBuilder b = new StringBuilder();
        for (int p : parts) {
            if (b.length() > 0) b.append(',');
            b.append(p);
        }
        return b.toString();
    }
}
