using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Exo.Grpc;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

// Loopback benchmark of Exo.Grpc (client and server in this process) next to grpc-js (bench/grpc-js-bench.js):
// ping-pong round trips on one bidi stream, and one-way client-streaming throughput, with 8 KiB messages.
const int PayloadSize = 8 * 1024;
var pingPongs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20_000;
var streamed = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 100_000;

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.UseGrpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0));
builder.Services.AddGrpc(o => o.MaxReceiveMessageSize = null);
var app = builder.Build();
app.MapGrpcService<BenchService>();
await app.StartAsync();
var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();

using var channel = GrpcChannel.ForAddress(address);
var invoker = channel.CreateCallInvoker();
var payload = new byte[PayloadSize];
Random.Shared.NextBytes(payload);

var ours = new List<(string Name, string Value)>();
var rtts = await PingPongAsync(invoker, payload, pingPongs);
ours.Add(("ping-pong median (µs)", Median(rtts)));
ours.Add(("ping-pong p99 (µs)", Percentile(rtts, 0.99)));
var (msgsPerSecond, mbPerSecond) = await StreamAsync(invoker, payload, streamed);
ours.Add(("stream msgs/s", msgsPerSecond.ToString("N0", CultureInfo.InvariantCulture)));
ours.Add(("stream MB/s", mbPerSecond.ToString("N1", CultureInfo.InvariantCulture)));
await app.StopAsync();

var theirs = await RunGrpcJsAsync(pingPongs, streamed);
Console.WriteLine($"8 KiB messages over loopback, {Environment.ProcessorCount} cores; {pingPongs} ping-pongs, {streamed} streamed messages");
Console.WriteLine($"| {"metric",-24} | {"Exo.Grpc",12} | {"grpc-js",12} |");
Console.WriteLine($"|{new string('-', 26)}|{new string('-', 14)}|{new string('-', 14)}|");
foreach (var (name, value) in ours)
{
    Console.WriteLine($"| {name,-24} | {value,12} | {theirs.GetValueOrDefault(name, "n/a"),12} |");
}

static async Task<double[]> PingPongAsync(CallInvoker invoker, byte[] payload, int count)
{
    using var call = invoker.AsyncDuplexStreamingCall(BenchService.PingPongMethod, null, default);
    var warmup = Math.Min(2000, count / 5);
    var rtts = new double[count];
    for (var i = -warmup; i < count; i++)
    {
        var start = Stopwatch.GetTimestamp();
        await call.RequestStream.WriteAsync(payload, default);
        if (!await call.ResponseStream.MoveNext(default))
        {
            throw new InvalidOperationException("The ping-pong stream ended early.");
        }

        if (i >= 0)
        {
            rtts[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }
    }

    await call.RequestStream.CompleteAsync();
    while (await call.ResponseStream.MoveNext(default))
    {
    }

    Array.Sort(rtts);
    return rtts;
}

static async Task<(double MsgsPerSecond, double MBPerSecond)> StreamAsync(CallInvoker invoker, byte[] payload, int count)
{
    await SendAllAsync(invoker, payload, Math.Min(5000, count / 5));
    var start = Stopwatch.GetTimestamp();
    await SendAllAsync(invoker, payload, count);
    var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
    return (count / seconds, count * (double)payload.Length / seconds / 1e6);
}

static async Task SendAllAsync(CallInvoker invoker, byte[] payload, int count)
{
    using var call = invoker.AsyncClientStreamingCall(BenchService.StreamMethod, null, default);
    for (var i = 0; i < count; i++)
    {
        await call.RequestStream.WriteAsync(payload, default);
    }

    await call.RequestStream.CompleteAsync();
    var received = BitConverter.ToInt64(await call.ResponseAsync);
    if (received != count)
    {
        throw new InvalidOperationException($"The server counted {received} of {count} messages.");
    }
}

static string Median(double[] sorted) => Percentile(sorted, 0.5);

static string Percentile(double[] sorted, double p) =>
    sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))].ToString("N0", CultureInfo.InvariantCulture);

static async Task<Dictionary<string, string>> RunGrpcJsAsync(int pingPongs, int streamed)
{
    var root = new DirectoryInfo(AppContext.BaseDirectory);
    while (root is not null && !File.Exists(Path.Combine(root.FullName, "Exo.sln")))
    {
        root = root.Parent;
    }

    var script = Path.Combine(root?.FullName ?? ".", "bench", "grpc-js-bench.js");
    var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, UseShellExecute = false };
    start.ArgumentList.Add(script);
    start.ArgumentList.Add(pingPongs.ToString(CultureInfo.InvariantCulture));
    start.ArgumentList.Add(streamed.ToString(CultureInfo.InvariantCulture));
    using var process = Process.Start(start)!;
    var output = await process.StandardOutput.ReadToEndAsync();
    await process.WaitForExitAsync();
    if (process.ExitCode != 0)
    {
        return [];
    }

    return JsonSerializer.Deserialize<Dictionary<string, string>>(output.Trim().Split('\n')[^1]) ?? [];
}

/// <summary>Raw-bytes echo (ping-pong) and counting sink (stream), so the benchmark measures the transport only.</summary>
[BindServiceMethod(typeof(BenchService), nameof(BindService))]
internal sealed class BenchService
{
    public static readonly Method<byte[], byte[]> PingPongMethod = new(MethodType.DuplexStreaming, "bench.Bench", "PingPong", Marshallers.ByteArray, Marshallers.ByteArray);
    public static readonly Method<byte[], byte[]> StreamMethod = new(MethodType.ClientStreaming, "bench.Bench", "Stream", Marshallers.ByteArray, Marshallers.ByteArray);

    public static void BindService(ServiceBinderBase binder, BenchService service)
    {
        binder.AddMethod(PingPongMethod, (DuplexStreamingServerMethod<byte[], byte[]>)service.PingPong);
        binder.AddMethod(StreamMethod, service.Stream);
    }

    private async Task PingPong(IAsyncStreamReader<byte[]> requests, IServerStreamWriter<byte[]> responses, ServerCallContext context)
    {
        while (await requests.MoveNext(context.CancellationToken))
        {
            await responses.WriteAsync(requests.Current, context.CancellationToken);
        }
    }

    private async Task<byte[]> Stream(IAsyncStreamReader<byte[]> requests, ServerCallContext context)
    {
        long count = 0;
        while (await requests.MoveNext(context.CancellationToken))
        {
            count++;
        }

        return BitConverter.GetBytes(count);
    }
}
