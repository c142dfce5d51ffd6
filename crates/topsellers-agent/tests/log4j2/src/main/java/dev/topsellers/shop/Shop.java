package dev.topsellers.shop;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import java.util.TreeMap;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.logging.log4j.ThreadContext;
import org.apache.logging.log4j.message.StringMapMessage;

/**
 * A purchase server in miniature, for tests/agent_log4j2.rs: logs purchases, each beside the customer's personal
 * data (in the ThreadContext and in keys of the message that the agent's mapping does not name), through the real
 * log4j2 SocketAppender and HttpAppender (see log4j2.xml) to `topsellers agent`, in three shapes:
 *
 * <ul>
 *   <li>socket, ECS template, the message as key=value text;
 *   <li>HTTP, ECS template, the message as JSON text;
 *   <li>HTTP, JsonLayout, the message a MapMessage (written as key="value" pairs).
 * </ul>
 *
 * Writes the purchases it logged, in the agent's canonical shape, to a reference file (personal data in item
 * names included: the reference replay scrubs them the same way), so the test compares the node's results with one
 * replay of it. Also logs one bad purchase per shape (a quantity that is not a number), which must become a dead
 * letter without stopping what follows.
 *
 * <p>Usage: {@code java -jar log4j2-shop.jar SOCKET_PORT HTTP_PORT TOKEN COUNT REFERENCE_FILE}
 */
public final class Shop {
  static final String NAME = "Zelda Plantedname";
  static final String EMAIL = "zelda.planted@example.com";
  static final String CARD = "4111 1111 1111 1111";
  static final String PHONE = "+44 20 7946 0958";
  static final String ADDRESS = "221B Plantedstreet, London NW1 6XE";
  static final String IP = "203.0.113.77";
  static final String[] CATEGORIES = {"home/kitchen", "home/garden", "electronics/phones", "books"};
  static final Instant START = Instant.parse("2026-01-01T00:00:00Z");

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: java -jar log4j2-shop.jar SOCKET_PORT HTTP_PORT TOKEN COUNT REFERENCE_FILE");
      System.exit(2);
    }
    // Read by log4j2.xml, so they must be set before the first logger exists.
    System.setProperty("shop.socketPort", args[0]);
    System.setProperty("shop.httpPort", args[1]);
    System.setProperty("shop.token", args[2]);
    int count = Integer.parseInt(args[3]);
    Logger socket = LogManager.getLogger("purchases.socket");
    Logger httpTemplate = LogManager.getLogger("purchases.http.template");
    Logger httpJson = LogManager.getLogger("purchases.http.json");

    ThreadContext.put("customer.name", NAME);
    ThreadContext.put("customer.email", EMAIL);
    ThreadContext.put("customer.phone", PHONE);
    ThreadContext.put("customer.address", ADDRESS);
    ThreadContext.put("client_ip", IP);
    int logged = 0;
    try (PrintWriter reference =
        new PrintWriter(Files.newBufferedWriter(Path.of(args[4]), StandardCharsets.UTF_8))) {
      for (int i = 0; i < count; i++) {
        String line = "o-" + (1000 + i) + "-1";
        String sku = "SKU-" + (i * 7 % 23);
        String category = CATEGORIES[i % CATEGORIES.length];
        String product = i % 5 == 0 ? "Gift mug for " + EMAIL : "Mug no. " + (i * 7 % 23);
        int qty = i % 11 == 10 ? -1 : 1 + i % 3; // now and then a refund
        String price = (3 + i % 23) + "." + (10 + i % 90);
        String ts = START.plusSeconds(i).toString();
        int shape = i % 3;
        if (shape == 0) {
          ThreadContext.put("customer.card", CARD);
          retry(
              () ->
                  socket.info(
                      "purchase order_line={} sku={} product=\"{}\" category={} qty={} price={} currency=USD ts={} customer=\"{}\" email={} card=\"{}\" phone=\"{}\" address=\"{}\" ip={}",
                      line, sku, product, category, qty, price, ts, NAME, EMAIL, CARD, PHONE, ADDRESS, IP));
        } else if (shape == 1) {
          String json =
              String.format(
                  "{\"order_line\":\"%s\",\"sku\":\"%s\",\"product\":\"%s\",\"category\":\"%s\",\"qty\":%d,"
                      + "\"price\":\"%s\",\"currency\":\"USD\",\"ts\":\"%s\",\"customer\":{\"name\":\"%s\","
                      + "\"email\":\"%s\",\"card\":\"%s\",\"phone\":\"%s\",\"address\":\"%s\",\"ip\":\"%s\"}}",
                  line, sku, product, category, qty, price, ts, NAME, EMAIL, CARD, PHONE, ADDRESS, IP);
          retry(() -> httpTemplate.info(json));
        } else {
          Map<String, String> m = new TreeMap<>();
          m.put("order_line", line);
          m.put("sku", sku);
          m.put("product", product);
          m.put("category", category);
          m.put("qty", Integer.toString(qty));
          m.put("price", price);
          m.put("currency", "USD");
          m.put("ts", ts);
          m.put("customer", NAME);
          m.put("email", EMAIL);
          m.put("card", CARD);
          m.put("phone", PHONE);
          m.put("address", ADDRESS);
          m.put("ip", IP);
          retry(() -> httpJson.info(new StringMapMessage(m)));
        }
        reference.printf(
            "{\"event_id\":\"%s\",\"time\":\"%s\",\"item_id\":\"%s\",\"item_name\":\"%s\",\"category\":\"%s\","
                + "\"quantity\":%d,\"unit_price\":\"%s\",\"currency\":\"USD\"}%n",
            line, ts, sku, product, category, qty, price);
        logged++;
        if (i == count / 2) {
          // Bad purchases in the middle of the stream: dead letters, and the events after them still arrive.
          String ts0 = START.toString();
          retry(() -> socket.info("purchase order_line=bad-1 sku=SKU-1 product=\"for {}\" qty=lots price=1.00 currency=USD ts={}", EMAIL, ts0));
          retry(() -> httpTemplate.info("{\"order_line\":\"bad-2\",\"sku\":\"SKU-1\",\"product\":\"for " + EMAIL + "\",\"qty\":\"lots\",\"price\":\"1.00\",\"currency\":\"USD\",\"ts\":\"" + ts0 + "\"}"));
          Map<String, String> bad = new TreeMap<>(Map.of("order_line", "bad-3", "sku", "SKU-1", "product", "for " + EMAIL, "qty", "lots", "price", "1.00", "currency", "USD", "ts", ts0));
          retry(() -> httpJson.info(new StringMapMessage(bad)));
        }
      }
    }
    // Flushes and closes the socket: every event is on the wire when this returns.
    LogManager.shutdown();
    System.out.println("logged " + logged + " purchases and 3 bad ones, retried " + retries + " appends");
  }

  static int retries = 0;

  /** A failed append (agent restarting, spool full: 503) is retried: with order line ids, a retry is never counted twice. */
  static void retry(Runnable append) throws InterruptedException {
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (true) {
      try {
        append.run();
        return;
      } catch (RuntimeException e) {
        if (System.nanoTime() > deadline) {
          throw e;
        }
        retries++;
        Thread.sleep(200);
      }
    }
  }

  private Shop() {}
}
