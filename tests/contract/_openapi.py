"""Check an HTTP answer against the OpenAPI document: its status is documented for the
operation, its body validates against that status's schema, its headers are documented."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema


def operation(document: dict[str, Any], method: str, template: str) -> dict[str, Any]:
    """The documented operation ``method template``."""
    found: dict[str, Any] | None = document["paths"].get(template, {}).get(method.lower())
    assert found is not None, f"{method} {template} is not documented"
    return found


def problems(
    document: dict[str, Any], method: str, template: str, response: httpx.Response
) -> list[str]:
    """What in ``response`` the document does not say (empty when it conforms)."""
    label = f"{method} {template} -> {response.status_code} ({response.request.url})"
    documented = operation(document, method, template)["responses"]
    answer = documented.get(str(response.status_code))
    if answer is None:
        return [f"{label}: status not documented (documented: {sorted(documented)})"]
    found: list[str] = []
    for header in ("x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "retry-after"):
        names = {name.lower() for name in answer.get("headers", {})}
        if header in response.headers and header not in names:
            found.append(f"{label}: header {header} not documented")
    media = response.headers.get("content-type", "").split(";")[0]
    content = answer.get("content", {})
    if media not in content:
        return [*found, f"{label}: content type {media!r} not documented ({sorted(content)})"]
    schema = content[media].get("schema")
    if media == "application/json" and schema is not None:
        validator = jsonschema.Draft202012Validator(
            {**schema, "components": document.get("components", {})}
        )
        found += [f"{label}: {error.message}" for error in validator.iter_errors(response.json())]
    return found
