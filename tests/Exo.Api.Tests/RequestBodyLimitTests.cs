using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Exo.Api.Tests;

/// <summary>An API with a small body limit: bodies past it are refused with OpenAI's 413 as they are read, never held whole.</summary>
public sealed class RequestBodyLimitTests : IDisposable
{
    private const int Limit = 64 * 1024;
    private readonly ApiProcess _api = new("--Api:Models:0=" + ApiProcess.Model("exo-tiny"), $"--Api:MaxRequestBodyBytes={Limit}");

    public void Dispose() => _api.Dispose();

    /// <summary>A valid text completion request of exactly <paramref name="bytes"/> bytes, padded with whitespace.</summary>
    private static byte[] Body(int bytes)
    {
        const string start = """{"model": "exo-tiny", "prompt": "hi", "max_tokens": 1""";
        return Encoding.UTF8.GetBytes(start + new string(' ', bytes - start.Length - 1) + "}");
    }

    [Fact]
    public async Task ABodyAtTheLimitPassesAndOneByteMoreIs413()
    {
        using var http = new HttpClient { BaseAddress = _api.BaseAddress };
        using (var atLimit = await http.PostAsync("/v1/completions", Json(new ByteArrayContent(Body(Limit)))))
            Assert.Equal(HttpStatusCode.OK, atLimit.StatusCode);

        using (var declared = await http.PostAsync("/v1/completions", Json(new ByteArrayContent(Body(Limit + 1)))))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, declared.StatusCode);
            var error = JsonDocument.Parse(await declared.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("request_too_large", error.GetProperty("code").GetString());
            Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
            Assert.Contains($"{Limit} bytes", error.GetProperty("message").GetString());
        }

        using var chunked = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json(new StreamContent(new MemoryStream(Body(Limit + 1)))) };
        chunked.Headers.TransferEncodingChunked = true;
        using var refused = await http.SendAsync(chunked);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AnOversizedBodyIsRefusedBeforeItEnds(bool chunked)
    {
        // The client sends the headers and at most one byte past the limit, then waits: the 413 must come without the rest.
        using var client = new TcpClient();
        await client.ConnectAsync(_api.BaseAddress.Host, _api.BaseAddress.Port);
        var stream = client.GetStream();
        var head = $"POST /v1/chat/completions HTTP/1.1\r\nHost: {_api.BaseAddress.Authority}\r\nContent-Type: application/json\r\n"
                   + (chunked ? $"Transfer-Encoding: chunked\r\n\r\n{Limit + 1:x}\r\n" : "Content-Length: 500000000\r\n\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        if (chunked) await stream.WriteAsync(Body(Limit + 1));

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (status, body) = await ReadResponseAsync(stream, timeout.Token);
        Assert.Equal(413, status);
        Assert.Equal("request_too_large", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    private static HttpContent Json(HttpContent content)
    {
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    /// <summary>An HTTP/1.1 response with a Content-Length, read off the socket.</summary>
    private static async Task<(int Status, string Body)> ReadResponseAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var received = new List<byte>();
        var chunk = new byte[4096];
        int end;
        while ((end = Encoding.ASCII.GetString([.. received]).IndexOf("\r\n\r\n", StringComparison.Ordinal)) < 0)
        {
            var read = await stream.ReadAsync(chunk, cancellationToken);
            Assert.True(read > 0, "the connection closed before the response's headers");
            received.AddRange(chunk.AsSpan(0, read));
        }

        var headers = Encoding.ASCII.GetString([.. received], 0, end).Split("\r\n");
        var length = int.Parse(headers.Single(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))["Content-Length:".Length..].Trim());
        while (received.Count < end + 4 + length)
        {
            var read = await stream.ReadAsync(chunk, cancellationToken);
            Assert.True(read > 0, "the connection closed before the response's body");
            received.AddRange(chunk.AsSpan(0, read));
        }

        return (int.Parse(headers[0].Split(' ')[1]), Encoding.UTF8.GetString([.. received], end + 4, length));
    }
}
