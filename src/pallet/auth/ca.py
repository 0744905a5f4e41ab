"""The cluster's certificate authority and the certificates it issues (``cryptography``,
ECDSA P-256); writes key files 0600.

``pallet up --secure`` (or ``pallet master --secure-dir``) makes the CA once; the master's
certificate names every address it serves on; agents send a certificate signing request
when they join and get theirs back for the address they registered, so the master calls
their log servers over verified TLS too.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "make_csr", "private_key_pem", "write_private"]

_DAY = dt.timedelta(days=1)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only (created so, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(temp, 0o600)
    temp.replace(path)


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def make_csr(key: ec.EllipticCurvePrivateKey, common_name: str) -> bytes:
    """A PEM certificate signing request (what an agent sends when it joins)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, name: str, now: dt.datetime, years: int = 10) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Pallet cluster CA {name}")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 365 * years * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / 'ca.key'} is not an EC key")
        cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        return cls(key, cert)

    @classmethod
    def load_or_create(cls, directory: Path, name: str, now: dt.datetime) -> CertificateAuthority:
        if (directory / "ca.key").exists():
            return cls.load(directory)
        ca = cls.create(name, now)
        write_private(directory / "ca.key", private_key_pem(ca.key))
        (directory / "ca.crt").write_bytes(ca.pem())
        return ca

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        public_key: ec.EllipticCurvePublicKey,
        common_name: str,
        names: list[str],
        now: dt.datetime,
        *,
        days: int = 365,
        client: bool = True,
    ) -> bytes:
        """A PEM certificate for ``public_key``, valid for ``names`` (IPs and DNS names) as
        a server and, with ``client``, as a TLS client."""
        usages = [ExtendedKeyUsageOID.SERVER_AUTH]
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + days * _DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_san(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def sign_csr(
        self, csr_pem: bytes, common_name: str, names: list[str], now: dt.datetime
    ) -> bytes:
        """Sign an agent's request for ``names`` (the master decides the names, never the
        request); ``ValueError`` if the request is not a valid, self-signed EC request."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError:
            raise ValueError("not a PEM certificate signing request") from None
        if not csr.is_signature_valid:
            raise ValueError("the request's signature does not verify")
        key = csr.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("the request's key must be an EC key")
        return self.issue(key, common_name, names, now)

    def issue_files(
        self, directory: Path, stem: str, names: list[str], now: dt.datetime
    ) -> tuple[Path, Path]:
        """A key and certificate for ``names`` written as ``<stem>.key`` (0600) and
        ``<stem>.crt``; returns their paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue(key.public_key(), stem, names, now)
        write_private(directory / f"{stem}.key", private_key_pem(key))
        (directory / f"{stem}.crt").write_bytes(cert)
        return directory / f"{stem}.crt", directory / f"{stem}.key"
