<?php
// tokenpulse from PHP with the curl extension: REST, then the first live updates over SSE.
//   TOKENPULSE_URL=http://127.0.0.1:8080 php examples/php/example.php [COUNT]
declare(strict_types=1);

$base = getenv('TOKENPULSE_URL') ?: 'http://127.0.0.1:8080';
$key = getenv('TOKENPULSE_API_KEY') ?: null;
$headers = $key ? ["X-API-Key: $key"] : [];

function get_json(string $base, string $path, array $headers): array
{
    $curl = curl_init($base . $path);
    curl_setopt_array($curl, [
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_TIMEOUT => 10,
    ]);
    $body = curl_exec($curl);
    $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    curl_close($curl);
    if ($body === false || $status !== 200) {
        throw new RuntimeException("GET $path: $status " . (string) $body);
    }
    // Big numbers as strings: ask the service for exact decimals with numbers=string if needed.
    return json_decode($body, true, 512, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
}

foreach (get_json($base, '/api/v1/ltp?pair=BTC/USD,ETH/USD', $headers)['ltp'] as $price) {
    printf("%s: %s (%s, %d ms old)\n", $price['pair'], $price['amount'], $price['source'], $price['age_ms']);
}
foreach (get_json($base, '/api/v1/tokens?limit=3&sort=market_cap&numbers=string', $headers)['data'] as $token) {
    printf("#%d %s: $%s velocity=%s\n", $token['rank'], $token['symbol'], $token['price_usd'], $token['velocity']);
}

// SSE: curl hands each chunk to the write function; returning a short count ends the transfer.
$wanted = (int) ($argv[1] ?? 3);
$seen = 0;
$buffer = '';
$curl = curl_init($base . '/api/v1/ltp/live?pair=BTC/USD');
curl_setopt_array($curl, [
    CURLOPT_HTTPHEADER => array_merge($headers, ['Accept: text/event-stream']),
    CURLOPT_TIMEOUT => 60,
    CURLOPT_WRITEFUNCTION => function ($curl, string $chunk) use (&$buffer, &$seen, $wanted): int {
        $buffer .= $chunk;
        while (($end = strpos($buffer, "\n\n")) !== false) {
            $block = substr($buffer, 0, $end);
            $buffer = substr($buffer, $end + 2);
            if (preg_match('/^data: (.*)$/m', $block, $match)) {
                $message = json_decode($match[1], true, 512, JSON_THROW_ON_ERROR);
                $values = $message['data'] ?? $message['changes'];
                printf("SSE %s %s seq=%d amount=%s\n", $message['type'], $message['id'], $message['seq'], $values['amount'] ?? '-');
                if (++$seen >= $wanted) {
                    return 0; // stop: curl reports a write error, which is our way out
                }
            }
        }
        return strlen($chunk);
    },
]);
curl_exec($curl);
curl_close($curl);
if ($seen < $wanted) {
    fwrite(STDERR, "the stream ended after $seen updates\n");
    exit(1);
}
echo "done\n";
