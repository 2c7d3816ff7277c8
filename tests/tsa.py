"""A local RFC 3161 timestamp authority for tests: ``openssl ts`` behind HTTP.

``TimestampAuthority(folder)`` makes, with the ``openssl`` command, a
self-signed CA and a TSA certificate signed by it (extendedKeyUsage
timeStamping, critical, as OpenSSL demands), an openssl configuration with a
``[tsa]`` section (no ``certs`` line: the reply carries the TSA certificate
alone, which is all ``rfc3161-client`` parses), and serves it on 127.0.0.1 on a
free port: each POST body is piped through ``openssl ts -reply``. Nothing
leaves the machine.
"""

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

_TS_CONFIG = """\
[tsa]
default_tsa = kontor_test_tsa

[kontor_test_tsa]
dir = {folder}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55555.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""

_TSA_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
"""


def _openssl(*args: str, cwd: Path, data: bytes | None = None) -> bytes:
    result = subprocess.run(["openssl", *args], cwd=cwd, input=data, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


class TimestampAuthority:
    """A CA, a TSA certificate and the openssl configuration in ``folder``;
    ``start()`` serves it over HTTP."""

    def __init__(self, folder: Path, name: str = "Kontor Test") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        _openssl(
            "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3",
            "-subj", f"/CN={name} Timestamp CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=folder,
        )  # fmt: skip
        _openssl("req", *ec, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", f"/CN={name} TSA", cwd=folder)
        (folder / "tsa.ext").write_text(_TSA_EXTENSIONS)
        _openssl(
            "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "2",
            "-days", "3", "-extfile", "tsa.ext", "-out", "tsa.crt",
            cwd=folder,
        )  # fmt: skip
        (folder / "serial").write_text("01\n")
        (folder / "ts.cnf").write_text(_TS_CONFIG.format(folder=folder))
        self.ca_file = folder / "ca.crt"
        self.requests = 0
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def reply(self, query: bytes) -> bytes:
        """The DER TimeStampResp to a DER TimeStampReq, signed now."""
        return _openssl(
            "ts", "-reply", "-config", "ts.cnf", "-queryfile", "/dev/stdin", "-out", "/dev/stdout",
            cwd=self.folder, data=query,
        )  # fmt: skip

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the authority first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/tsa"

    def start(self) -> None:
        authority = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                authority.requests += 1
                query = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body, status, kind = authority.reply(query), 200, "application/timestamp-reply"
                except RuntimeError as error:
                    body, status, kind = str(error).encode(), 400, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-tsa", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


@contextmanager
def timestamp_authority(folder: Path, name: str = "Kontor Test") -> Iterator[TimestampAuthority]:
    """A running local authority, stopped afterwards."""
    authority = TimestampAuthority(folder, name)
    authority.start()
    try:
        yield authority
    finally:
        authority.stop()
