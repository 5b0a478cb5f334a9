// poolgate's end-to-end Java client for tests/e2e_routing.rs: Apache Kafka's own producer and
// consumer (kafka-clients, from the cluster's jars), reporting every acknowledged record, so
// that a test can check that nothing acknowledged is lost. The test compiles it once with javac
// against the cluster's jars. Every output line is one JSON object.
//
//   java -cp LIBS/*:DIR RoutingClient produce CONFIG BOOTSTRAP TOPIC PARTITIONS PREFIX COUNT RATE
//       Sends PREFIX-i / "PREFIX message i" to partition i % PARTITIONS, RATE records a second,
//       COUNT records (0: until standard input closes); prints
//       {"ack":KEY,"value":V,"partition":P,"offset":O} or {"failed":KEY,"error":E} per record,
//       and {"done":true,"acked":N,"failed":M} last.
//   java ... RoutingClient consume CONFIG BOOTSTRAP TOPIC GROUP COUNT TIMEOUT_MS
//       Reads in group GROUP from the earliest offsets until it has read COUNT distinct keys
//       (a record read again after a rebalance counts once); prints
//       {"record":KEY,"value":V,"partition":P,"offset":O} each, then
//       {"done":true,"consumed":N,"distinct":D}.
//   java ... RoutingClient dump CONFIG BOOTSTRAP TOPIC TIMEOUT_MS
//       Reads every partition of TOPIC from the beginning to the end offsets it had at the start,
//       without a group; prints each record as consume does, then
//       {"done":true,"consumed":N,"complete":true|false}.
//
// CONFIG is a properties file (SASL, TLS), or "-" for none (straight to the brokers).

import java.io.FileInputStream;
import java.io.InputStream;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class RoutingClient {
    private RoutingClient() {}

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : String.valueOf(s).toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    static synchronized void emit(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static Properties config(String file, String bootstrap) throws Exception {
        Properties p = new Properties();
        if (!file.equals("-")) {
            try (InputStream in = new FileInputStream(file)) {
                p.load(in);
            }
        }
        p.put("bootstrap.servers", bootstrap);
        return p;
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "produce" -> produce(args);
            case "consume" -> consume(args);
            case "dump" -> dump(args);
            default -> throw new IllegalArgumentException("unknown command " + args[0]);
        }
    }

    static void produce(String[] args) throws Exception {
        Properties p = config(args[1], args[2]);
        String topic = args[3];
        int partitions = Integer.parseInt(args[4]);
        String prefix = args[5];
        long count = Long.parseLong(args[6]);
        int rate = Integer.parseInt(args[7]);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("acks", "all");
        p.put("enable.idempotence", "true");
        p.put("linger.ms", "5");
        p.putIfAbsent("client.id", "poolgate-e2e-routing-" + prefix);
        // Standard input closing (the test is done with the producer) stops an unbounded run.
        Thread stdin = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // Lines are not commands: only the end counts.
                }
            } catch (Exception e) {
                // Ends the run as a closed input does.
            }
        });
        stdin.setDaemon(true);
        stdin.start();
        AtomicLong acked = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        long pause = rate > 0 ? 1_000_000_000L / rate : 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            long next = System.nanoTime();
            for (long i = 0; count == 0 ? stdin.isAlive() : i < count; i++) {
                String key = prefix + "-" + i;
                String value = prefix + " message " + i;
                ProducerRecord<String, String> record = new ProducerRecord<>(
                    topic, (int) (i % partitions), key, value);
                producer.send(record, (meta, error) -> {
                    if (error == null) {
                        acked.incrementAndGet();
                        emit("{\"ack\":" + quote(key) + ",\"value\":" + quote(value)
                            + ",\"partition\":" + meta.partition() + ",\"offset\":" + meta.offset() + "}");
                    } else {
                        failed.incrementAndGet();
                        emit("{\"failed\":" + quote(key) + ",\"error\":" + quote(error.toString()) + "}");
                    }
                });
                if (pause > 0) {
                    // The client paces itself; the test waits on what it reports.
                    next += pause;
                    long wait = next - System.nanoTime();
                    if (wait > 0) {
                        Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                    }
                }
            }
            producer.flush();
        }
        emit("{\"done\":true,\"acked\":" + acked.get() + ",\"failed\":" + failed.get() + "}");
    }

    static void consume(String[] args) throws Exception {
        Properties p = config(args[1], args[2]);
        String topic = args[3];
        String group = args[4];
        long count = Long.parseLong(args[5]);
        long deadline = System.currentTimeMillis() + Long.parseLong(args[6]);
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        p.put("group.id", group);
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        p.putIfAbsent("client.id", "poolgate-e2e-routing-" + group);
        long consumed = 0;
        Set<String> keys = new HashSet<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(List.of(topic));
            while (keys.size() < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    consumed++;
                    keys.add(r.key());
                    record(r);
                }
            }
            if (consumed > 0) {
                consumer.commitSync();
            }
        }
        emit("{\"done\":true,\"consumed\":" + consumed + ",\"distinct\":" + keys.size() + "}");
    }

    static void record(ConsumerRecord<String, String> r) {
        emit("{\"record\":" + quote(r.key()) + ",\"value\":" + quote(r.value())
            + ",\"partition\":" + r.partition() + ",\"offset\":" + r.offset() + "}");
    }

    static void dump(String[] args) throws Exception {
        Properties p = config(args[1], args[2]);
        String topic = args[3];
        long deadline = System.currentTimeMillis() + Long.parseLong(args[4]);
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        p.put("enable.auto.commit", "false");
        p.putIfAbsent("client.id", "poolgate-e2e-routing-dump");
        long consumed = 0;
        boolean complete = false;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> parts = consumer.partitionsFor(topic, Duration.ofMillis(Math.max(1, deadline - System.currentTimeMillis())))
                .stream().map(i -> new TopicPartition(topic, i.partition())).toList();
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Map<TopicPartition, Long> ends = consumer.endOffsets(parts);
            while (System.currentTimeMillis() < deadline) {
                complete = parts.stream().allMatch(tp -> consumer.position(tp) >= ends.get(tp));
                if (complete) {
                    break;
                }
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    consumed++;
                    record(r);
                }
            }
        }
        emit("{\"done\":true,\"consumed\":" + consumed + ",\"complete\":" + complete + "}");
    }
}
