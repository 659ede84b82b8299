#!/usr/bin/env python3
"""Make a certificate chain for model-signing's certificate mode (used by scripts/interop-oms
and scripts/make-oms-fixtures; needs the `cryptography` package, which model-signing's
virtualenv has).

    oms-chain.py OUT_DIR LEAF_PUBLIC_KEY.pem

writes to OUT_DIR:

    ca.pem            self-signed root CA (P-256), the trust anchor verifiers are given
    intermediate.pem  intermediate CA issued by the root (pathLen 0)
    chain.pem         intermediate.pem then ca.pem: what the signer embeds in the bundle
    leaf.pem          signing certificate for LEAF_PUBLIC_KEY, issued by the intermediate:
                      KeyUsage digitalSignature (critical), ExtendedKeyUsage codeSigning,
                      URI SAN https://ci.example.com/vouch/oms-fixtures
    leaf-expired.pem  the same, but valid only during 2020 (expired)
    leaf-server-auth.pem        like leaf.pem, but ExtendedKeyUsage serverAuth only
    leaf-key-encipherment.pem   like leaf.pem, but KeyUsage keyEncipherment only, no EKU
    leaf-no-usage.pem           like leaf.pem, but neither KeyUsage nor ExtendedKeyUsage
    other-ca.pem      an unrelated self-signed root CA (nothing chains to it)

Validity is fixed so that recorded fixtures keep their meaning whatever the clock says:
every certificate starts on 2020-01-01 (model-signing checks the chain at the leaf's
notBefore); the CAs and leaf.pem end on 2099-12-31, leaf-expired.pem on 2021-01-01.
The CA private keys are generated in memory and thrown away.
"""

import datetime
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

START = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
EXPIRED = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)
FAR = datetime.datetime(2099, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
IDENTITY = "https://ci.example.com/vouch/oms-fixtures"


def name(common_name):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vouch test fixtures"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def key_usage(digital_signature=False, cert_sign=False):
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def certificate(subject, subject_key, issuer, issuer_key, not_before, not_after, ca, path_len=None,
                usage="code-signing"):
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(subject_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        return builder.add_extension(key_usage(cert_sign=True), critical=True).sign(
            issuer_key, hashes.SHA256()
        )
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(IDENTITY)]), critical=False
    )
    if usage in ("code-signing", "server-auth"):
        builder = builder.add_extension(key_usage(digital_signature=True), critical=True)
        eku = ExtendedKeyUsageOID.CODE_SIGNING if usage == "code-signing" else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    elif usage == "key-encipherment":
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    elif usage != "no-usage":
        raise ValueError(usage)
    return builder.sign(issuer_key, hashes.SHA256())


def root_ca(common_name):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate(
        name(common_name), key.public_key(), name(common_name), key,
        START, FAR, ca=True, path_len=1,
    )
    return key, cert


def pem(*certs):
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR LEAF_PUBLIC_KEY.pem")
    out = pathlib.Path(sys.argv[1])
    leaf_key = serialization.load_pem_public_key(pathlib.Path(sys.argv[2]).read_bytes())

    ca_key, ca = root_ca("vouch test root CA")
    int_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = certificate(
        name("vouch test intermediate CA"), int_key.public_key(), ca.subject, ca_key,
        START, FAR, ca=True, path_len=0,
    )
    leaf = certificate(
        name("vouch test model signer"), leaf_key, intermediate.subject, int_key,
        START, FAR, ca=False,
    )
    expired = certificate(
        name("vouch test model signer (expired)"), leaf_key, intermediate.subject, int_key,
        START, EXPIRED, ca=False,
    )
    odd_leaves = {
        usage: certificate(
            name(f"vouch test model signer ({usage})"), leaf_key, intermediate.subject, int_key,
            START, FAR, ca=False, usage=usage,
        )
        for usage in ("server-auth", "key-encipherment", "no-usage")
    }
    _, other_ca = root_ca("vouch test unrelated root CA")

    out.mkdir(parents=True, exist_ok=True)
    (out / "ca.pem").write_bytes(pem(ca))
    (out / "intermediate.pem").write_bytes(pem(intermediate))
    (out / "chain.pem").write_bytes(pem(intermediate, ca))
    (out / "leaf.pem").write_bytes(pem(leaf))
    (out / "leaf-expired.pem").write_bytes(pem(expired))
    for usage, cert in odd_leaves.items():
        (out / f"leaf-{usage}.pem").write_bytes(pem(cert))
    (out / "other-ca.pem").write_bytes(pem(other_ca))


if __name__ == "__main__":
    main()
