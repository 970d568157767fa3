"""A small SSPI client, shaped like Chromium's HttpAuthSSPI, with switchable bugs.

The sanitizer fixture's tests run it: `leak_context` forgets DeleteSecurityContext in close()
(Kerberos.NET PR#308), `stale_handle` keeps the handle of the first leg instead of the one
each leg returns (what Chromium's MockSSPILibrary catches by rotating handles).
"""

from __future__ import annotations

from typing import Any

from sspi_model import CredentialUse, SecHandle, is_error


class NegotiateAuth:
    def __init__(self, sspi: Any, *, leak_context: bool = False, stale_handle: bool = False):
        self.sspi = sspi
        self.leak_context = leak_context
        self.stale_handle = stale_handle
        self.credential: SecHandle | None = None
        self.context: SecHandle | None = None

    def token(self, challenge: bytes | None = None) -> bytes:
        """GenerateAuthToken: acquire on the first round, then one ISC leg per challenge."""
        if self.credential is None:
            acquired = self.sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND)
            self.credential = acquired.credential
        leg = self.sspi.initialize_security_context(
            self.credential, self.context, "HTTP/srv.contoso.com", 0, challenge
        )
        if is_error(leg.status):
            self.close()
            raise RuntimeError(f"ISC failed: {leg.status!r}")
        if self.context is None or not self.stale_handle:
            self.context = leg.new_context
        return leg.output_token

    def close(self) -> None:
        """Chromium's destructor: ResetSecurityContext, then FreeCredentialsHandle."""
        if self.context is not None and not self.leak_context:
            self.sspi.delete_security_context(self.context)
        self.context = None
        if self.credential is not None:
            self.sspi.free_credentials_handle(self.credential)
        self.credential = None


def authenticate(client: NegotiateAuth, server: Any) -> Any:
    """Run the client against a server process until both sides are done; the server's
    context and credential are returned for the test to release."""
    credential = server.acquire_credentials_handle("NTLM", CredentialUse.INBOUND).credential
    context = None
    token = client.token()
    for _leg in range(3):
        reply = server.accept_security_context(credential, context, token)
        context = reply.new_context or context
        if not reply.output_token:
            break
        token = client.token(reply.output_token)
    return credential, context
