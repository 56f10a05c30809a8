/*
 * Kafka 4.1.1's own `kafka-reassign-partitions --generate`, run offline on a synthetic cluster.
 *
 * Why this exists: bench/bench_generate_at_scale.py compares our planner with Kafka's proposal on
 * a 200-broker / 100k-partition cluster, which cannot be started here. `--generate` needs the
 * cluster for exactly two reads (verified with javap on kafka-tools-4.1.1.jar):
 *   Admin.describeTopics(topics)  -> current replica lists   (getReplicaAssignmentForTopics)
 *   Admin.describeCluster()       -> broker ids and racks    (getBrokerMetadata)
 * everything else is pure code. So we call Kafka's public
 *   org.apache.kafka.tools.reassign.ReassignPartitionsCommand.generateAssignment(
 *       Admin, String topicsToMoveJson, String brokerList, Boolean enableRackAwareness)
 * -- the very method `--generate` calls from handleAction, with the file's text, the --broker-list
 * value and rack awareness on (the CLI default) -- against an in-memory Admin (a dynamic proxy)
 * that answers those two reads from a file and refuses every other call. The placement itself is
 * Kafka's private calculateAssignment -> StripedReplicaPlacer.place (org.apache.kafka.metadata.
 * placement, kafka-metadata jar); in 4.1 there is no AdminUtils.assignReplicasToBrokers any more.
 *
 * Usage: java -cp "kafka-tools libs/*:classes" KafkaGenerateOffline DIR RUNS WARM_REPEATS
 *   DIR/topics-to-move.json  the --topics-to-move-json-file content (read as text, like the CLI)
 *   DIR/broker-list.txt      the --broker-list value
 *   DIR/cluster.txt          "broker ID RACK" lines (what describeCluster returns) and
 *                            "partition TOPIC PARTITION R1,R2,R3" lines (what describeTopics returns)
 * Writes DIR/generate-output-N.txt (exactly what --generate prints, run N = 1..RUNS) and prints one
 * JSON line of timings on stdout.
 *
 *        java ... KafkaGenerateOffline --layout DIR SEED
 * lays every topic of DIR/cluster.txt out afresh over all its brokers the way the KRaft controller
 * places a new topic (one StripedReplicaPlacer, one Random for all CreateTopics, here seeded so the
 * layout is reproducible) and writes DIR/layout.txt ("TOPIC PARTITION R1,R2,R3" lines). The bench
 * uses it to check how much its findings depend on the synthetic layout.
 */

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeTopicsResult;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.DirectoryId;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.internals.KafkaFutureImpl;
import org.apache.kafka.metadata.placement.ClusterDescriber;
import org.apache.kafka.metadata.placement.PartitionAssignment;
import org.apache.kafka.metadata.placement.PlacementSpec;
import org.apache.kafka.metadata.placement.StripedReplicaPlacer;
import org.apache.kafka.metadata.placement.TopicAssignment;
import org.apache.kafka.metadata.placement.UsableBroker;
import org.apache.kafka.tools.reassign.ReassignPartitionsCommand;

public final class KafkaGenerateOffline {

    private KafkaGenerateOffline() {}

    /** The cluster as the two Admin reads would return it. */
    private static final class Cluster {
        final List<Node> nodes = new ArrayList<>();
        final Map<String, List<TopicPartitionInfo>> topics = new LinkedHashMap<>();
    }

    private static Cluster readCluster(Path file) throws Exception {
        Cluster c = new Cluster();
        Map<Integer, Node> byId = new HashMap<>();
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            while ((line = r.readLine()) != null) {
                String[] f = line.trim().split(" ");
                if (f[0].equals("broker")) {
                    int id = Integer.parseInt(f[1]);
                    Node n = new Node(id, "broker-" + id + ".example", 9092, f.length > 2 ? f[2] : null);
                    c.nodes.add(n);
                    byId.put(id, n);
                } else if (f[0].equals("partition")) {
                    List<Node> replicas = new ArrayList<>();
                    for (String b : f[3].split(",")) {
                        int id = Integer.parseInt(b);
                        replicas.add(byId.computeIfAbsent(id, k -> new Node(k, "broker-" + k + ".example", 9092)));
                    }
                    TopicPartitionInfo info =
                            new TopicPartitionInfo(Integer.parseInt(f[2]), replicas.get(0), replicas, replicas);
                    c.topics.computeIfAbsent(f[1], k -> new ArrayList<>()).add(info);
                }
            }
        }
        return c;
    }

    /**
     * An Admin that answers describeTopics / describeCluster from memory and throws on anything
     * else, so a successful run proves --generate needed nothing more from the cluster.
     */
    private static Admin offlineAdmin(Cluster c, Map<String, AtomicInteger> calls) throws Exception {
        Constructor<DescribeClusterResult> dcr = DescribeClusterResult.class.getDeclaredConstructor(
                KafkaFuture.class, KafkaFuture.class, KafkaFuture.class, KafkaFuture.class);
        dcr.setAccessible(true); // package-private in kafka-clients; fine for classpath code
        InvocationHandler h = (proxy, method, args) -> {
            String name = method.getName();
            switch (name) {
                case "describeCluster":
                    calls.computeIfAbsent(name, k -> new AtomicInteger()).incrementAndGet();
                    return dcr.newInstance(
                            KafkaFuture.completedFuture((Collection<Node>) new ArrayList<>(c.nodes)),
                            KafkaFuture.completedFuture(c.nodes.get(0)),
                            KafkaFuture.completedFuture("offline-synthetic"),
                            KafkaFuture.completedFuture((Set<?>) null));
                case "describeTopics": {
                    calls.computeIfAbsent(name, k -> new AtomicInteger()).incrementAndGet();
                    Collection<String> names;
                    if (args[0] instanceof TopicCollection.TopicNameCollection) {
                        names = ((TopicCollection.TopicNameCollection) args[0]).topicNames();
                    } else if (args[0] instanceof Collection) {
                        @SuppressWarnings("unchecked")
                        Collection<String> given = (Collection<String>) args[0];
                        names = given;
                    } else {
                        throw new UnsupportedOperationException("describeTopics by id is not offered offline");
                    }
                    Map<String, KafkaFuture<TopicDescription>> out = new HashMap<>();
                    for (String t : names) {
                        List<TopicPartitionInfo> parts = c.topics.get(t);
                        KafkaFutureImpl<TopicDescription> fut = new KafkaFutureImpl<>();
                        if (parts == null) {
                            fut.completeExceptionally(new UnknownTopicOrPartitionException(t));
                        } else {
                            fut.complete(new TopicDescription(t, false, parts));
                        }
                        out.put(t, fut);
                    }
                    return new DescribeTopicsResult(null, out) {};
                }
                case "close":
                    return null;
                case "toString":
                    return "offline Admin";
                case "hashCode":
                    return System.identityHashCode(proxy);
                case "equals":
                    return proxy == args[0];
                default:
                    throw new UnsupportedOperationException("offline Admin does not offer " + method);
            }
        };
        return (Admin) Proxy.newProxyInstance(Admin.class.getClassLoader(), new Class<?>[] {Admin.class}, h);
    }

    private static Method declared(String name, Class<?>... types) throws Exception {
        Method m = ReassignPartitionsCommand.class.getDeclaredMethod(name, types);
        m.setAccessible(true);
        return m;
    }

    /** Every topic placed as CreateTopics would place it on this cluster (all brokers unfenced). */
    private static void layout(Path dir, long seed) throws Exception {
        Cluster cluster = readCluster(dir.resolve("cluster.txt"));
        List<UsableBroker> usable = new ArrayList<>();
        for (Node n : cluster.nodes) {
            usable.add(new UsableBroker(n.id(), Optional.ofNullable(n.rack()), false));
        }
        ClusterDescriber describer = new ClusterDescriber() {
            @Override
            public Iterator<UsableBroker> usableBrokers() {
                return usable.iterator();
            }

            @Override
            public Uuid defaultDir(int brokerId) {
                return DirectoryId.MIGRATING;
            }
        };
        StripedReplicaPlacer placer = new StripedReplicaPlacer(new Random(seed));
        StringBuilder out = new StringBuilder();
        List<String> topics = new ArrayList<>(cluster.topics.keySet());
        topics.sort(null);
        for (String topic : topics) {
            List<TopicPartitionInfo> parts = cluster.topics.get(topic);
            short rf = (short) parts.get(0).replicas().size();
            TopicAssignment a = placer.place(new PlacementSpec(0, parts.size(), rf), describer);
            List<PartitionAssignment> list = a.assignments();
            for (int p = 0; p < list.size(); p++) {
                out.append(topic).append(' ').append(p).append(' ');
                List<Integer> reps = list.get(p).replicas();
                for (int i = 0; i < reps.size(); i++) {
                    out.append(i > 0 ? "," : "").append(reps.get(i));
                }
                out.append('\n');
            }
        }
        Files.write(dir.resolve("layout.txt"), out.toString().getBytes(StandardCharsets.UTF_8));
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("--layout")) {
            layout(Paths.get(args[1]), Long.parseLong(args[2]));
            return;
        }
        long uptimeAtMainMs = ManagementFactory.getRuntimeMXBean().getUptime();
        // CPU time of this thread as well as wall time: the bench machine is shared, so wall
        // time alone would mostly measure the neighbours.
        ThreadMXBean cpu = ManagementFactory.getThreadMXBean();
        Path dir = Paths.get(args[0]);
        int runs = Integer.parseInt(args[1]);
        int warm = Integer.parseInt(args[2]);

        long t0 = System.nanoTime();
        // handleAction reads the file with Utils.readFileAsString and passes the text on.
        String topicsJson = new String(Files.readAllBytes(dir.resolve("topics-to-move.json")), StandardCharsets.UTF_8);
        String brokerList = new String(Files.readAllBytes(dir.resolve("broker-list.txt")), StandardCharsets.UTF_8).trim();
        Cluster cluster = readCluster(dir.resolve("cluster.txt"));
        Map<String, AtomicInteger> calls = new LinkedHashMap<>();
        Admin admin = offlineAdmin(cluster, calls);
        double loadMs = (System.nanoTime() - t0) / 1e6;

        PrintStream realOut = System.out;
        List<Double> generateMs = new ArrayList<>();
        List<Double> generateCpuMs = new ArrayList<>();
        List<Long> uptimeAfterRunMs = new ArrayList<>();
        for (int run = 1; run <= runs; run++) {
            ByteArrayOutputStream buf = new ByteArrayOutputStream(1 << 24);
            PrintStream capture = new PrintStream(buf, false, StandardCharsets.UTF_8);
            System.setOut(capture);
            long s = System.nanoTime();
            long sc = cpu.getCurrentThreadCpuTime();
            try {
                ReassignPartitionsCommand.generateAssignment(admin, topicsJson, brokerList, Boolean.TRUE);
            } finally {
                capture.flush();
                System.setOut(realOut);
            }
            generateMs.add((System.nanoTime() - s) / 1e6);
            generateCpuMs.add((cpu.getCurrentThreadCpuTime() - sc) / 1e6);
            uptimeAfterRunMs.add(ManagementFactory.getRuntimeMXBean().getUptime());
            Files.write(dir.resolve("generate-output-" + run + ".txt"), buf.toByteArray());
        }

        // The placement step alone (no JSON formatting/printing), on the inputs Kafka's own helpers
        // build -- the same private methods generateAssignment calls, in the same order.
        Method parseArgs = declared("parseGenerateAssignmentArgs", String.class, String.class);
        Method current = declared("getReplicaAssignmentForTopics", Admin.class, List.class);
        Method brokers = declared("getBrokerMetadata", Admin.class, List.class, boolean.class);
        Method calculate = declared("calculateAssignment", Map.class, List.class);
        Map.Entry<?, ?> parsed = (Map.Entry<?, ?>) parseArgs.invoke(null, topicsJson, brokerList);
        Object currentAssignment = current.invoke(null, admin, parsed.getValue());
        Object usable = brokers.invoke(null, admin, parsed.getKey(), true);
        List<Double> calculateMs = new ArrayList<>();
        List<Double> calculateCpuMs = new ArrayList<>();
        int proposed = 0;
        for (int i = 0; i < warm; i++) {
            long s = System.nanoTime();
            long sc = cpu.getCurrentThreadCpuTime();
            Map<?, ?> result = (Map<?, ?>) calculate.invoke(null, currentAssignment, usable);
            calculateMs.add((System.nanoTime() - s) / 1e6);
            calculateCpuMs.add((cpu.getCurrentThreadCpuTime() - sc) / 1e6);
            proposed = result.size();
        }

        StringBuilder sb = new StringBuilder("{");
        sb.append("\"jvm_uptime_at_main_ms\":").append(uptimeAtMainMs);
        sb.append(",\"input_load_ms\":").append(loadMs);
        sb.append(",\"generate_ms\":").append(generateMs);
        sb.append(",\"generate_cpu_ms\":").append(generateCpuMs);
        sb.append(",\"jvm_uptime_after_run_ms\":").append(uptimeAfterRunMs);
        sb.append(",\"calculate_ms\":").append(calculateMs);
        sb.append(",\"calculate_cpu_ms\":").append(calculateCpuMs);
        sb.append(",\"calculate_partitions\":").append(proposed);
        sb.append(",\"usable_brokers\":").append(((List<?>) usable).size());
        sb.append(",\"topics\":").append(((List<?>) parsed.getValue()).size());
        sb.append(",\"admin_calls\":{");
        int k = 0;
        for (Map.Entry<String, AtomicInteger> e : calls.entrySet()) {
            sb.append(k++ > 0 ? "," : "").append('"').append(e.getKey()).append("\":").append(e.getValue().get());
        }
        sb.append("},\"java\":\"").append(System.getProperty("java.version")).append('"');
        sb.append(",\"max_heap_mib\":").append(Runtime.getRuntime().maxMemory() >> 20);
        sb.append('}');
        realOut.println(sb);
        realOut.flush();
    }
}
