"""The emulator's own certificate authority and the server certificate of its database endpoints.

Aurora's endpoints always offer TLS, and clients that log in with a password or an IAM token
require it, so the emulated endpoints offer it too (:mod:`.dbtls` terminates it). Each emulator
makes a small CA and a server certificate for 127.0.0.1, ``localhost`` and ``::1`` (plus its
bind address) in a private directory; clients verify with ``AuroraEmulator.ca_file``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

#: How long the certificates are valid; an emulator process rarely lives this long.
VALIDITY = datetime.timedelta(days=365)
#: Back-dated by this much, so a client whose clock is slightly behind still accepts them.
CLOCK_SKEW = datetime.timedelta(hours=1)
#: The names every server certificate carries (with the reader endpoints' address, whose
#: connections reach the same servers); the emulator's own address is added.
DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1", "127.0.0.2")


@dataclass(frozen=True)
class EndpointCertificates:
    """PEM files of one emulator's CA and server certificate.

    :param ca_file: the CA certificate, for clients (``sslrootcert``, an SSLContext's ``cafile``).
    :param cert_file: the server certificate.
    :param key_file: the server's private key (readable by the owner only).
    """

    ca_file: str
    cert_file: str
    key_file: str

    def server_context(self) -> ssl.SSLContext:
        """A server-side SSLContext with the server certificate (TLS 1.2 or later)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def create_certificates(directory: str, hosts: Iterable[str] = ()) -> EndpointCertificates:
    """Make a CA and a server certificate signed by it, and write them to ``directory``.

    EC P-256 keys: generating them takes about a millisecond, and every TLS client supports them.

    :param directory: an existing private directory (the emulator's temporary directory).
    :param hosts: more names or addresses for the server certificate (``0.0.0.0`` is skipped).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airflow-aurora-wake emulator CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    names: list[x509.GeneralName] = []
    for host in dict.fromkeys((*DEFAULT_HOSTS, *hosts)):
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            names.append(x509.DNSName(host))
            continue
        if not address.is_unspecified:
            names.append(x509.IPAddress(address))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    paths = EndpointCertificates(
        ca_file=os.path.join(directory, "ca.pem"),
        cert_file=os.path.join(directory, "server.pem"),
        key_file=os.path.join(directory, "server-key.pem"),
    )
    _write(paths.ca_file, ca_cert.public_bytes(pem), 0o644)
    _write(paths.cert_file, server_cert.public_bytes(pem), 0o644)
    key_pem = server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(paths.key_file, key_pem, 0o600)
    return paths


def _write(path: str, data: bytes, mode: int) -> None:
    # The key must never be readable by others, not even for a moment: create it with its mode.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
