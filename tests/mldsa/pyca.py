"""ML-DSA by another implementation: PyPI's `cryptography` (OpenSSL 4), with dilithium-py
for the expanded private key (`cryptography` writes only the seed form).

  pyca.py keygen LEVEL CN DIR
      one key, as PKCS#8 PEM in the three forms of draft-ietf-lamps-dilithium-certificates
      (seed.pem, expanded.pem, both.pem, all mode 0600) and its self-signed certificate
      (cert.pem), signed by `cryptography`, with the extensions of the kernel's genkey.
  pyca.py encrypt KEY PASSFILE OUT
      KEY (seed form) as an encrypted PKCS#8 PEM (PBES2, `cryptography`'s best), 0600.
  pyca.py verify CERT SIG MESSAGE
      pure ML-DSA verification of SIG over MESSAGE (files) with CERT's key; exit 0 if valid.
  pyca.py check-cert CERT
      the certificate's own signature, checked by `cryptography`.
"""

import datetime
import os
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa
from cryptography.x509.oid import NameOID
from dilithium_py.ml_dsa import ML_DSA_44, ML_DSA_65, ML_DSA_87

LEVELS = {
    "44": (mldsa.MLDSA44PrivateKey, ML_DSA_44, "11"),
    "65": (mldsa.MLDSA65PrivateKey, ML_DSA_65, "12"),
    "87": (mldsa.MLDSA87PrivateKey, ML_DSA_87, "13"),
}


def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82, n >> 8, n & 0xFF])
    return bytes([tag]) + length + body


def pkcs8(oid_last, private_key):
    # id-ml-dsa-*: 2.16.840.1.101.3.4.3.17-19, parameters absent.
    alg = tlv(0x30, tlv(0x06, bytes.fromhex("6086480165030403" + oid_last)))
    return tlv(0x30, tlv(0x02, b"\x00") + alg + tlv(0x04, private_key))


def pem(label, der):
    import base64

    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return ("-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)).encode()


def write_secret(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def keygen(level, cn, out):
    cls, dilithium, oid_last = LEVELS[level]
    seed = os.urandom(32)
    key = cls.from_seed_bytes(seed)
    public, expanded = dilithium.key_derive(seed)
    assert public == key.public_key().public_bytes_raw(), "the two implementations disagree"
    os.makedirs(out, exist_ok=True)
    # Seed form as `cryptography` writes it (and the only one it reads); the others by
    # hand from dilithium-py's expansion of the same seed.
    seed_der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forms = {
        "seed": seed_der,
        "expanded": pkcs8(oid_last, tlv(0x04, expanded)),
        "both": pkcs8(oid_last, tlv(0x30, tlv(0x04, seed) + tlv(0x04, expanded))),
    }
    for name, der in forms.items():
        write_secret(os.path.join(out, name + ".pem"), pem("PRIVATE KEY", der))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=36500))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=False
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False)
        .sign(key, None)
    )
    with open(os.path.join(out, "cert.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def encrypt(key_path, pass_path, out):
    key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
    password = open(pass_path, "rb").read().rstrip(b"\n")
    write_secret(
        out,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        ),
    )


def verify(cert_path, sig_path, msg_path):
    cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
    try:
        cert.public_key().verify(open(sig_path, "rb").read(), open(msg_path, "rb").read())
    except InvalidSignature:
        print("invalid signature")
        return 1
    return 0


def check_cert(cert_path):
    data = open(cert_path, "rb").read()
    cert = (
        x509.load_pem_x509_certificate(data)
        if data.startswith(b"-----")
        else x509.load_der_x509_certificate(data)
    )
    cert.verify_directly_issued_by(cert)
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "keygen":
        keygen(*sys.argv[2:5])
    elif cmd == "encrypt":
        encrypt(*sys.argv[2:5])
    elif cmd == "verify":
        sys.exit(verify(*sys.argv[2:5]))
    elif cmd == "check-cert":
        sys.exit(check_cert(sys.argv[2]))
    else:
        sys.exit(__doc__)
