"""The stream contract as an AsyncAPI 3.0 document, served at ``GET /asyncapi.json``.

Built from the constants the streams themselves use — event names (:mod:`tokenpulse.bus.topics`),
client events and error codes (:mod:`~tokenpulse.api.streams.requests`), the number policy
(:mod:`tokenpulse.wire.numbers` and the market fields of :mod:`tokenpulse.wire`), the interval
bounds (:class:`~tokenpulse.api.streams.types.StreamLimits`) — so the document cannot name an
event or a code the server does not have. The message schemas describe
:meth:`Message.payload <tokenpulse.api.streams.types.Message.payload>`; a test validates real
messages from a real server against them.
"""

from __future__ import annotations

from typing import Any

from tokenpulse import __version__
from tokenpulse.api.streams.requests import ACK_ERROR_CODES, CLIENT_EVENTS, CONNECT_ERROR_CODES
from tokenpulse.api.streams.types import StreamLimits
from tokenpulse.bus.topics import BULK_EVENT, LTP_EVENT, TOKEN_EVENT
from tokenpulse.wire.ltp import LTP_MARKET_FIELDS
from tokenpulse.wire.numbers import NUMBERS_FORMS, NUMBERS_PARAMETER, NUMBERS_STRING
from tokenpulse.wire.tokens import QUALITY_MARKET_FIELDS, TOKEN_MARKET_FIELDS

ASYNCAPI_PATH = "/asyncapi.json"
SCHEMAS = "#/components/schemas/"
MESSAGES = "#/components/messages/"

_NULLABLE_STRING = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC with Z"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_COMPUTED = {
    "type": ["number", "null"],
    "description": "computed by tokenpulse: a JSON number rounded to 12 significant digits",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMAS + name}


def _fields(names: frozenset[str], schema: dict[str, Any]) -> dict[str, Any]:
    return {name: schema for name in sorted(names)}


def _schemas() -> dict[str, Any]:
    market = {
        "type": ["number", "string", "null"],
        "description": (
            "a market value: a JSON number (the float64 nearest the provider's decimal); "
            f"the provider's exact decimal string when the client asked for "
            f"{NUMBERS_PARAMETER}={NUMBERS_STRING}. One form per connection, never mixed."
        ),
    }
    freshness = {
        "age_ms": {"type": "integer", "minimum": 0, "description": "age at the message's ts"},
        "stale": {"type": "boolean", "description": "older than STALE_AFTER"},
    }
    ltp_fields = {
        "pair": {"type": "string", "examples": ["BTC/USD"]},
        "timestamp": _TIME,
        "source": {"type": "string"},
        "as_of": _NULLABLE_TIME,
        "received_at": _TIME,
        **_fields(LTP_MARKET_FIELDS, market),
        **freshness,
    }
    quality = {
        "type": "object",
        "properties": {
            "flags": {"type": "array", "items": {"type": "string"}},
            **_fields(QUALITY_MARKET_FIELDS, market),
            "market_cap_derived": {"type": "boolean"},
        },
        "additionalProperties": False,
    }
    token_fields = {
        "id": {"type": "string", "examples": ["bitcoin"]},
        "symbol": {"type": "string"},
        "name": {"type": "string"},
        "cmc_id": {"type": ["integer", "null"]},
        "coingecko_id": _NULLABLE_STRING,
        "rank": {"type": ["integer", "null"]},
        **_fields(TOKEN_MARKET_FIELDS, market),
        "velocity": _COMPUTED,
        "source": {"type": "string"},
        "as_of": _NULLABLE_TIME,
        "received_at": _TIME,
        **freshness,
        "quality": quality,
    }

    def state(fields: dict[str, Any], required: list[str], title: str) -> dict[str, Any]:
        return {
            "title": title,
            "type": "object",
            "properties": fields,
            "required": required,
            "additionalProperties": False,
        }

    def update(data: str, changes: str, event: str) -> dict[str, Any]:
        common = {
            "id": {"type": "string", "description": "BTC/USD, BTC/USD@aggregate or a token id"},
            "seq": {"type": "integer", "minimum": 1, "description": "monotonic per key"},
            "ts": {"type": "integer", "description": "server send time, ms since the epoch"},
        }
        return {
            "title": f"{event} payload",
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"type": {"const": "snapshot"}, **common, "data": _ref(data)},
                    "required": ["type", "id", "seq", "ts", "data"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": "delta"},
                        **common,
                        "base_seq": {
                            "type": "integer",
                            "description": "the seq this delta applies to (a gap: resubscribe)",
                        },
                        "changes": _ref(changes),
                    },
                    "required": ["type", "id", "seq", "base_seq", "ts", "changes"],
                    "additionalProperties": False,
                },
            ],
        }

    def in_bulk(event: str, data: str, changes: str) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "event": {"const": event},
                "type": {"enum": ["snapshot", "delta"]},
                "id": {"type": "string"},
                "seq": {"type": "integer"},
                "base_seq": {"type": "integer"},
                "data": _ref(data),
                "changes": _ref(changes),
            },
            "required": ["event", "type", "id", "seq"],
            "additionalProperties": False,
        }

    ack_ok = {
        "type": "object",
        "properties": {
            "ok": {"const": True},
            "subscribed": {"type": "array", "items": {"type": "string"}},
            "unsubscribed": {"type": "array", "items": {"type": "string"}},
            "bulk_interval_ms": {"type": "integer"},
            NUMBERS_PARAMETER: {"enum": list(NUMBERS_FORMS)},
            "resume": {"type": "string", "description": "send it back to restore subscriptions"},
        },
        "required": ["ok", "subscribed", NUMBERS_PARAMETER, "resume"],
        "additionalProperties": False,
    }
    error = {
        "type": "object",
        "properties": {
            "code": {"enum": list(ACK_ERROR_CODES)},
            "message": {"type": "string"},
        },
        "required": ["code", "message"],
        "additionalProperties": False,
    }
    ack_error = {
        "type": "object",
        "properties": {"ok": {"const": False}, "error": error},
        "required": ["ok", "error"],
        "additionalProperties": False,
    }
    return {
        "LtpData": state(ltp_fields, list(ltp_fields), "A pair's last traded price"),
        "LtpChanges": state(ltp_fields, [], "The changed fields of a pair"),
        "TokenData": state(token_fields, list(token_fields), "A token's full snapshot"),
        "TokenChanges": state(token_fields, [], "The changed fields of a token"),
        "LtpUpdate": update("LtpData", "LtpChanges", LTP_EVENT),
        "TokenUpdate": update("TokenData", "TokenChanges", TOKEN_EVENT),
        "BulkUpdate": {
            "title": f"{BULK_EVENT} payload",
            "type": "object",
            "properties": {
                "type": {"const": "bulk"},
                "ts": {"type": "integer"},
                "updates": {
                    "type": "array",
                    "items": {
                        "oneOf": [
                            in_bulk(LTP_EVENT, "LtpData", "LtpChanges"),
                            in_bulk(TOKEN_EVENT, "TokenData", "TokenChanges"),
                        ]
                    },
                },
            },
            "required": ["type", "ts", "updates"],
            "additionalProperties": False,
        },
        "Ack": {"title": "Acknowledgement", "oneOf": [ack_ok, ack_error]},
        "AckError": error,
        "ConnectError": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "code": {"enum": list(CONNECT_ERROR_CODES)},
                "data": {
                    "type": "object",
                    "properties": {
                        "code": {"enum": list(CONNECT_ERROR_CODES)},
                        "message": {"type": "string"},
                    },
                },
            },
            "required": ["message", "code"],
        },
    }


def _client_payloads(limits: StreamLimits) -> dict[str, dict[str, Any]]:
    interval = {
        "type": "integer",
        "minimum": limits.min_interval_ms,
        "maximum": limits.max_interval_ms,
        "description": "at most one update per key this often (default: adaptive)",
    }
    numbers = {
        "enum": list(NUMBERS_FORMS),
        "description": "market values as numbers (default) or exact decimal strings, "
        "for the whole connection",
    }
    names = {"type": "array", "items": {"type": "string"}, "maxItems": limits.max_subscriptions}

    def either(single: str, plural: str, *, options: bool) -> dict[str, Any]:
        extra = {"min_interval_ms": interval, NUMBERS_PARAMETER: numbers} if options else {}
        return {
            "type": "object",
            "properties": {single: {"type": "string"}, plural: names, **extra},
            "oneOf": [{"required": [single]}, {"required": [plural]}],
        }

    return {
        "subscribe_pair": either("pair", "pairs", options=True),
        "unsubscribe_pair": either("pair", "pairs", options=False),
        "subscribe_token": either("token_id", "token_ids", options=True),
        "unsubscribe_token": either("token_id", "token_ids", options=False),
        "subscribe_all": {
            "type": ["object", "null"],
            "properties": {NUMBERS_PARAMETER: numbers},
        },
        "unsubscribe_all": {"type": ["object", "null"]},
        "resume": {
            "type": ["object", "string"],
            "properties": {"resume": {"type": "string"}, NUMBERS_PARAMETER: numbers},
            "required": ["resume"],
        },
    }


_CLIENT_SUMMARIES = {
    "subscribe_pair": "Follow pairs: a snapshot now, then deltas (ltp_update)",
    "unsubscribe_pair": "Stop following pairs",
    "subscribe_token": "Follow tokens: a snapshot now, then deltas (token_update)",
    "unsubscribe_token": "Stop following tokens",
    "subscribe_all": "Everything, coalesced into bulk_update every BULK_INTERVAL",
    "unsubscribe_all": "Stop the bulk subscription",
    "resume": "Restore a previous connection's subscriptions (fresh snapshots follow)",
}


def asyncapi_document(limits: StreamLimits | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the Socket.IO events and the SSE streams."""
    limits = limits or StreamLimits()
    assert set(_CLIENT_SUMMARIES) == set(CLIENT_EVENTS)
    payloads = _client_payloads(limits)
    server_events = {
        LTP_EVENT: ("LtpUpdate", "A pair's price: a snapshot, then deltas of changed fields"),
        TOKEN_EVENT: ("TokenUpdate", "A token's metrics: a snapshot, then deltas"),
        BULK_EVENT: ("BulkUpdate", "Coalesced snapshots and deltas for subscribe_all clients"),
    }
    messages: dict[str, Any] = {}
    for event in CLIENT_EVENTS:
        messages[event] = {
            "name": event,
            "title": event,
            "summary": _CLIENT_SUMMARIES[event],
            "payload": payloads[event],
        }
    messages["ack"] = {
        "name": "ack",
        "summary": "The acknowledgement of every client event (Socket.IO ack callback)",
        "payload": _ref("Ack"),
    }
    messages["connect_error"] = {
        "name": "connect_error",
        "summary": "A refused handshake (bad or missing API key, too many connections)",
        "payload": _ref("ConnectError"),
    }
    for event, (schema, summary) in server_events.items():
        messages[event] = {"name": event, "summary": summary, "payload": _ref(schema)}

    def refs(names: list[str]) -> dict[str, Any]:
        return {name: {"$ref": f"{MESSAGES}{name}"} for name in names}

    sse_query = (
        f"min_interval_ms ({limits.min_interval_ms}-{limits.max_interval_ms}), "
        f"{NUMBERS_PARAMETER}=string, api_key (EventSource cannot set X-API-Key)"
    )
    channels: dict[str, Any] = {
        "socketio": {
            "address": "/socket.io/",
            "title": "Socket.IO (protocol v5)",
            "description": "Handshake auth: {api_key} (or the X-API-Key header), optional "
            f"{{resume}} and {{{NUMBERS_PARAMETER}}}. Every client event is acknowledged.",
            "servers": [{"$ref": "#/servers/socketio"}],
            "messages": refs(
                [*CLIENT_EVENTS, "ack", "connect_error", LTP_EVENT, TOKEN_EVENT, BULK_EVENT],
            ),
        },
        "sseLtp": {
            "address": "/api/v1/ltp/live",
            "title": "SSE: last traded prices",
            "description": f"?pair=A,B (default: every pair); {sse_query}. "
            "event: ltp_update, id: <seq>, data: <payload>; a comment every 15 s.",
            "servers": [{"$ref": "#/servers/sse"}],
            "messages": refs([LTP_EVENT]),
        },
        "sseTokens": {
            "address": "/api/v1/tokens/live",
            "title": "SSE: token metrics",
            "description": f"?ids=a,b (default: every token); {sse_query}.",
            "servers": [{"$ref": "#/servers/sse"}],
            "messages": refs([TOKEN_EVENT]),
        },
        "sseToken": {
            "address": "/api/v1/tokens/{token_id}/live",
            "title": "SSE: one token",
            "description": f"{sse_query}. Last-Event-ID on reconnect gets a fresh snapshot.",
            "parameters": {"token_id": {"description": "id, CMC id, CoinGecko id or symbol"}},
            "servers": [{"$ref": "#/servers/sse"}],
            "messages": refs([TOKEN_EVENT]),
        },
    }
    operations: dict[str, Any] = {}
    for event in CLIENT_EVENTS:
        operations[event] = {
            "action": "receive",
            "channel": {"$ref": "#/channels/socketio"},
            "summary": _CLIENT_SUMMARIES[event],
            "messages": [{"$ref": f"#/channels/socketio/messages/{event}"}],
            "reply": {
                "channel": {"$ref": "#/channels/socketio"},
                "messages": [{"$ref": "#/channels/socketio/messages/ack"}],
            },
        }
    operations["refuseConnection"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/socketio"},
        "messages": [{"$ref": "#/channels/socketio/messages/connect_error"}],
    }
    for event in server_events:
        operations[f"send_{event}"] = {
            "action": "send",
            "channel": {"$ref": "#/channels/socketio"},
            "summary": server_events[event][1],
            "messages": [{"$ref": f"#/channels/socketio/messages/{event}"}],
        }
    sse = {"sseLtp": LTP_EVENT, "sseTokens": TOKEN_EVENT, "sseToken": TOKEN_EVENT}
    for channel, event in sse.items():
        operations[f"{channel}_{event}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{event}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "tokenpulse streams",
            "version": __version__,
            "description": "Live prices and token metrics over Socket.IO and Server-Sent "
            "Events (SPEC §7). Every message carries seq (monotonic per key) and ts; values "
            "carry age_ms and stale. Market values are JSON numbers, or the provider's exact "
            f"decimal strings with {NUMBERS_PARAMETER}=string; computed values are numbers.",
        },
        "servers": {
            "socketio": {"host": "localhost:8080", "protocol": "ws", "pathname": "/socket.io/"},
            "sse": {"host": "localhost:8080", "protocol": "http", "pathname": "/api/v1"},
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": _schemas()},
    }


__all__ = ["ASYNCAPI_PATH", "asyncapi_document"]
