"""The access-control part of the AsyncAPI document (SPEC §8): session tokens on the streams,
and the events that end a connection whose credentials ended."""

from __future__ import annotations

from typing import Any

ENDING_EVENTS = {
    "session_expired": "The session token of this connection expired (code TOKEN_EXPIRED); "
    "the connection ends: refresh the token (POST /api/v1/sessions/refresh) and reconnect",
    "key_revoked": "The API key of this connection was revoked (code KEY_REVOKED); the "
    "connection ends",
}
SSE_CHANNELS = ("sseLtp", "sseTokens", "sseToken")


def add_access(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with ``auth: {token}``, ``?token=`` and the two ending events stated."""
    components = document["components"]
    components["schemas"]["ConnectionEnded"] = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"enum": ["TOKEN_EXPIRED", "KEY_REVOKED"]},
            "message": {"type": "string"},
        },
    }
    channels = document["channels"]
    channels["socketio"]["description"] += (
        " Auth is auth: {api_key} or auth: {token} (a session token from POST "
        "/api/v1/sessions); a key's tier bounds its connections, subscriptions and "
        "min_interval_ms."
    )
    for channel in SSE_CHANNELS:
        channels[channel]["description"] += " Also ?token=<session token>."
    for event, summary in ENDING_EVENTS.items():
        components["messages"][event] = {
            "name": event,
            "summary": summary,
            "payload": {"$ref": "#/components/schemas/ConnectionEnded"},
        }
        for channel in ("socketio", *SSE_CHANNELS):
            channels[channel]["messages"][event] = {"$ref": f"#/components/messages/{event}"}
            document["operations"][f"{channel}_{event}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel}"},
                "summary": summary,
                "messages": [{"$ref": f"#/channels/{channel}/messages/{event}"}],
            }
    return document
