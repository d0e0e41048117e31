// Prints Apache Kafka's protocol error codes as a TSV for kafkit-codegen, from the
// org.apache.kafka.common.protocol.Errors enum of the kafka-clients jar on the class path:
//
//   java -cp kafka-clients-4.4.0.jar scripts/kafka/ErrorCodes.java > error_codes.tsv
//
// Columns: code, name, retriable (the Java client's classification: the error's exception is
// a RetriableException), message (the exception's default message; tabs and newlines become
// spaces). Rows in code order.
import java.util.Arrays;
import java.util.Comparator;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.protocol.Errors;

public class ErrorCodes {
    public static void main(String[] args) {
        System.out.println("code\tname\tretriable\tmessage");
        Errors[] all = Errors.values();
        Arrays.sort(all, Comparator.comparingInt(Errors::code));
        for (Errors e : all) {
            boolean retriable = e.exception() instanceof RetriableException;
            String message = e == Errors.NONE ? "" : e.message();
            message = message == null ? "" : message.replaceAll("[\\t\\r\\n]+", " ").trim();
            System.out.println(e.code() + "\t" + e.name() + "\t" + retriable + "\t" + message);
        }
    }
}
