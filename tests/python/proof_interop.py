"""The other side of proven senders, with PyPI syft-crypto and Python's `cryptography`:

  bootstrap CONFIG          make keys with syft-crypto's bootstrap_user
  load CONFIG               load keys with syft-crypto (made by either tool); print the public key
  verify JOB_DIR SIGNATURE  check a job's attestation with `cryptography` alone (exit 1 if bad)
  sign CONFIG JOB_DIR SIGNATURE   attest a job with syft-crypto's key and `cryptography`
"""
import base64
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def statement(meta, signature):
    return json.dumps(
        {
            "created_at": meta["created_at"],
            "requester_email": meta["requester_email"].lower(),
            "signature": signature,
            "target_email": meta["target_email"].lower(),
            "type": "syft-reviewer.job-attestation",
            "uid": meta["uid"],
            "v": 1,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def client(config):
    from syft_core import Client

    return Client.load(config)


def main():
    cmd = sys.argv[1]
    if cmd == "bootstrap":
        from syft_crypto import bootstrap_user

        bootstrap_user(client(sys.argv[2]))
    elif cmd == "load":
        from syft_crypto.did_utils import did_path, get_did_document, get_identity_public_key_from_did
        from syft_crypto.key_storage import load_private_keys

        c = client(sys.argv[2])
        ik, _spk = load_private_keys(c)
        pub = ik.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        published = get_identity_public_key_from_did(get_did_document(c, c.config.email))
        raw = published.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert raw == pub, "did.json does not publish the private key's public half"
        print("public=" + base64.urlsafe_b64encode(pub).decode().rstrip("="))
    elif cmd == "verify":
        job, signature = Path(sys.argv[2]), sys.argv[3]
        meta = json.loads((job / "metadata.json").read_text())
        att = meta["attestation"]
        email = meta["requester_email"].lower()
        did = json.loads((job.parents[5] / email / "public" / "did.json").read_text())
        vm = next(m for m in did["verificationMethod"] if m["id"].endswith("#identity-key"))
        assert att["key"] == vm["id"], (att["key"], vm["id"])
        key = Ed25519PublicKey.from_public_bytes(b64d(vm["publicKeyJwk"]["x"]))
        key.verify(b64d(att["sig"]), statement(meta, signature))  # raises if bad
        print("verified")
    elif cmd == "sign":
        from syft_crypto.key_storage import load_private_keys

        c = client(sys.argv[2])
        job, signature = Path(sys.argv[3]), sys.argv[4]
        ik, _spk = load_private_keys(c)
        meta = json.loads((job / "metadata.json").read_text())
        from syft_crypto.did_utils import generate_did_web_id

        key_id = generate_did_web_id(c.config.email, c.config.server_url.host) + "#identity-key"
        sig = ik.sign(statement(meta, signature))
        meta["attestation"] = {
            "v": 1,
            "alg": "Ed25519",
            "key": key_id,
            "sig": base64.urlsafe_b64encode(sig).decode().rstrip("="),
        }
        (job / "metadata.json").write_text(json.dumps(meta, indent=2))
        print("signed")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
