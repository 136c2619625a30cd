using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using Exo.Grpc.Tests.Echo;
using Google.Protobuf;

namespace Exo.Grpc.Tests;

/// <summary>Hostile or broken peers: the server must answer with the right status, keep serving and leak no call.</summary>
public sealed class RobustnessTests : IAsyncLifetime
{
    private GrpcTestServer _server = null!;
    private HttpClient _raw = null!;

    public async Task InitializeAsync()
    {
        _server = await GrpcTestServer.StartAsync(o => o.ResponseCompressionAlgorithm = "gzip");
        _raw = new HttpClient(new SocketsHttpHandler());
    }

    public async Task DisposeAsync()
    {
        _raw.Dispose();
        await _server.DisposeAsync();
    }

    [Theory]
    [InlineData(new byte[] { 2, 0, 0, 0, 1, 0 }, "compressed flag")]
    [InlineData(new byte[] { 0, 0, 0, 0, 10, 1, 2 }, "Incomplete")]
    [InlineData(new byte[] { 1, 0, 0, 0, 1, 0 }, "compressed")]
    [InlineData(new byte[] { 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF }, "deserialize")]
    public async Task Malformed_frames_get_internal_and_the_server_keeps_serving(byte[] body, string expected)
    {
        var (status, message, _) = await SendRawAsync("/exo.test.v1.Echo/Unary", body);

        Assert.Equal(StatusCode.Internal, status);
        Assert.Contains(expected, message, StringComparison.OrdinalIgnoreCase);
        await AssertServerHealthyAsync();
    }

    [Fact]
    public async Task Oversized_frame_is_rejected_from_its_header()
    {
        var header = new byte[5];
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(1), 100_000_000);

        var (status, _, _) = await SendRawAsync("/exo.test.v1.Echo/Unary", header);

        Assert.Equal(StatusCode.ResourceExhausted, status);
        await AssertServerHealthyAsync();
    }

    [Fact]
    public async Task Unknown_service_is_unimplemented_and_non_grpc_content_is_415()
    {
        var (status, _, _) = await SendRawAsync("/no.such.Service/Method", [0, 0, 0, 0, 0]);
        Assert.Equal(StatusCode.Unimplemented, status);

        using var request = new HttpRequestMessage(HttpMethod.Post, _server.Address + "/exo.test.v1.Echo/Unary")
        {
            Content = new StringContent("{}"),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var response = await _raw.SendAsync(request);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        await AssertServerHealthyAsync();
    }

    [Fact]
    public async Task Gzip_is_used_for_responses_when_the_client_accepts_it()
    {
        var request = new EchoRequest { Message = new string('a', 10_000) };
        var payload = request.ToByteArray();
        var frame = new byte[5 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(frame, 5);

        var (status, _, response) = await SendRawAsync("/exo.test.v1.Echo/Unary", frame, acceptGzip: true);

        Assert.Equal(StatusCode.OK, status);
        Assert.Equal(1, response[0]);
        var length = BinaryPrimitives.ReadUInt32BigEndian(response.AsSpan(1));
        Assert.True(length < 1000, $"compressed reply is {length} bytes");
        using var gzip = new GZipStream(new MemoryStream(response, 5, (int)length), CompressionMode.Decompress);
        Assert.Equal(request.Message, EchoReply.Parser.ParseFrom(gzip).Message);
    }

    [Fact]
    public async Task Slow_reader_gets_backpressure_not_unbounded_buffering_and_can_cancel()
    {
        using var channel = _server.CreateChannel();
        Interlocked.Exchange(ref _server.Echo.RepliesWritten, 0);
        using var call = new EchoContract.EchoClient(channel).ServerStream(new EchoRequest { Count = 2000, ResponseSize = 64 * 1024 });
        Assert.True(await call.ResponseStream.MoveNext(default));

        await Task.Delay(700);
        var written = Volatile.Read(ref _server.Echo.RepliesWritten);
        Assert.InRange(written, 1, 400);

        var received = 1;
        while (received < 600 && await call.ResponseStream.MoveNext(default))
        {
            received++;
        }

        Assert.Equal(600, received);
        call.Dispose();
        Assert.Equal(0, await _server.WaitForNoActiveCallsAsync(TimeSpan.FromSeconds(10)));
        await AssertServerHealthyAsync();
    }

    [Fact]
    public async Task Slow_reader_with_a_deadline_ends_deadline_exceeded()
    {
        using var channel = _server.CreateChannel();
        using var call = new EchoContract.EchoClient(channel).ServerStream(
            new EchoRequest { Count = 2000, ResponseSize = 64 * 1024 },
            new CallOptions(Deadline: DateTime.UtcNow.AddMilliseconds(1500)));
        Assert.True(await call.ResponseStream.MoveNext(default));
        await Task.Delay(2000);

        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext(default))
            {
            }
        });

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.Equal(0, await _server.WaitForNoActiveCallsAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Detailed_errors_are_sent_only_when_configured()
    {
        await using var server = await GrpcTestServer.StartAsync(o => o.EnableDetailedErrors = true);
        using var channel = server.CreateChannel();

        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await new EchoContract.EchoClient(channel).UnaryAsync(new EchoRequest { FailCode = 1, FailMessage = "throw" }));

        Assert.Equal(StatusCode.Unknown, ex.StatusCode);
        Assert.Contains("secret internal detail", ex.Status.Detail, StringComparison.Ordinal);
    }

    private async Task AssertServerHealthyAsync()
    {
        using var channel = _server.CreateChannel();
        Assert.Equal("alive", (await new EchoContract.EchoClient(channel).UnaryAsync(new EchoRequest { Message = "alive" })).Message);
        Assert.Equal(0, await _server.WaitForNoActiveCallsAsync(TimeSpan.FromSeconds(5)));
    }

    /// <summary>Sends hand-made bytes as a gRPC request body and reads the status wherever it comes (headers or trailers).</summary>
    private async Task<(StatusCode Status, string Message, byte[] Body)> SendRawAsync(string path, byte[] body, bool acceptGzip = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _server.Address + path)
        {
            Content = new ByteArrayContent(body),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (acceptGzip)
        {
            request.Headers.TryAddWithoutValidation("grpc-accept-encoding", "gzip");
        }

        using var response = await _raw.SendAsync(request);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var source = response.Headers.Contains("grpc-status") ? (HttpHeaders)response.Headers : response.TrailingHeaders;
        var status = (StatusCode)int.Parse(source.GetValues("grpc-status").Single(), System.Globalization.CultureInfo.InvariantCulture);
        var message = source.TryGetValues("grpc-message", out var values) ? Uri.UnescapeDataString(values.Single()) : "";
        return (status, message, bytes);
    }
}
