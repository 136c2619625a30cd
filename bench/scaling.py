#!/usr/bin/env python3
"""Throughput as the cluster grows (issue 18): starts the registry and the planner (placements in memory, no Redis),
1 to 4 shard workers and the API as real processes, each worker on cores of its own where the machine has enough
(taskset, and the engine's thread count set to its cores), and drives 1, 8 and 32 concurrent streamed greedy
completions of a fixed length. Prints a table and writes JSON.

Suites:
  fit     a model that fits one node: 1..4 workers, pipeline-only (Planner__Replicas=1), replicas-only (auto) and
          mixed (2) placements; goal: aggregate at 32 streams with 2 / 4 workers >= 1.8x / 3.4x one worker's
  three   the same model on 3 workers whose --memory-mb makes it need a 3-stage ring; goal: 32 streams >= 2.5x one
  hetero  2 workers with equal memory, one on 4 cores and one on 1 (4:1 speed): the planned split beside splits forced
          by capping one worker's memory; goal: the planned one's time per token within 15 % of the best

Usage: bench/scaling.sh (which builds or finds the services and makes the model) or directly:
  python3 bench/scaling.py --model DIR --bin DIR [--dotnet PATH] [--suites fit,three,hetero] [--workers 1,2,3,4]
                           [--streams 1,8,32] [--tokens 32] [--replicas 1,auto,2] [--out FILE.json]
  --bin holds Exo.Registry/, Exo.Planner/, Exo.ShardWorker/ and Exo.Api/, each with its .dll"""
import argparse, json, os, re, signal, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request

import sse

SERVICES = ("Exo.Registry", "Exo.Planner", "Exo.ShardWorker", "Exo.Api")
PLACEMENTS = {"1": "pipeline", "auto": "replicas", "2": "mixed"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


class ModelShape:
    """What the planner will count for the model (as services/Exo.Planner's ModelProfile does), to size --memory-mb."""

    def __init__(self, folder, context):
        config = json.load(open(os.path.join(folder, "config.json")))
        h, ffn, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
        heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
        head_dim = config.get("head_dim") or h // heads
        q, kv = heads * head_dim, kv_heads * head_dim
        element = {"float32": 4, "float16": 2, "bfloat16": 2}[config.get("torch_dtype", "float16")]
        self.layers = layers
        self.layer_bytes = (2 * h + q * h + 2 * kv * h + h * q + 3 * ffn * h) * element + 2 * kv * 4 * context
        embedding = config["vocab_size"] * h * element
        tied = config.get("tie_word_embeddings", False)
        # A stage of a ring of two is the first (embeddings) or the last (the final norm and the head, which is the
        # embeddings when tied): either way about the embeddings and a row.
        self.fixed_bytes = embedding + h * element
        self.total_bytes = embedding + h * element + (0 if tied else embedding) + layers * self.layer_bytes

    def megabytes_for_layers(self, layers):
        """Memory that holds `layers` layers beside a ring end's fixed part, and not one more."""
        return int((self.fixed_bytes + (layers + 0.5) * self.layer_bytes) / 2**20)


class Cluster:
    """One configuration's processes; stopped (every process group) on exit."""

    def __init__(self, args, run_dir, workers, replicas, memory_mb=None, cpu_sets=None, threads=None, worker_bin=None):
        self.args, self.run_dir, self.processes = args, run_dir, []
        self.workers = workers
        self.worker_grpc = []
        os.makedirs(run_dir, exist_ok=True)
        registry, planner, api = (free_port(), free_port()), (free_port(), free_port()), free_port()
        self.api = f"http://127.0.0.1:{api}"
        self.registry_grpc, self.planner_grpc = f"http://127.0.0.1:{registry[1]}", f"http://127.0.0.1:{planner[1]}"
        self.planner_log = os.path.join(run_dir, "planner.log")
        service_cpus = args.service_cpus
        self.start("registry", "Exo.Registry", endpoints(registry), {}, service_cpus)
        self.start("planner", "Exo.Planner", endpoints(planner), {
            "services__registry__grpc__0": self.registry_grpc,
            "Planner__Models__0": args.model,
            "Planner__ContextTokens": str(args.context),
            "Planner__Replicas": replicas,
        }, service_cpus)
        for i in range(workers):
            environment = {
                "services__registry__grpc__0": self.registry_grpc,
                "services__planner__grpc__0": self.planner_grpc,
                "ShardWorker__DataDir": os.path.join(run_dir, f"worker-{i + 1}"),
                "ShardWorker__ModelsDir": os.path.dirname(args.model),
                "ShardWorker__KvCacheMegabytes": str(args.kv_cache_mb),
                "ShardWorker__Backend": "cpu",
                # The engine runs one kernel thread per processor it is given.
                "DOTNET_PROCESSOR_COUNT": str(threads[i] if threads else args.cores_per_worker),
            }
            if memory_mb and memory_mb[i]:
                environment["ShardWorker__MemoryMegabytes"] = str(memory_mb[i])
            ports = (free_port(), free_port())
            self.worker_grpc.append(f"http://127.0.0.1:{ports[1]}")
            self.start(f"worker-{i + 1}", "Exo.ShardWorker", endpoints(ports), environment,
                       cpu_sets[i] if cpu_sets else None, worker_bin)
        self.start("api", "Exo.Api", [f"--Kestrel:Endpoints:http:Url={self.api}"], {
            "services__registry__grpc__0": self.registry_grpc,
            "services__planner__grpc__0": self.planner_grpc,
            "Api__Models__0": args.model,
        }, service_cpus)

    def start(self, name, service, argv, environment, cpus, folder=None):
        dll = os.path.join(folder or os.path.join(self.args.bin, service), service + ".dll")
        command = [self.args.dotnet, dll, *argv]
        if cpus is not None:
            command = ["taskset", "-c", cpus, *command]
        env = dict(os.environ, Logging__Console__FormatterName="simple", Logging__Console__FormatterOptions__SingleLine="true",
                   **environment)
        log = open(os.path.join(self.run_dir, f"{name}.log"), "w")
        self.processes.append((name, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)))

    def wait_ready(self, timeout):
        """Until every worker is registered and the model's placement is ready and has stopped changing."""
        deadline, stable_since, last = time.time() + timeout, None, None
        while time.time() < deadline:
            for name, process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {process.returncode}: see {self.run_dir}/{name}.log")
            try:
                cluster = http_json(self.api + "/api/cluster")
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                time.sleep(0.3)
                continue
            placements = [p for p in cluster.get("placements", []) if p.get("model") == self.model_id]
            ready = (len(cluster.get("nodes", [])) == self.workers and bool(placements)
                     and all(p.get("ready") for p in placements + rings_of(placements)))
            key = json.dumps(placements, sort_keys=True)
            if not ready or key != last:
                stable_since, last = (time.time() if ready else None), key
            elif time.time() - stable_since > 2:
                return placements
            time.sleep(0.3)
        raise RuntimeError(f"the cluster of {self.workers} was not ready in {timeout} s: see {self.run_dir}")

    @property
    def model_id(self):
        return os.path.basename(os.path.normpath(self.args.model))

    def predicted(self):
        """The planner's prediction for its latest placement: (ms per token, slowest stage ms)."""
        found = re.findall(r"predicted ([\d.]+) ms/token, slowest stage ([\d.]+) ms", open(self.planner_log).read())
        return tuple(map(float, found[-1])) if found else None

    def stop(self):
        for _, process in reversed(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for _, process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def endpoints(ports):
    return [f"--Kestrel:Endpoints:http:Url=http://127.0.0.1:{ports[0]}", f"--Kestrel:Endpoints:grpc:Url=http://127.0.0.1:{ports[1]}"]


def stream(api, model, prompt, tokens, banned):
    """One streamed greedy completion: (sent, first chunk, last chunk, completion tokens)."""
    body = {"model": model, "prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, "logit_bias": {str(t): -100 for t in banned}}
    request = urllib.request.Request(api + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    sent = time.perf_counter()
    first = last = None
    count = 0
    with urllib.request.urlopen(request, timeout=600) as response:
        for chunk in sse.chunks(response):
            if "error" in chunk:
                raise RuntimeError(f"the stream failed: {chunk['error']}")
            if chunk.get("choices"):
                last = time.perf_counter()
                first = first or last
            if chunk.get("usage"):
                count = chunk["usage"]["completion_tokens"]
    return sent, first, last, count


def drive(api, model, streams, tokens, banned):
    """`streams` completions at once; aggregate tok/s, mean per-stream decode tok/s, median time to first token."""
    results, errors = [None] * streams, []
    barrier = threading.Barrier(streams)

    def one(i):
        try:
            barrier.wait()
            results[i] = stream(api, model, f"{i}: Once upon a time", tokens, banned)
        except Exception as e:  # a failed stream is reported, never counted
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} of {streams} streams failed: {errors[0]}")
    start = min(r[0] for r in results)
    end = max(r[2] for r in results)
    total = sum(r[3] for r in results)
    per_stream = [(r[3] - 1) / (r[2] - r[1]) for r in results if r[3] > 1 and r[2] > r[1]]
    return {
        "streams": streams,
        "tokens": total,
        "seconds": round(end - start, 3),
        "aggregate_tok_s": round(total / (end - start), 2),
        "per_stream_tok_s": round(statistics.mean(per_stream), 2) if per_stream else None,
        "ttft_ms": round(statistics.median((r[1] - r[0]) * 1000 for r in results), 1),
    }


class OverBudget(Exception):
    """--budget seconds have passed: the configurations not yet run are left out."""


def run_config(args, label, workers, replicas, streams, banned, memory_mb=None, cpu_sets=None, threads=None, worker_bin=None):
    if args.budget and time.time() - args.started > args.budget:
        raise OverBudget(label)
    run_dir = tempfile.mkdtemp(prefix=f"{label}-", dir=args.work)
    cluster = Cluster(args, run_dir, workers, replicas, memory_mb, cpu_sets or args.worker_cpus[:workers], threads, worker_bin)
    try:
        placements = cluster.wait_ready(args.ready_timeout)
        # Warm-up: JIT, connections, and a batched step on every stage.
        drive(cluster.api, cluster.model_id, min(8, max(streams)), 4, banned)
        runs = []
        for s in streams:
            result = drive(cluster.api, cluster.model_id, s, args.tokens, banned)
            print(f"  {label}: {s} stream(s): {result['aggregate_tok_s']} tok/s, {result['per_stream_tok_s']} per stream, "
                  f"first token {result['ttft_ms']} ms", flush=True)
            runs.append(result)
        return {"label": label, "workers": workers, "replicas": replicas, "memory_mb": memory_mb, "threads": threads,
                "worker_endpoints": cluster.worker_grpc, "placements": placements, "predicted": cluster.predicted(), "runs": runs, "logs": run_dir}
    finally:
        cluster.stop()


def rings_of(placements):
    """Each ring of the placements: a placement lists its rings (replicas), or is one ring itself."""
    return [ring for p in placements for ring in p.get("rings", [p])]


def layer_counts(placements):
    """Layers per stage of each ring, e.g. [[8, 8]] or [[16], [16]]."""
    return [[s["layerEnd"] - s["layerStart"] for s in ring.get("stages", [])] for ring in rings_of(placements)]


def shape_text(placements):
    return " + ".join("/".join(map(str, ring)) for ring in layer_counts(placements))


def cpu_layout(args):
    """Each worker its own cores where the machine has them for the most workers asked for; the services the rest (or
    any core, when none is left). The 4:1 pair takes 4 cores and 1, where there are 5."""
    cores = sorted(os.sched_getaffinity(0))
    most = max([int(w) for w in args.workers.split(",")] + [3 if "three" in args.suites else 1])
    per = args.cores_per_worker or max(1, (len(cores) - 2) // most)
    args.cores_per_worker = per
    pin = can_pin(cores[0])
    if len(cores) >= most * per and pin:
        args.worker_cpus = [",".join(map(str, cores[i * per:(i + 1) * per])) for i in range(most)]
        args.service_cpus = ",".join(map(str, cores[most * per:])) or None
    else:
        args.worker_cpus, args.service_cpus = [None] * most, None
    pair = len(cores) >= 5 and pin
    args.fast_cpus, args.slow_cpus = (",".join(map(str, cores[:4])), str(cores[4])) if pair else (None, None)
    return cores


def can_pin(core):
    """Whether taskset is there and the machine lets a process be pinned (a sandbox may not)."""
    try:
        return subprocess.run(["taskset", "-c", str(core), "true"], capture_output=True).returncode == 0
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a Hugging Face model folder (bench/scaling.sh makes a synthetic one)")
    parser.add_argument("--bin", required=True, help="folder with the published services, one subfolder each")
    parser.add_argument("--dotnet", default="dotnet")
    parser.add_argument("--baseline-bin", help="a shard worker build to compare with (its folder): the pipeline-only and "
                        "3-stage-ring configurations run with it too, labelled -before")
    parser.add_argument("--suites", default="fit,three,hetero")
    parser.add_argument("--workers", default="1,2,3,4")
    parser.add_argument("--streams", default="1,8,32")
    parser.add_argument("--replicas", default="1,auto,2", help="Planner__Replicas values: 1 pipeline, auto replicas, 2 mixed")
    parser.add_argument("--tokens", type=int, default=32, help="max_tokens of every completion")
    parser.add_argument("--context", type=int, default=1024, help="the context the planner plans KV cache for")
    parser.add_argument("--kv-cache-mb", type=int, default=512)
    parser.add_argument("--cores-per-worker", type=int, default=0, help="default: (cores - 2) / the most workers asked for")
    parser.add_argument("--hetero-splits", default="auto", help="fast worker's layer counts to force, or auto (half, and one fewer and one more than planned)")
    parser.add_argument("--ready-timeout", type=int, default=180)
    parser.add_argument("--out", default="scaling.json")
    parser.add_argument("--budget", type=int, default=0, help="seconds after which no further configuration starts (0: none)")
    parser.add_argument("--work", default=None, help="where each configuration's logs go (default: a temporary folder)")
    args = parser.parse_args()
    args.model = os.path.abspath(args.model)
    args.started = time.time()
    # Stopped from outside, it still stops its services (each runs in a session of its own) and keeps what it measured.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.work = args.work or tempfile.mkdtemp(prefix="exo-scaling-")
    os.makedirs(args.work, exist_ok=True)
    cores = cpu_layout(args)
    streams = [int(s) for s in args.streams.split(",")]
    suites = args.suites.split(",")
    config = json.load(open(os.path.join(args.model, "config.json")))
    vocab = config["vocab_size"]
    # A synthetic model's ids are its bytes, then unused ids, then 4 specials. Random weights pick any of them: an end
    # token would cut a stream short, and a byte that is not whole UTF-8 (or an unused id) streams no text, so its
    # token's time is not seen. Where logit_bias can name them all, every id but printable ASCII is banned; else the specials.
    printable = range(32, 127)
    banned = [t for t in range(vocab) if t not in printable] if vocab - len(printable) <= 1024 else list(range(vocab - 4, vocab))
    if len(banned) == 4:
        print("warning: the vocabulary is too large to keep the output to ASCII: per-stream rates and first tokens may come late", flush=True)
    shape = ModelShape(args.model, args.context)
    print(f"{len(cores)} cores; workers on {args.cores_per_worker} core(s) each "
          f"({'pinned: ' + ' | '.join(c or '-' for c in args.worker_cpus) if args.worker_cpus[0] else 'not pinned: too few cores'}), "
          f"services on {args.service_cpus or 'any'}; model {os.path.basename(args.model)}: {shape.total_bytes / 1e6:.0f} MB "
          f"with KV for {args.context} tokens, {shape.layers} layers", flush=True)
    report = {"machine": {"cores": len(cores), "cores_per_worker": args.cores_per_worker, "worker_cpus": args.worker_cpus,
                          "service_cpus": args.service_cpus, "cpu": cpu_name()},
              "model": {"folder": args.model, "bytes_with_kv": shape.total_bytes, "layers": shape.layers, "context": args.context},
              "tokens": args.tokens, "configs": [], "goals": {}}

    def save():
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)

    def record(result):
        report["configs"].append(result)
        save()
        return result

    try:
        run_suites(args, suites, streams, banned, shape, record)
    except OverBudget as e:
        print(f"--budget of {args.budget} s spent: {e} and the configurations after it were not run", flush=True)
    goals(report)
    print_table(report)
    save()
    print(f"wrote {args.out}; logs under {args.work}")


def run_suites(args, suites, streams, banned, shape, record):
    if "fit" in suites:
        for w in [int(x) for x in args.workers.split(",")]:
            for r in args.replicas.split(","):
                # One worker is one placement whatever the setting; at most 2 rings equals as many as fit with 2 workers.
                if (w == 1 and r != args.replicas.split(",")[0]) or (w <= 2 and r == "2"):
                    continue
                name = "single" if w == 1 else PLACEMENTS.get(r, f"replicas-{r}")
                record(run_config(args, f"fit-{w}w-{name}", w, r, streams, banned))
                if args.baseline_bin and w > 1 and r == "1":
                    record(run_config(args, f"fit-{w}w-{name}-before", w, r, streams, banned, worker_bin=args.baseline_bin))
    if "three" in suites:
        # Each worker holds about 40 % of the model: two cannot hold it, three can.
        mb = int(shape.total_bytes * 0.4 / 2**20)
        record(run_config(args, "three", 3, "auto", streams, banned, memory_mb=[mb] * 3))
        if args.baseline_bin:
            record(run_config(args, "three-before", 3, "auto", streams, banned, memory_mb=[mb] * 3, worker_bin=args.baseline_bin))
    if "hetero" in suites:
        hetero(args, record, streams, banned, shape)


def hetero(args, record, streams, banned, shape):
    """A 4:1 pair: the fast worker on 4 cores (4 kernel threads), the slow on 1; equal memory unless a split is forced."""
    cpus = [args.fast_cpus, args.slow_cpus]
    threads = [4, 1]
    chosen = [s for s in streams if s in (1, max(streams))]
    planned = record(run_config(args, "hetero-planned", 2, "1", chosen, banned, cpu_sets=cpus, threads=threads))
    fast_layers = fast_layer_count(planned)
    if args.hetero_splits == "auto":
        half = shape.layers // 2
        candidates = [half, fast_layers - 1, fast_layers + 1]
    else:
        candidates = [int(x) for x in args.hetero_splits.split(",")]
    for n in sorted(set(c for c in candidates if 1 <= c < shape.layers and c != fast_layers)):
        # Capping the fast worker keeps it to n layers; capping the slow one gives the fast one the rest.
        memory = [shape.megabytes_for_layers(n), None] if n < fast_layers else [None, shape.megabytes_for_layers(shape.layers - n)]
        result = run_config(args, f"hetero-fast{n}", 2, "1", chosen, banned, memory_mb=memory, cpu_sets=cpus, threads=threads)
        result["forced_fast_layers"] = n
        record(result)


def fast_layer_count(result):
    """Layers the fast worker (worker-1) holds, found by its endpoint among the stages."""
    fast = result["worker_endpoints"][0].rstrip("/")
    for ring in rings_of(result["placements"]):
        for s in ring.get("stages", []):
            if s.get("endpoint", "").rstrip("/") == fast:
                return s["layerEnd"] - s["layerStart"]
    raise RuntimeError(f"the fast worker {fast} has no stage in {result['placements']}")


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def at(result, streams):
    return next((r for r in result["runs"] if r["streams"] == streams), None)


def goals(report):
    configs = {c["label"]: c for c in report["configs"]}
    top = max((r["streams"] for c in report["configs"] for r in c["runs"]), default=0)
    g = report["goals"]
    single = configs.get("fit-1w-single")
    if single and at(single, top):
        base = at(single, top)["aggregate_tok_s"]
        for label, c in configs.items():
            if label.startswith("fit-") and at(c, top):
                g[f"{label} / 1 worker at {top} streams"] = round(at(c, top)["aggregate_tok_s"] / base, 2)
    for label in ("three", "three-before"):
        if label in configs and at(configs[label], 1) and at(configs[label], top):
            g[f"{label}: 3-stage ring ({shape_text(configs[label]['placements'])}): {top} streams / 1 stream (goal >= 2.5)"] = round(
                at(configs[label], top)["aggregate_tok_s"] / at(configs[label], 1)["aggregate_tok_s"], 2)
    splits = [c for c in report["configs"] if c["label"].startswith("hetero-")]
    if splits:
        for s in (1, top):
            times = {c["label"]: 1000 / at(c, s)["aggregate_tok_s"] for c in splits if at(c, s)}
            if "hetero-planned" in times:
                best = min(times.values())
                g[f"hetero: planned ms/token at {s} stream(s) / best split's (goal <= 1.15)"] = round(times["hetero-planned"] / best, 3)
        # Each run's planner predicts from the speeds that run's workers measured, so predictions of different runs are
        # not compared here; they are in the JSON ("predicted": ms per token, slowest stage ms).


def print_table(report):
    print()
    print(f"{'configuration':<22} {'rings (layers)':<18} {'streams':>7} {'agg tok/s':>10} {'per stream':>10} {'TTFT ms':>9} {'ms/token':>9}")
    for c in report["configs"]:
        for r in c["runs"]:
            print(f"{c['label']:<22} {shape_text(c['placements']):<18} {r['streams']:>7} {r['aggregate_tok_s']:>10.1f} "
                  f"{(r['per_stream_tok_s'] or 0):>10.1f} {r['ttft_ms']:>9.0f} {1000 / r['aggregate_tok_s']:>9.2f}")
    print()
    for k, v in report["goals"].items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    sys.exit(main())
