#!/usr/bin/env python3
"""Per-hop latency of the ring: the AppHost runs the shipped model on 1, 2 and 3 workers, and each time a streamed
greedy completion of N tokens is timed between its first and last token. A hop's cost is the slope of milliseconds per
token over the number of stages (every token goes once round the ring, one hop per stage).

Usage: python3 bench/ring-latency.py [--repo DIR] [--tokens 200] [--runs 3] [--workers 1,2,3]
  --repo  the checkout whose built AppHost runs (default: this one); an older checkout measures "before"
Build first: dotnet build Exo.sln -c Release (in that checkout)."""
import argparse, json, os, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

import sse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stream_completion(port, tokens):
    body = json.dumps({"model": "exo-tiny", "prompt": "CHAPTER I", "max_tokens": tokens,
                       "temperature": 0, "stream": True}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", body, {"Content-Type": "application/json"})
    times = []
    with urllib.request.urlopen(request, timeout=300) as response:
        for chunk in sse.chunks(response):
            if chunk["choices"] and chunk["choices"][0].get("text"):
                times.append(time.perf_counter())
    return times


def wait_until_gone(repo):
    """The next ring must not share the two cores with this one's services while Aspire's DCP stops them."""
    deadline = time.time() + 90
    while time.time() < deadline:
        if subprocess.run(["pgrep", "-f", os.path.join(repo, "services")], capture_output=True).returncode != 0:
            return
        time.sleep(1)
    raise SystemExit("the previous cluster's services still run 90 s after the AppHost stopped")


def measure(repo, workers, tokens, runs):
    port = free_port()
    apphost = os.path.join(repo, "Exo.AppHost", "bin", "Release", "net10.0", "Exo.AppHost.dll")
    with tempfile.TemporaryDirectory() as data:
        command = ["dotnet", apphost, "--workers", str(workers), "--port", str(port), "--data-dir", data]
        usage = subprocess.run(["dotnet", apphost, "--help"], capture_output=True, text=True).stdout
        # Older AppHosts had no dashboard and no such option.
        if "--no-dashboard" in usage:
            command.append("--no-dashboard")
        # One ring over every worker: newer AppHosts would make a ring of each, since the shipped model fits one.
        if "--replicas" in usage:
            command += ["--replicas", "1"]
        process = subprocess.Popen(command,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            deadline = time.time() + 240
            for line in process.stdout:
                if "ready: " in line:
                    break
                if time.time() > deadline:
                    raise SystemExit(f"the cluster of {workers} was not ready in 240 s")
            else:
                raise SystemExit(f"the AppHost stopped before it was ready (exit code {process.wait()})")
            # Keep reading what it prints (every service's log, headless): a full pipe would stall it.
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            time.sleep(5)  # the services' own start-up work (JIT, registrations, the placement) settles first
            stream_completion(port, 16)  # warm-up: JIT, connections, caches
            per_token = []
            for _ in range(runs):
                times = stream_completion(port, tokens)
                if len(times) < 20:
                    raise SystemExit(f"only {len(times)} tokens streamed")
                per_token.append((times[-1] - times[0]) * 1000 / (len(times) - 1))
            return sorted(per_token)[len(per_token) // 2], len(times)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=90)
            wait_until_gone(repo)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", default="1,2,3", help="the ring sizes to run, lowest and highest give the slope")
    args = parser.parse_args()
    results = {}
    sizes = sorted(int(w) for w in args.workers.split(","))
    for workers in sizes:
        ms, count = measure(args.repo, workers, args.tokens, args.runs)
        results[workers] = ms
        print(f"{workers} worker(s): {ms:.2f} ms per token (median of {args.runs}, {count} tokens streamed)", flush=True)
    low, high = sizes[0], sizes[-1]
    if high > low:
        steps = ", ".join(f"{a}->{b}: {results[b] - results[a]:.2f}" for a, b in zip(sizes, sizes[1:]))
        print(f"per hop: {(results[high] - results[low]) / (high - low):.2f} ms (slope from {low} to {high} stages); {steps}")


if __name__ == "__main__":
    sys.exit(main())
