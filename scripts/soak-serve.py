#!/usr/bin/env python3
"""Soak test of `serve`: saturating load for a fixed time, mixing valid and
invalid requests, with a bundle reload every minute. Records the server's
resident memory over time, latency percentiles of the scored requests, the
status counts, and dropped requests (connection failures, 5xx, or a valid
request answered with anything but 200 or 429). Exits 1 when a request was
dropped or a reload failed.

    cargo build --release -p serve
    scripts/soak-serve.py --minutes 30 --out bench/soak-serve.json

Python standard library only. Prints the CPU model beside the numbers.
"""

import argparse
import json
import random
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def load_prompts(path, limit=2000):
    prompts = []
    with open(path, newline="\n") as f:
        for line in f:
            if not line.strip():
                continue
            for event in json.loads(line)["events"]:
                prompts.append(event["prompt"])
                if len(prompts) >= limit:
                    return prompts
    return prompts


def valid_body(rng, prompts, n):
    events = [
        {"ts": f"2026-02-10T12:{i:02d}:00Z", "prompt": rng.choice(prompts)}
        for i in range(rng.randint(1, 10))
    ]
    sessions = [
        {"session_id": f"soak-{n}-{k}", "account_id": f"acct-{rng.randint(0, 999)}", "events": events}
        for k in range(rng.randint(1, 4))
    ]
    return json.dumps({"sessions": sessions}).encode()


INVALID = [
    b"{not json",
    b'{"sessions": 7}',
    b'{"sessions": [{"session_id": 1}]}',
    b'{"prompts": []}',
    b"\xff\xfe\x00garbage",
    b'{"sessions": [{"session_id": "x", "account_id": "y", "events": [{"ts": "yesterday", "prompt": "hi"}]}]}',
]


def request(url, body, timeout, headers=None):
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("content-type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code
    except Exception:  # connection refused, reset, timeout
        return None


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--serve", default="target/release/serve", help="serve binary")
    p.add_argument("--model-dir", default="models/distill-guard-minilm")
    p.add_argument("--data", default="data/default/test.jsonl", help="sessions whose prompts the requests carry")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--clients", type=int, default=32, help="concurrent clients")
    p.add_argument("--invalid-share", type=float, default=0.2)
    p.add_argument("--reload-seconds", type=float, default=60.0)
    p.add_argument("--sample-seconds", type=float, default=30.0, help="RSS sampling interval")
    p.add_argument("--port", type=int, default=18093)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", help="JSON summary to write")
    args = p.parse_args()

    token = "soak-admin-token"
    server = subprocess.Popen(
        [args.serve, "--model-dir", args.model_dir, "--addr", f"127.0.0.1:{args.port}", "--admin-token", token],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{args.port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{base}/ready", timeout=1) as r:
                if r.status == 200:
                    break
        except Exception:
            time.sleep(0.5)
    else:
        server.kill()
        sys.exit("serve did not become ready")

    prompts = load_prompts(args.data)
    stop = time.time() + args.minutes * 60
    lock = threading.Lock()
    latencies, statuses, dropped = [], {}, []

    def client(i):
        rng = random.Random(args.seed + i)
        n = 0
        while time.time() < stop:
            n += 1
            valid = rng.random() >= args.invalid_share
            body = valid_body(rng, prompts, f"{i}-{n}") if valid else rng.choice(INVALID)
            started = time.perf_counter()
            status = request(f"{base}/v1/score", body, timeout=60)
            took = time.perf_counter() - started
            with lock:
                key = f"{'valid' if valid else 'invalid'} {status}"
                statuses[key] = statuses.get(key, 0) + 1
                if status is None or status >= 500 or (valid and status not in (200, 429)):
                    dropped.append(key)
                if valid and status == 200:
                    latencies.append(took)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    started = time.time()
    rss, reloads, next_reload, next_sample = [], [], started + args.reload_seconds, started
    while time.time() < stop:
        now = time.time()
        if now >= next_sample:
            rss.append((round(now - started), rss_kib(server.pid)))
            next_sample += args.sample_seconds
        if now >= next_reload:
            body = json.dumps({"model_dir": args.model_dir.rstrip("/").split("/")[-1]}).encode()
            reloads.append(request(f"{base}/admin/reload", body, 120, {"authorization": f"Bearer {token}"}))
            next_reload += args.reload_seconds
        time.sleep(0.5)
    for t in threads:
        t.join()
    rss.append((round(time.time() - started), rss_kib(server.pid)))
    server.terminate()
    _, log = server.communicate(timeout=60)
    panics = len(re.findall(rb"panicked", log))

    latencies.sort()
    summary = {
        "cpu": cpu_model(),
        "minutes": args.minutes,
        "clients": args.clients,
        "invalid_share": args.invalid_share,
        "requests": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
        "dropped": len(dropped),
        "panics_in_log": panics,
        "reloads": len(reloads),
        "reloads_failed": sum(1 for r in reloads if r != 200),
        "latency_s": {q: percentile(latencies, v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
        "scored_requests_per_s": len(latencies) / (args.minutes * 60),
        "rss_kib": rss,
        "exit_status": server.returncode,
    }
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    bad = summary["dropped"] or summary["reloads_failed"] or panics
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
