using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Exo.Hub.Tests;

/// <summary>
/// A local stand-in for the public Hugging Face Hub: a real Kestrel server on loopback that answers the model info
/// API and /resolve as the hub does (LFS files redirected to a "CDN" on a second port with X-Linked-Etag, git files
/// with their blob id as ETag, Range, bearer tokens, X-Error-Code), serving one repository made of a model folder, with
/// faults a test can inject: a connection dropped after N bytes, a corrupted file, a required token.
/// </summary>
public sealed class FakeHub : IAsyncDisposable
{
    public const string Organization = "exo";
    public const string Commit = "0123456789abcdef0123456789abcdef01234567";

    private readonly WebApplication _app;
    private readonly Dictionary<string, byte[]> _files;
    private readonly ConcurrentQueue<Request> _requests = new();
    private readonly ConcurrentDictionary<string, long> _served = new(StringComparer.Ordinal);

    /// <summary>One request as the server saw it: port, path, Range header, whether it carried a token.</summary>
    public sealed record Request(int Port, string Path, string? Range, bool Authorized);

    private FakeHub(string modelFolder)
    {
        Name = Path.GetFileName(modelFolder);
        _files = Directory.GetFiles(modelFolder).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes, StringComparer.Ordinal);
        (HubPort, CdnPort) = (Ports.Free(), Ports.Free());
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, HubPort);
            k.Listen(IPAddress.Loopback, CdnPort);
        });
        _app = builder.Build();
        _app.Run(HandleAsync);
    }

    public string Name { get; }

    public int HubPort { get; }

    public int CdnPort { get; }

    public Uri Endpoint => new($"http://127.0.0.1:{HubPort}");

    public ModelReference Model => new(Organization, Name, "main");

    public IReadOnlyDictionary<string, byte[]> Files => _files;

    /// <summary>The bearer token every request to the hub (not the CDN) must carry; none when null.</summary>
    public string? RequiredToken { get; set; }

    /// <summary>Ends the next response for this file after this many bytes, once.</summary>
    public (string File, int Bytes)? DropOnce { get; set; }

    /// <summary>Serves this file with one byte changed.</summary>
    public string? Corrupt { get; set; }

    /// <summary>Answers the model info API never, as a hub behind a dead proxy.</summary>
    public bool Silent { get; set; }

    /// <summary>Serves this file 100 bytes shorter than its listed size, saying so in Content-Length.</summary>
    public string? Truncate { get; set; }

    public IReadOnlyList<Request> Requests => [.. _requests];

    /// <summary>Body bytes sent for a file over every request.</summary>
    public long Served(string file) => _served.GetValueOrDefault(file);

    public static async Task<FakeHub> StartAsync(string modelFolder)
    {
        var hub = new FakeHub(modelFolder);
        await hub._app.StartAsync();
        return hub;
    }

    public static bool IsLfs(string file) => file.EndsWith(".safetensors", StringComparison.Ordinal) || file.EndsWith(".bin", StringComparison.Ordinal);

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    public static string GitBlobId(byte[] bytes) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var port = context.Connection.LocalPort;
        var authorized = request.Headers.Authorization.FirstOrDefault() is { } auth && auth == $"Bearer {RequiredToken}";
        _requests.Enqueue(new Request(port, request.Path.Value!, request.Headers.Range.FirstOrDefault(), request.Headers.Authorization.Count > 0));
        var segments = request.Path.Value!.Trim('/').Split('/').Select(Uri.UnescapeDataString).ToArray();

        if (port == CdnPort && segments is ["cdn", var cdnFile]) await SendAsync(context, cdnFile);
        else if (RequiredToken is not null && !authorized) await ErrorAsync(context, 401, "GatedRepo", "Access to this model is restricted");
        else if (segments is ["api", "models", var org, var name, "revision", var revision]) await InfoAsync(context, org, name, revision);
        else if (segments is [var org2, var name2, "resolve", var commit, .. var path] && org2 == Organization && name2 == Name)
        {
            var file = string.Join('/', path);
            if (commit != Commit || !_files.TryGetValue(file, out var bytes)) await ErrorAsync(context, 404, "EntryNotFound", "Entry not found");
            else if (IsLfs(file))
            {
                context.Response.Headers["X-Linked-Etag"] = $"\"{Sha256(bytes)}\"";
                context.Response.Headers["X-Linked-Size"] = bytes.Length.ToString();
                context.Response.Redirect($"http://127.0.0.1:{CdnPort}/cdn/{Uri.EscapeDataString(file)}");
            }
            else
            {
                context.Response.Headers.ETag = $"\"{GitBlobId(bytes)}\"";
                await SendAsync(context, file);
            }
        }
        else await ErrorAsync(context, 404, "RepoNotFound", "Repository not found");
    }

    private async Task InfoAsync(HttpContext context, string org, string name, string revision)
    {
        if (Silent) await Task.Delay(Timeout.Infinite, context.RequestAborted);
        if (org != Organization || name != Name) await ErrorAsync(context, 404, "RepoNotFound", "Repository not found");
        else if (revision is not ("main" or Commit)) await ErrorAsync(context, 404, "RevisionNotFound", "Invalid rev id");
        else
        {
            var siblings = _files.Select(f => IsLfs(f.Key)
                ? (object)new { rfilename = f.Key, size = f.Value.Length, blobId = GitBlobId(f.Value), lfs = new { sha256 = Sha256(f.Value), size = f.Value.Length, pointerSize = 134 } }
                : new { rfilename = f.Key, size = f.Value.Length, blobId = GitBlobId(f.Value) });
            // The hub lists .gitattributes too: a client must leave it out, not fail.
            var all = siblings.Append(new { rfilename = ".gitattributes", size = 1519, blobId = new string('a', 40) });
            await context.Response.WriteAsJsonAsync(new { id = $"{org}/{name}", sha = Commit, siblings = all });
        }
    }

    private async Task SendAsync(HttpContext context, string file)
    {
        if (!_files.TryGetValue(file, out var bytes))
        {
            context.Response.StatusCode = 404;
            return;
        }

        if (file == Corrupt)
        {
            bytes = (byte[])bytes.Clone();
            bytes[bytes.Length / 2] ^= 0xFF;
        }

        if (file == Truncate) bytes = bytes[..^100];

        long from = 0, to = bytes.Length - 1;
        if (context.Request.Headers.Range.FirstOrDefault() is { } range)
        {
            var parts = range["bytes=".Length..].Split('-');
            from = long.Parse(parts[0]);
            if (parts[1].Length > 0) to = long.Parse(parts[1]);
            context.Response.StatusCode = 206;
            context.Response.Headers.ContentRange = $"bytes {from}-{to}/{bytes.Length}";
        }

        var length = (int)(to - from + 1);
        context.Response.ContentLength = length;
        var drop = DropOnce is { } d && d.File == file ? d.Bytes : -1;
        if (drop >= 0)
        {
            DropOnce = null;
            await context.Response.Body.WriteAsync(bytes.AsMemory((int)from, Math.Min(drop, length)));
            await context.Response.Body.FlushAsync();
            _served.AddOrUpdate(file, Math.Min(drop, length), (_, n) => n + Math.Min(drop, length));
            context.Abort();
            return;
        }

        await context.Response.Body.WriteAsync(bytes.AsMemory((int)from, length));
        _served.AddOrUpdate(file, length, (_, n) => n + length);
    }

    private static async Task ErrorAsync(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        context.Response.Headers["X-Error-Code"] = code;
        await context.Response.WriteAsJsonAsync(new { error = message });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
