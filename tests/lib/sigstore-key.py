#!/usr/bin/python3
# sigstore-key.py — throw-away sigstore (cosign-format) keys for the signature
# tests, and a signer that uses them.
#
#   sigstore-key.py DIR PASSPHRASE_FILE [KIND]
#       write DIR/key.private (the private key, encrypted with the passphrase
#       read from PASSPHRASE_FILE) and DIR/key.pub (PEM "PUBLIC KEY").
#       KIND: ec-p256 (default; the only kind the cosign spec requires),
#       ed25519, rsa (3072 bits).  The key comes from the openssl CLI
#       (genpkey, then PKCS#8 DER); this script only wraps it.
#   sigstore-key.py --sign KEY.PRIVATE PASSPHRASE_FILE PAYLOAD_FILE
#       decrypt KEY.PRIVATE and print the base64 signature of the payload as
#       sigstore computes it (ECDSA P-256 / RSA PKCS#1 v1.5 over SHA-256, DER
#       encoded; Ed25519 over the message itself): the value of the
#       dev.cosignproject.cosign/signature annotation.  For skopeo builds that
#       cannot sign with sigstore keys (Debian 12's skopeo 1.9.3 is built with
#       sigstore disabled).
#
# key.private is a PEM block whose body is the JSON that the sigstore tools
# (and containers/image) decrypt:
#   {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
#            "salt": B64},
#    "cipher": {"name": "nacl/secretbox", "nonce": B64},
#    "ciphertext": B64}
# with key = scrypt(passphrase, salt, N, r, p, 32 bytes) and ciphertext =
# NaCl secretbox(key, nonce) of the PKCS#8 DER (MAC first, as PyNaCl and Go's
# secretbox.Seal both put it).  B64 is standard base64 with padding, as Go's
# encoding/json writes []byte.  N=32768 is the "legacy" strength that cosign
# writes; decoders accept only a few fixed (N, r, p) sets.
#
# The PEM type is "ENCRYPTED SIGSTORE PRIVATE KEY" (what cosign writes since
# 2023); SIGSTORE_KEY_PEM_TYPE="ENCRYPTED COSIGN PRIVATE KEY" selects the
# older name, the only one containers/image before v5.25 accepts.
#
# The passphrase is the file's content less one trailing newline (as
# skopeo's --sign-passphrase-file reads it).  Needs Debian's python3-nacl:
# run it with /usr/bin/python3.
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

import nacl.exceptions
import nacl.secret

SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
SCRYPT_MAXMEM = 256 * 1024 * 1024
GENPKEY = {
    "ec-p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "ed25519": ["-algorithm", "ED25519"],
    "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
}
ED25519_OID = bytes.fromhex("06032b6570")  # 1.3.101.112, DER


def die(msg: str, code: int = 1):
    print(f"sigstore-key.py: {msg}", file=sys.stderr)
    sys.exit(code)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def openssl(args, data=None) -> bytes:
    r = subprocess.run(["openssl", *args], input=data, check=False,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:  # (genpkey's progress dots are not worth showing)
        sys.stderr.write(r.stderr.decode(errors="replace"))
        die(f"openssl {args[0]} failed (exit {r.returncode})")
    return r.stdout


def pem_encode(kind: str, der: bytes) -> bytes:
    text = b64(der)
    body = "\n".join(text[i:i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n".encode()


def pem_decode(data: bytes):
    m = re.search(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----",
                  data, re.S)
    if not m:
        die("no PEM block")
    return m.group(1).decode(), base64.b64decode(b"".join(m.group(2).split()))


def read_passphrase(path: str) -> bytes:
    with open(path, "rb") as f:
        p = f.read()
    return p[:-1] if p.endswith(b"\n") else p


def kdf(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=SCRYPT_MAXMEM)


def encrypt(plain: bytes, passphrase: bytes) -> bytes:
    salt = os.urandom(32)
    nonce = os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    key = kdf(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    ciphertext = nacl.secret.SecretBox(key).encrypt(plain, nonce).ciphertext
    doc = {
        "kdf": {"name": "scrypt",
                "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
                "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(ciphertext),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decrypt(blob: bytes, passphrase: bytes) -> bytes:
    doc = json.loads(blob)
    if doc["kdf"]["name"] != "scrypt" or doc["cipher"]["name"] != "nacl/secretbox":
        die("unsupported kdf or cipher")
    prm = doc["kdf"]["params"]
    key = kdf(passphrase, base64.b64decode(doc["kdf"]["salt"]),
              prm["N"], prm["r"], prm["p"])
    try:
        return nacl.secret.SecretBox(key).decrypt(
            base64.b64decode(doc["ciphertext"]),
            base64.b64decode(doc["cipher"]["nonce"]))
    except nacl.exceptions.CryptoError:
        die("decryption failed (wrong passphrase?)")


def generate(out: str, passfile: str, kind: str) -> int:
    if kind not in GENPKEY:
        die(f"unknown key kind {kind!r} (ec-p256, ed25519, rsa)", 2)
    passphrase = read_passphrase(passfile)
    key_pem = openssl(["genpkey", *GENPKEY[kind]])
    pkcs8 = openssl(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"], key_pem)
    pub_der = openssl(["pkey", "-pubout", "-outform", "DER"], key_pem)
    pem_type = os.environ.get("SIGSTORE_KEY_PEM_TYPE",
                              "ENCRYPTED SIGSTORE PRIVATE KEY")
    os.makedirs(out, exist_ok=True)
    fd = os.open(os.path.join(out, "key.private"),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem_encode(pem_type, encrypt(pkcs8, passphrase)))
    with open(os.path.join(out, "key.pub"), "wb") as f:
        f.write(pem_encode("PUBLIC KEY", pub_der))
    return 0


def sign(keyfile: str, passfile: str, payload: str) -> int:
    with open(keyfile, "rb") as f:
        kind, body = pem_decode(f.read())
    if kind not in ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"):
        die(f"unsupported PEM type {kind}")
    pkcs8 = decrypt(body, read_passphrase(passfile))
    with tempfile.TemporaryDirectory() as tmp:
        kpath = os.path.join(tmp, "key.der")
        fd = os.open(kpath, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pkcs8)
        if ED25519_OID in pkcs8[:16]:
            sig = openssl(["pkeyutl", "-sign", "-rawin", "-keyform", "DER",
                           "-inkey", kpath, "-in", payload])
        else:
            sig = openssl(["dgst", "-sha256", "-keyform", "DER",
                           "-sign", kpath, payload])
    print(b64(sig))
    return 0


def main() -> int:
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == "--sign":
        return sign(a[1], a[2], a[3])
    if len(a) in (2, 3) and not a[0].startswith("-"):
        return generate(a[0], a[1], a[2] if len(a) == 3 else "ec-p256")
    print(f"usage: {sys.argv[0]} DIR PASSPHRASE_FILE [ec-p256|ed25519|rsa]\n"
          f"       {sys.argv[0]} --sign KEY.PRIVATE PASSPHRASE_FILE PAYLOAD_FILE",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
