// A tiny CQL shell for checks and debugging (cqlsh is not available here): runs each statement given on the
// command line, or read from stdin one per line, against a Cassandra node and prints the rows, one per line,
// columns separated by " | ". Run by `scripts/services.sh cql`, with the DataStax driver that comes with the
// Cassandra jars (java single-file source program: no build step).
//   scripts/services.sh cql [-h HOST] [-p PORT] [-c CONSISTENCY] "SELECT release_version FROM system.local"
// CONSISTENCY is a level name (ONE, QUORUM, ALL, ...; default ONE). Only HOST is contacted: with the 3-node
// cluster, -h 127.0.0.2 talks to node 2 (which coordinates the request).
import com.datastax.driver.core.Cluster;
import com.datastax.driver.core.ColumnDefinitions;
import com.datastax.driver.core.ConsistencyLevel;
import com.datastax.driver.core.QueryOptions;
import com.datastax.driver.core.policies.WhiteListPolicy;
import com.datastax.driver.core.policies.RoundRobinPolicy;
import java.net.InetSocketAddress;
import java.util.Collections;
import com.datastax.driver.core.ResultSet;
import com.datastax.driver.core.Row;
import com.datastax.driver.core.Session;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;

public class Cql {
  public static void main(String[] args) throws Exception {
    String host = "127.0.0.1";
    int port = 9042;
    ConsistencyLevel consistency = ConsistencyLevel.ONE;
    List<String> statements = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("-h")) host = args[++i];
      else if (args[i].equals("-p")) port = Integer.parseInt(args[++i]);
      else if (args[i].equals("-c")) consistency = ConsistencyLevel.valueOf(args[++i].toUpperCase());
      else statements.add(args[i]);
    }
    if (statements.isEmpty()) {
      BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
      for (String line; (line = in.readLine()) != null; ) {
        if (!line.isBlank()) statements.add(line);
      }
    }
    // No metrics (their JMX reporter pulls in classes the Cassandra jars lack).
    try (Cluster cluster = Cluster.builder().addContactPoint(host).withPort(port)
            .withLoadBalancingPolicy(new WhiteListPolicy(new RoundRobinPolicy(),
                Collections.singletonList(new InetSocketAddress(host, port))))
            .withQueryOptions(new QueryOptions().setConsistencyLevel(consistency))
            .withoutJMXReporting().withoutMetrics().build();
        Session session = cluster.connect()) {
      for (String cql : statements) {
        ResultSet rs = session.execute(cql);
        ColumnDefinitions cols = rs.getColumnDefinitions();
        for (Row row : rs) {
          StringBuilder line = new StringBuilder();
          for (int c = 0; c < cols.size(); c++) {
            if (c > 0) line.append(" | ");
            line.append(row.getObject(c));
          }
          System.out.println(line);
        }
      }
    }
  }
}
