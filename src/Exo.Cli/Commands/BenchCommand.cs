using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Exo.Inference.Backends;
using Exo.Inference.Kernels;
using Exo.Inference.Vulkan;
using Exo.Inference.Model;
using Exo.Inference.Sampling;

namespace Exo.Cli.Commands;

/// <summary>What one thread count measured; the JSON names are those the llama.cpp comparison harness reads.</summary>
internal sealed record BenchResult(
    string Engine,
    int Threads,
    double PpTokS,
    double TgTokS,
    double TtftMs,
    int Batch,
    double BatchTgTokS,
    double RssMb,
    long WeightBytes,
    double EffectiveGbS,
    double ReadGbS,
    double RooflineFraction,
    string Kernels);

[System.Text.Json.Serialization.JsonSerializable(typeof(BenchResult))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
internal sealed partial class BenchJson : System.Text.Json.Serialization.JsonSerializerContext;

internal static class BenchCommand
{
    private const int WarmupSteps = 8;

    public static Command Create()
    {
        var model = new Option<FileSystemInfo>("--model") { Description = "Model folder (or file) to benchmark", Required = true };
        var threads = new Option<string>("--threads") { Description = "Thread counts, comma-separated (e.g. 1,2); 0 means one per processor", DefaultValueFactory = _ => "0" };
        var prompt = new Option<int>("--prompt-tokens", "--pp") { Description = "Prompt tokens prefilled as one batch", DefaultValueFactory = _ => 128 };
        var generate = new Option<int>("--gen-tokens", "--tg") { Description = "Tokens decoded one step at a time after the prompt", DefaultValueFactory = _ => 128 };
        var batch = new Option<int>("--batch") { Description = "Sequences decoded together in a second measurement (1 skips it)", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "One JSON line per thread count, for scripts" };
        var reference = new Option<bool>("--reference") { Description = "Benchmark the reference kernels instead of the fast ones" };
        var probe = new Option<int>("--bandwidth-mb") { Description = "Buffer streamed by the read-bandwidth probe; keep it far above the last-level cache", DefaultValueFactory = _ => 1024 };
        var backend = new BackendChoice("cpu");
        var profile = new Option<bool>("--profile") { Description = "GPU only: print each kernel's GPU time per token (prefill and decode) to stderr, from device timestamps" };
        var schema = new Option<FileInfo?>("--json-schema") { Description = "Instead: decode speed with this JSON schema as a structured-output constraint beside unconstrained decode (the model needs a chat template)" };
        var command = new Command("bench",
            "Measure prefill and decode speed as llama.cpp's benchmark does (prompt t_i = (37i + 11) mod (vocab - 2) as one " +
            "batch, then greedy single-token steps), with the machine's memory read bandwidth measured in the same run and " +
            "decode speed as a fraction of the bandwidth roofline.")
        {
            model, threads, prompt, generate, batch, json, reference, probe, profile, schema,
        };
        backend.AddTo(command);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            var settings = new BenchSettings(parse.GetValue(model)!.FullName, Positive(parse.GetValue(prompt), "--pp"),
                Positive(parse.GetValue(generate), "--tg"), Positive(parse.GetValue(batch), "--batch"), parse.GetValue(reference),
                Positive(parse.GetValue(probe), "--bandwidth-mb"), backend.Options(parse, null), parse.GetValue(profile));
            if (parse.GetValue(schema) is { } schemaFile)
            {
                if (parse.GetValue(json)) throw new CliInputException("--json-schema prints text lines; leave out --json");
                if (ParseThreads(parse.GetValue(threads)!) is not [var count]) throw new CliInputException("--json-schema measures one thread count");
                using var fast = FastKernelsFor(settings, count);
                ConstrainedDecodeBench.Run(settings.Model, schemaFile, settings.Generate, settings.Backend with { CpuKernels = (IKernels?)fast ?? ReferenceKernels.Instance }, Console.Out);
                return 0;
            }

            // A GPU run has no thread count to sweep: it is measured once (auto may still fall back to the CPU's threads).
            var counts = settings.Backend.Kind == BackendKind.Vulkan ? [0] : ParseThreads(parse.GetValue(threads)!);
            foreach (var count in counts)
            {
                var result = Run(settings, count);
                Console.Out.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(result, BenchJson.Default.BenchResult) : Describe(result));
                Console.Out.Flush();
            }

            return 0;
        }));
        return command;
    }

    private sealed record BenchSettings(string Model, int Prompt, int Generate, int Batch, bool Reference, int ProbeMegabytes, BackendOptions Backend, bool Profile);

    private static int Positive(int value, string name) =>
        value > 0 ? value : throw new CliInputException($"{name} must be positive, not {value}");

    private static int[] ParseThreads(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new CliInputException("--threads needs at least one thread count");
        return parts.Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= 1024
                ? n == 0 ? Environment.ProcessorCount : n
                : throw new CliInputException($"--threads: '{p}' is not a thread count"))
            .ToArray();
    }

    /// <summary>The CPU's fast kernels, unless the reference ones or a GPU were asked for (auto may still fall back to the CPU, which then runs them).</summary>
    private static FastKernels? FastKernelsFor(BenchSettings s, int threads) =>
        s.Reference || s.Backend.Kind == BackendKind.Vulkan ? null : new FastKernels(threads);

    private static BenchResult Run(BenchSettings s, int threads)
    {
        using var fast = FastKernelsFor(s, threads);
        IKernels kernels = (IKernels?)fast ?? ReferenceKernels.Instance;
        var profile = KernelProfile.Active = s.Profile ? new KernelProfile() : null;
        using var stage = StageLoader.Load(s.Model, null, s.Backend with { CpuKernels = kernels });
        var gpu = stage as VulkanStage;
        if (gpu is null) profile = null; // a CPU stage has no kernel timestamps to report
        // The roofline is the memory the weights are read from: the GPU's (a device-to-device copy) or the host's.
        var bandwidth = gpu?.Context.MeasureBandwidth(s.ProbeMegabytes * (1L << 20)) ?? MemoryBandwidth.Measure(threads, s.ProbeMegabytes * (1L << 20));
        if (!stage.IsFirst || !stage.IsLast) throw new CliInputException("bench needs the whole model");
        var vocab = stage.Config.VocabSize;
        var tokens = HarnessTokens(s.Prompt + 1, vocab);
        var logits = new float[s.Batch * vocab];
        var capacity = s.Prompt + Math.Max(s.Generate, WarmupSteps) + 1;

        // Warm-up: page the weights in and size every buffer, then start again from an empty cache. Caches are freed as
        // they are done with: on a GPU they hold device memory.
        using (var warmCache = stage.CreateCache(capacity))
        {
            Prefill(stage, warmCache, tokens[..s.Prompt], logits, out var warm);
            Decode(stage, [warm], tokens[s.Prompt], WarmupSteps, logits);
        }

        using var cache = stage.CreateCache(capacity);
        profile?.Clear();
        var prefill = Stopwatch.StartNew();
        Prefill(stage, cache, tokens[..s.Prompt], logits, out var sequence);
        var prefillSeconds = prefill.Elapsed.TotalSeconds;
        Report(profile, "prefill", s.Prompt, prefillSeconds);
        var decodeSeconds = Decode(stage, [sequence], tokens[s.Prompt], s.Generate, logits);
        Report(profile, "decode", s.Generate, decodeSeconds);

        var batchTokS = 0.0;
        if (s.Batch > 1)
        {
            var batch = new SequenceChunk[s.Batch];
            try
            {
                for (var b = 0; b < s.Batch; b++) Prefill(stage, stage.CreateCache(capacity), tokens[..s.Prompt], logits, out batch[b]);
                profile?.Clear();
                var batchSeconds = Decode(stage, batch, tokens[s.Prompt], s.Generate, logits);
                Report(profile, $"batch of {s.Batch} decode (per step)", s.Generate, batchSeconds);
                batchTokS = s.Batch * s.Generate / batchSeconds;
            }
            finally
            {
                foreach (var chunk in batch) chunk.Cache?.Dispose();
            }
        }

        var weightBytes = stage.BytesPerToken;
        var tgTokS = s.Generate / decodeSeconds;
        using var process = Process.GetCurrentProcess();
        return new BenchResult("exo", threads, s.Prompt / prefillSeconds, tgTokS, prefillSeconds * 1000, s.Batch, batchTokS,
            process.WorkingSet64 / 1e6, weightBytes, weightBytes * tgTokS / 1e9, bandwidth / 1e9, tgTokS * weightBytes / bandwidth,
            stage.Backend);
    }

    /// <summary>Prints where a phase's GPU time went, per token, to stderr; then starts the profile afresh.</summary>
    private static void Report(KernelProfile? profile, string phase, int tokens, double seconds)
    {
        if (profile is null) return;
        var totals = profile.Totals();
        var gpu = totals.Sum(t => t.Milliseconds);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{phase}: {seconds * 1000 / tokens:F3} ms/token wall, {gpu / tokens:F3} ms/token on the GPU ({gpu / (seconds * 1000):P0} busy)"));
        foreach (var (kernel, ms, launches) in totals)
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {kernel,-34} {ms / tokens,9:F4} ms/token  {(double)launches / tokens,7:F1} launches/token"));
        profile.Clear();
    }

    /// <summary>
    /// The tokens llama.cpp's benchmark harness feeds (llama-bench and its dump_logits): t_i = (37i + 11) mod (vocab − 2),
    /// so that both engines run the same prompt.
    /// </summary>
    internal static int[] HarnessTokens(int count, int vocab)
    {
        if (vocab < 3) throw new CliInputException($"the model's vocabulary of {vocab} is too small to pick tokens from");
        return Enumerable.Range(0, count).Select(i => (int)((i * 37L + 11) % (vocab - 2))).ToArray();
    }

    private static void Prefill(IModelStage stage, KvCache cache, int[] prompt, float[] logits, out SequenceChunk sequence)
    {
        stage.ForwardTokens([new SequenceChunk(cache, prompt.Length)], prompt, logits);
        sequence = new SequenceChunk(cache, 1);
    }

    /// <summary>Decodes <paramref name="steps"/> greedy steps for every sequence together; returns the seconds taken.</summary>
    private static double Decode(IModelStage stage, SequenceChunk[] batch, int first, int steps, float[] logits)
    {
        var vocab = stage.Config.VocabSize;
        var next = new int[batch.Length];
        Array.Fill(next, first);
        var clock = Stopwatch.StartNew();
        for (var step = 0; step < steps; step++)
        {
            stage.ForwardTokens(batch, next, logits);
            for (var b = 0; b < batch.Length; b++) next[b] = Sampler.Argmax(logits.AsSpan(b * vocab, vocab));
        }

        return clock.Elapsed.TotalSeconds;
    }

    private static string Describe(BenchResult r) => string.Create(CultureInfo.InvariantCulture,
        $"""
        {(r.Threads > 0 ? $"threads {r.Threads} " : "")}({r.Kernels})
          prefill        {r.PpTokS,10:F1} tok/s   (time to first token {r.TtftMs:F0} ms)
          decode         {r.TgTokS,10:F2} tok/s{(r.Batch > 1 ? $"   batch of {r.Batch}: {r.BatchTgTokS:F2} tok/s ({r.BatchTgTokS / r.TgTokS:F2}x)" : "")}
          weights/token  {r.WeightBytes / 1e6,10:F1} MB     effective bandwidth {r.EffectiveGbS:F2} GB/s
          memory read    {r.ReadGbS,10:F2} GB/s   roofline {r.ReadGbS * 1e9 / r.WeightBytes:F2} tok/s, decode reaches {r.RooflineFraction:P1}
          resident       {r.RssMb,10:F0} MB
        """);
}
