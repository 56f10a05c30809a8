"""TLS and SASL/SCRAM for the sandbox: certificates, SCRAM users and what a client needs.

Why the sandbox can be secure at all: production clusters run ``SASL_SSL``, and "kafka-medic works
on a secure cluster and never leaks its credentials" is a claim that needs real brokers to prove.

Design (see also :mod:`kafka_medic.sandbox.layout`):

* A throw-away CA and ONE broker certificate (SAN ``IP:127.0.0.1``, ``DNS:localhost``) made with the
  ``cryptography`` package. Kafka 4.1 reads PEM directly (``ssl.keystore.type=PEM``), so no keytool
  and no JKS/PKCS12 passwords are needed. The CA's private key is never written to disk: nothing
  signs anything after the sandbox's material is made.
* One ``SASL_SSL`` listener per broker carries client AND inter-broker traffic (SCRAM-SHA-512).
  Inter-broker traffic is authenticated too, so there is no unauthenticated loopback port that a
  client could use to bypass SCRAM. Only the KRaft controller listener stays PLAINTEXT: it serves
  controller APIs, not produce/fetch, but anyone on the host can reach it (a known sandbox limit;
  a production controller listener should be SASL_SSL too).
* Two SCRAM users, ``admin`` (clients, kafka-medic) and ``broker`` (inter-broker), both super users,
  bootstrapped into the metadata log when the controller is formatted. Their random passwords live
  in ``<state>/security/credentials.json`` (mode 0600). The StorageTool gets the *salted* SCRAM
  form (salt + PBKDF2 output), so the clear password never appears on a command line.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from kafka_medic.errors import SandboxError
from kafka_medic.sandbox.layout import ADMIN_USER, BROKER_USER, SCRAM_MECHANISM, SandboxLayout

#: Kafka accepts 4096..16384 iterations for SCRAM-SHA-512.
SCRAM_ITERATIONS = 8192
#: Certificates last a year; ``ensure_material`` renews them when less than a day is left.
CERT_DAYS = 365


@dataclass(frozen=True)
class ScramUser:
    """A SCRAM user. The password is a ``SecretStr`` so that printing the user reveals nothing."""

    name: str
    password: SecretStr


@dataclass(frozen=True)
class SandboxSecrets:
    """The credentials of one secure sandbox (read from its 0600 credentials file)."""

    admin: ScramUser
    broker: ScramUser

    @property
    def users(self) -> tuple[ScramUser, ...]:
        return (self.admin, self.broker)


@dataclass(frozen=True)
class ClientSecurity:
    """What a client needs to reach a secure sandbox: SASL_SSL, SCRAM-SHA-512, the sandbox CA.

    The two ``*_config`` methods return secrets in clear (a client needs them): never log them.
    """

    bootstrap_servers: str
    ca_file: Path
    username: str
    password: SecretStr
    mechanism: str = SCRAM_MECHANISM
    protocol: str = "SASL_SSL"

    def confluent_config(self) -> dict[str, Any]:
        """librdkafka settings (hostname verification stays on: the certificate names 127.0.0.1)."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.protocol,
            "ssl.ca.location": str(self.ca_file),
            "sasl.mechanisms": self.mechanism,
            "sasl.username": self.username,
            "sasl.password": self.password.get_secret_value(),
        }

    def kafka_python_config(self) -> dict[str, Any]:
        """kafka-python keyword arguments (it uses the ``sasl_plain_*`` names for SCRAM too)."""
        return {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.protocol,
            "ssl_cafile": str(self.ca_file),
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password.get_secret_value(),
        }


# ----------------------------------------------------------------------------- files on disk


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (no window in which it is world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


def write_private_text(path: Path, text: str) -> None:
    """Write a text file readable by its owner only (server.properties holds the broker password)."""
    _write_private(path, text.encode())


def ensure_material(layout: SandboxLayout) -> SandboxSecrets:
    """Make the CA, the broker keystore and the SCRAM passwords once; later calls reuse them.

    Reusing matters: the SCRAM users live in the metadata log from the first format, so the
    passwords must survive ``down``/``up`` and broker replacement.
    """
    d = layout.security_dir
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    if not layout.credentials_file.exists():
        creds = {u: secrets.token_urlsafe(24) for u in (ADMIN_USER, BROKER_USER)}
        _write_private(layout.credentials_file, json.dumps(creds).encode())
    if not (layout.ca_file.exists() and layout.keystore_file.exists()) or _expiring(layout.ca_file):
        ca_pem, keystore_pem = _make_certificates()
        _write_private(layout.keystore_file, keystore_pem)
        layout.ca_file.write_bytes(ca_pem)  # public: clients need it
    return load_secrets(layout)


def _expiring(cert_file: Path, margin: dt.timedelta = dt.timedelta(days=1)) -> bool:
    """True if the (CA) certificate ends within ``margin`` or cannot be read: then make new ones."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return True
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < margin


def load_secrets(layout: SandboxLayout) -> SandboxSecrets:
    """Read the sandbox's SCRAM passwords; a clear error if the sandbox was never made secure."""
    try:
        raw = json.loads(layout.credentials_file.read_text())
        return SandboxSecrets(
            admin=ScramUser(ADMIN_USER, SecretStr(str(raw[ADMIN_USER]))),
            broker=ScramUser(BROKER_USER, SecretStr(str(raw[BROKER_USER]))),
        )
    except FileNotFoundError:
        raise SandboxError(
            f"no credentials in {layout.security_dir}: this secure sandbox was never started (run `up`)"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        what = type(exc).__name__  # not the message: it could quote the file's content
        raise SandboxError(f"sandbox credentials {layout.credentials_file} are unreadable ({what})") from None


def _make_certificates() -> tuple[bytes, bytes]:
    """A self-signed CA and a broker certificate for 127.0.0.1/localhost: (CA PEM, key + chain PEM).

    EC P-256 keys: generating them is instant, and Java, OpenSSL (librdkafka) and Python's ssl all
    accept them. The extensions (key usage, key identifiers) satisfy strict X.509 verification.
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:  # pragma: no cover - cryptography comes with prefect
        raise SandboxError("the secure sandbox needs the `cryptography` package (pip install cryptography)") from exc

    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(minutes=5), now + dt.timedelta(days=CERT_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kafka-medic sandbox CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_agreement=True), critical=True)
        # clientAuth too: a broker is the client of its peers on the inter-broker connection.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca_cert.public_bytes(pem)
    # Kafka's PEM keystore wants an unencrypted PKCS#8 key followed by the certificate chain.
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca_pem, key_pem + cert.public_bytes(pem) + ca_pem


def _key_usage(**allowed: bool) -> Any:
    """An X.509 KeyUsage with only the named usages set (the constructor wants all nine)."""
    from cryptography import x509

    names = (
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
        "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
    )  # fmt: skip
    return x509.KeyUsage(**{n: allowed.get(n, False) for n in names})


# ----------------------------------------------------------------------------- SCRAM bootstrap


def salted_password(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> bytes:
    """SCRAM's Hi(password, salt, i) for SHA-512 (RFC 5802), which is PBKDF2-HMAC-SHA-512."""
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


def scram_format_arg(user: ScramUser, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The StorageTool ``--add-scram`` value for ``user`` in the salted form (no clear password)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = salted_password(user.password.get_secret_value(), salt, iterations)
    b64 = base64.b64encode
    return (
        f"{SCRAM_MECHANISM}=[name={user.name},iterations={iterations},"
        f'salt="{b64(salt).decode()}",saltedpassword="{b64(salted).decode()}"]'
    )


def storage_format_args(layout: SandboxLayout) -> list[str]:
    """Extra ``format`` arguments for the controller: one ``--add-scram`` per SCRAM user."""
    out: list[str] = []
    for user in load_secrets(layout).users:
        out += ["--add-scram", scram_format_arg(user)]
    return out


# ----------------------------------------------------------------------------- clients


def client_security(layout: SandboxLayout) -> ClientSecurity:
    """The admin user's client settings for a secure sandbox."""
    admin = load_secrets(layout).admin
    return ClientSecurity(layout.bootstrap_servers, layout.ca_file, admin.name, admin.password)
