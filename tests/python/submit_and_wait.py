"""Submits a job with the real syft-code-queue client, then waits until it is approved.

Run by tests/python_interop.rs with SYFTBOX_CLIENT_CONFIG_PATH pointing at the REQUESTER's
client config (its data_dir is the test's SyftBox tree).

usage: submit_and_wait.py OWNER_EMAIL CODE_FOLDER NAME DESCRIPTION TAGS(comma-separated) TIMEOUT_S

Prints, one per line:
  uid=<uid>            as soon as the job is written
  meta=<json>          the metadata the client wrote (its own serialization of the job)
  status=<status>      every time the status read back by get_job changes
  final=<status>       the last status read (approved, or whatever it was at the timeout)
Exits 0 once get_job reports "approved", 3 on timeout.

With SYFT_REVIEWER_ATTEST=<path of the syft-reviewer binary>, the requester proves the job is
theirs right after submit_job, as the README tells requesters to:
`syft-reviewer attest <job folder>` (printing attested=<its output>).
"""

import json
import os
import pathlib
import subprocess
import sys
import time
from datetime import datetime
from uuid import UUID

import syft_code_queue


def status_of(job):
    if job is None:
        return "missing"
    s = job.status
    return getattr(s, "value", str(s))


def client_json(obj):
    """The serializer syft-code-queue uses when it writes metadata.json."""
    if isinstance(obj, (pathlib.Path, UUID)):
        return str(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"Object of type {type(obj)} is not JSON serializable")


def main():
    owner, folder, name, description, tags, timeout = sys.argv[1:7]
    job = syft_code_queue.submit_job(
        owner,
        pathlib.Path(folder),
        name,
        description=description,
        tags=[t for t in tags.split(",") if t],
    )
    uid = str(job.uid)
    print(f"uid={uid}", flush=True)
    print("meta=" + json.dumps(job.model_dump(), default=client_json), flush=True)
    attest = os.environ.get("SYFT_REVIEWER_ATTEST")
    if attest:
        job_folder = pathlib.Path(job.code_folder).parent
        done = subprocess.run(
            [attest, "attest", str(job_folder)], capture_output=True, text=True, check=True
        )
        print("attested=" + done.stdout.strip(), flush=True)

    deadline = time.monotonic() + float(timeout)
    last = None
    while True:
        current = status_of(syft_code_queue.get_job(uid))
        if current != last:
            print(f"status={current}", flush=True)
            last = current
        if current == "approved" or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    print(f"final={last}", flush=True)
    return 0 if last == "approved" else 3


if __name__ == "__main__":
    sys.exit(main())
