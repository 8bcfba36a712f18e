#!/usr/bin/env bash
# Every endpoint in the README, with curl. Prints each status and the start of each answer.
#   TOKENPULSE_URL=http://127.0.0.1:8080 examples/curl/endpoints.sh
# With auth on, set TOKENPULSE_API_KEY (sent as X-API-Key; SSE takes ?api_key= too).
set -euo pipefail
URL="${TOKENPULSE_URL:-http://127.0.0.1:8080}"
AUTH=()
[ -n "${TOKENPULSE_API_KEY:-}" ] && AUTH=(-H "X-API-Key: ${TOKENPULSE_API_KEY}")
BODY="$(mktemp)"
trap 'rm -f "$BODY"' EXIT

# call METHOD PATH [ALLOWED_STATUS_REGEX]: fail unless the status matches (default 2xx/3xx)
call() {
  local method="$1" path="$2" allowed="${3:-^[23]}"
  local status
  status="$(curl -sS -X "$method" "${AUTH[@]}" -o "$BODY" -w '%{http_code}' "$URL$path")"
  printf '%s %-55s %s  %s\n' "$method" "$path" "$status" "$(head -c 110 "$BODY" | tr '\n' ' ')"
  [[ "$status" =~ $allowed ]] || { echo "unexpected status $status for $path" >&2; exit 1; }
}

# stream PATH: read a live SSE stream for 2 seconds and print its first event
stream() {
  local path="$1"
  # --max-time ends the endless stream (curl reports that as error 28: expected here)
  curl -sS -N --max-time 2 "${AUTH[@]}" -H "Accept: text/event-stream" "$URL$path" >"$BODY" 2>/dev/null || true
  printf 'SSE %-55s %s\n' "$path" "$(grep -m1 '^data:' "$BODY" | head -c 100)"
  grep -q '^event: ' "$BODY" || { echo "no event from $path" >&2; exit 1; }
}

call GET  "/health"
call GET  "/ready" '^(200|503)$'
call GET  "/api/v1/ltp?pair=BTC/USD,ETH/USD"
call GET  "/api/v1/ltp"
call GET  "/api/v1/ltp?pair=BTC/USD&numbers=string"
call GET  "/api/v1/ltp/cached"
# A forced fetch from Kraken's REST API: 502 PRICE_FETCH_ERROR when Kraken is not a source
# (SOURCES=replay) or cannot be reached.
call POST "/api/v1/ltp/refresh?pairs=BTC/USD" '^(200|502)$'
call GET  "/api/v1/pairs"
call GET  "/api/v1/sources"
call GET  "/api/v1/tokens?limit=3&sort=market_cap&order=desc"
call GET  "/api/v1/tokens?symbols=BTC,ETH&numbers=string"
call GET  "/api/v1/tokens/bitcoin"
call GET  "/api/v1/tokens/BTC?detail=full&history=24h"
call GET  "/api/v1/tokens/bitcoin/velocity"
call GET  "/api/v1/tokens/bitcoin/history?granularity=1d&from=$(( $(date +%s) - 30*86400 ))"
call GET  "/api/v1/tokens/nosuchcoin" '^404$'
stream    "/api/v1/ltp/live?pair=BTC/USD"
stream    "/api/v1/tokens/live?ids=bitcoin,ethereum"
stream    "/api/v1/tokens/bitcoin/live"
call GET  "/metrics"
call GET  "/openapi.json"
call GET  "/asyncapi.json"
call GET  "/docs"
call GET  "/redoc"
call GET  "/swagger/" '^(200|30[127])$'
echo "every endpoint answered"
