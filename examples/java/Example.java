// tokenpulse from Java 17 with java.net.http only (no build tool, no library):
//   TOKENPULSE_URL=http://127.0.0.1:8080 java examples/java/Example.java
// REST: prices and tokens. SSE: the first few live updates of BTC/USD.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class Example {
    static final String BASE = System.getenv().getOrDefault("TOKENPULSE_URL", "http://127.0.0.1:8080");
    static final String KEY = System.getenv("TOKENPULSE_API_KEY");
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    static HttpRequest.Builder request(String path) {
        HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(BASE + path));
        if (KEY != null && !KEY.isEmpty()) builder.header("X-API-Key", KEY);
        return builder;
    }

    static String get(String path) throws Exception {
        HttpResponse<String> response = HTTP.send(
                request(path).timeout(Duration.ofSeconds(10)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IllegalStateException(response.statusCode() + " " + response.body());
        }
        return response.body();
    }

    /** Every value of a top-level-ish JSON field (a real program would use a JSON library). */
    static java.util.List<String> values(String json, String field) {
        Matcher m = Pattern.compile("\"" + field + "\":(\"[^\"]*\"|[-0-9.eE+]+|null)").matcher(json);
        java.util.List<String> found = new java.util.ArrayList<>();
        while (m.find()) found.add(m.group(1).replace("\"", ""));
        return found;
    }

    public static void main(String[] args) throws Exception {
        String ltp = get("/api/v1/ltp?pair=BTC/USD,ETH/USD");
        var pairs = values(ltp, "pair");
        var amounts = values(ltp, "amount");
        for (int i = 0; i < pairs.size(); i++) System.out.println(pairs.get(i) + ": " + amounts.get(i));

        String tokens = get("/api/v1/tokens?limit=3&sort=market_cap");
        var symbols = values(tokens, "symbol");
        var velocities = values(tokens, "velocity");
        for (int i = 0; i < symbols.size(); i++) {
            System.out.println(symbols.get(i) + " velocity=" + velocities.get(i));
        }

        int wanted = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        HttpResponse<java.io.InputStream> stream = HTTP.send(
                request("/api/v1/ltp/live?pair=BTC/USD").header("Accept", "text/event-stream").GET().build(),
                HttpResponse.BodyHandlers.ofInputStream());
        if (stream.statusCode() != 200) throw new IllegalStateException("SSE status " + stream.statusCode());
        int seen = 0;
        try (BufferedReader lines = new BufferedReader(
                new InputStreamReader(stream.body(), StandardCharsets.UTF_8))) {
            String line;
            while (seen < wanted && (line = lines.readLine()) != null) {
                if (!line.startsWith("data:")) continue; // event names, ids, keepalive comments
                String data = line.substring(5).trim();
                System.out.println("SSE " + values(data, "type") + " seq=" + values(data, "seq")
                        + " amount=" + values(data, "amount"));
                seen++;
            }
        }
        System.out.println("done");
    }
}
