"""The ``[metrics]`` table. Kept apart from :mod:`daemon.metrics` because the endpoint
(:mod:`daemon.metrics_server`) needs it and the metrics need the endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from dsp.settings import setting


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """The ``[metrics]`` table: the Prometheus endpoint.

    It listens on loopback by default. To let a central Prometheus scrape it, set
    ``listen_address = "0.0.0.0"`` together with TLS and basic auth (docs/fleet.md). The
    password is stored only as its SHA-256 hex digest (``printf %s 'secret' | sha256sum``);
    the server hashes what a client sends and compares the digests in constant time. Plain
    SHA-256 keeps the daemon free of extra dependencies; it is a scrape credential on a TLS
    channel, not a user password, so pick a long random one.
    """

    enabled: bool = setting(True, doc="serve /metrics for Prometheus")
    listen_address: str = setting(
        "127.0.0.1", doc="address to listen on; \"0.0.0.0\" or \"::\" to be scraped remotely"
    )
    port: int = setting(9464, 0, 65535, "TCP port of /metrics (0 = any free port)")
    tls_cert_file: str = setting("", doc="PEM certificate (chain); serve HTTPS when set")
    tls_key_file: str = setting("", doc="PEM private key of tls_cert_file")
    basic_auth_user: str = setting("", doc="require HTTP basic auth with this user name")
    basic_auth_password_sha256: str = setting(
        "", doc="SHA-256 hex digest of the basic-auth password (printf %s PASS | sha256sum)"
    )

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        if bool(self.basic_auth_user) != bool(self.basic_auth_password_sha256):
            raise ValueError("basic_auth_user and basic_auth_password_sha256 must be set together")
        digest = self.basic_auth_password_sha256
        if digest and (len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest)):
            raise ValueError(
                "basic_auth_password_sha256 must be 64 hex digits (printf %s PASS | sha256sum)"
            )
