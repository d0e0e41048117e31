// Prints how many requests of each API an Apache Kafka broker has handled since it started,
// from its JMX metrics (a node started with `scripts/kafka.sh start DIR --jmx`; NODEi_JMX in
// DIR/cluster.env is the address):
//
//   java scripts/kafka/Requests.java 127.0.0.1:PORT
//
// For every line read from stdin (and once at the start), it prints the counts: one line per
// API, its name (Produce, Fetch, Metadata, ...), a tab and the count, then an empty line. So a
// harness keeps one JVM and one JMX connection for all its reads. The count is
// the `Count` of the broker's `kafka.network:type=RequestMetrics,name=RequestsPerSec` meters,
// summed over their `version` tags: every request the broker's request handlers took, from
// every listener. kafkit-peers compare reads it before and after each client's run. Needs
// nothing but the JDK (javax.management).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Map;
import java.util.TreeMap;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public class Requests {
    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: java Requests.java HOST:PORT");
            System.exit(2);
        }
        JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://" + args[0] + "/jmxrmi");
        try (JMXConnector c = JMXConnectorFactory.connect(url)) {
            MBeanServerConnection s = c.getMBeanServerConnection();
            ObjectName pattern = new ObjectName("kafka.network:type=RequestMetrics,name=RequestsPerSec,*");
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            do {
                Map<String, Long> counts = new TreeMap<>();
                for (ObjectName n : s.queryNames(pattern, null)) {
                    String api = n.getKeyProperty("request");
                    if (api == null) {
                        continue;
                    }
                    long count = ((Number) s.getAttribute(n, "Count")).longValue();
                    counts.merge(api, count, Long::sum);
                }
                StringBuilder out = new StringBuilder();
                for (Map.Entry<String, Long> e : counts.entrySet()) {
                    out.append(e.getKey()).append('\t').append(e.getValue()).append('\n');
                }
                System.out.println(out);
                System.out.flush();
            } while (in.readLine() != null);
        }
    }
}
