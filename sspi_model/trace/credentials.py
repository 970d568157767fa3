"""SCHANNEL_CRED and SCH_CREDENTIALS in a trace's auth_data (CRD-001): every field by name.

{"type": "SchCredentials", "version": 5, "cred_format": 0,
 "credentials": [{"subject": "CN=srv.contoso.com", "expired": false}], "session_lifespan": 0,
 "flags": 4194304, "tls_parameters": [{"alpn_ids": [], "disabled_protocols": 2048, "flags": 0}]}
"""

from __future__ import annotations

from typing import Any

import attrs

from sspi_model.packages.schannel import Certificate
from sspi_model.packages.schannel_creds import LegacySchannelCred, SchCredentials, TlsParameters

STRUCTS: dict[str, type[Any]] = {cls.__name__: cls for cls in (LegacySchannelCred, SchCredentials)}


def encode(value: LegacySchannelCred | SchCredentials) -> dict[str, Any]:
    fields: dict[str, Any] = {"type": type(value).__name__}
    for name, item in attrs.asdict(value, recurse=False).items():
        if name == "credentials":
            fields[name] = [{"subject": c.subject, "expired": c.expired} for c in item]
        elif name == "tls_parameters":
            fields[name] = [
                {**attrs.asdict(entry, recurse=False), "alpn_ids": list(entry.alpn_ids)}
                for entry in item
            ]
        else:
            fields[name] = item
    return fields


def decode(value: dict[str, Any]) -> Any:
    """The structure `value` describes; KeyError, TypeError or ValueError if it is malformed."""
    cls = STRUCTS[value["type"]]
    fields = {key: item for key, item in value.items() if key != "type"}
    if "credentials" in fields:
        fields["credentials"] = tuple(
            Certificate(c["subject"], c.get("expired", False)) for c in fields["credentials"]
        )
    if "tls_parameters" in fields:
        fields["tls_parameters"] = tuple(
            TlsParameters(**{**entry, "alpn_ids": tuple(entry.get("alpn_ids", ()))})
            for entry in fields["tls_parameters"]
        )
    return cls(**fields)
