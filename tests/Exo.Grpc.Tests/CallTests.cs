using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Exo.Grpc.Tests.Echo;
using Google.Protobuf;
using Grpc.Health.V1;

namespace Exo.Grpc.Tests;

/// <summary>Exo.Grpc client against Exo.Grpc server over real HTTP/2 on loopback.</summary>
public sealed class CallTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private GrpcTestServer Server => fixture.Server;

    [Fact]
    public async Task Unary_round_trips_message_and_ascii_and_binary_metadata()
    {
        using var channel = Server.CreateChannel();
        var client = new EchoContract.EchoClient(channel);
        var binary = new byte[] { 0, 1, 2, 250, 255, (byte)',' };
        using var call = client.UnaryAsync(
            new EchoRequest { Message = "hello", Payload = ByteString.CopyFrom(1, 2, 3) },
            new CallOptions(Headers: new Metadata { { "x-echo", "ascii value" }, { "x-echo-bin", binary } }));

        var reply = await call;
        var headers = await call.ResponseHeadersAsync;

        Assert.Equal("hello", reply.Message);
        Assert.Equal(new byte[] { 1, 2, 3 }, reply.Payload.ToByteArray());
        Assert.Equal("ascii value", headers.GetValue("x-echo"));
        Assert.Equal(binary, call.GetTrailers().GetValueBytes("x-echo-bin"));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Server_streaming_delivers_every_message_in_order()
    {
        using var channel = Server.CreateChannel();
        using var call = new EchoContract.EchoClient(channel).ServerStream(new EchoRequest { Message = "s", Count = 50 });

        var indexes = new List<int>();
        await foreach (var reply in call.ResponseStream.ReadAllAsync())
        {
            indexes.Add(reply.Index);
        }

        Assert.Equal(Enumerable.Range(0, 50), indexes);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Client_streaming_receives_all_requests_before_replying()
    {
        using var channel = Server.CreateChannel();
        using var call = new EchoContract.EchoClient(channel).ClientStream();
        for (var i = 0; i < 5; i++)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Message = $"m{i}", Payload = ByteString.CopyFrom(new byte[1000]) }, default);
        }

        await call.RequestStream.CompleteAsync();
        var reply = await call;

        Assert.Equal("m0,m1,m2,m3,m4", reply.Message);
        Assert.Equal(5, reply.Index);
        Assert.Equal("5000", reply.Payload.ToStringUtf8());
    }

    [Fact]
    public async Task Duplex_streaming_interleaves_requests_and_replies()
    {
        using var channel = Server.CreateChannel();
        using var call = new EchoContract.EchoClient(channel).Bidi();
        for (var i = 0; i < 100; i++)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Message = $"r{i}" }, default);
            Assert.True(await call.ResponseStream.MoveNext(default));
            Assert.Equal($"r{i}", call.ResponseStream.Current.Message);
            Assert.Equal(i, call.ResponseStream.Current.Index);
        }

        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(default));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Error_status_carries_percent_encoded_message_and_trailers()
    {
        using var channel = Server.CreateChannel();
        const string detail = "nöt hére: 100% \n gone";
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await new EchoContract.EchoClient(channel).UnaryAsync(new EchoRequest { FailCode = (int)StatusCode.NotFound, FailMessage = detail }));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Equal(detail, ex.Status.Detail);
        Assert.Equal("yes", ex.Trailers.GetValue("x-failed"));
    }

    [Fact]
    public async Task Handler_exception_is_unknown_without_leaking_details()
    {
        using var channel = Server.CreateChannel();
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await new EchoContract.EchoClient(channel).UnaryAsync(new EchoRequest { FailCode = 1, FailMessage = "throw" }));

        Assert.Equal(StatusCode.Unknown, ex.StatusCode);
        Assert.DoesNotContain("secret", ex.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deadline_fails_the_call_and_cancels_the_handler()
    {
        Server.Echo.ResetSignals();
        using var channel = Server.CreateChannel();
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await new EchoContract.EchoClient(channel).UnaryAsync(
                new EchoRequest { DelayMs = 30_000 },
                new CallOptions(Deadline: DateTime.UtcNow.AddMilliseconds(300))));

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.Equal("Unary", await Server.Echo.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Client_cancellation_reaches_the_server_token()
    {
        Server.Echo.ResetSignals();
        using var channel = Server.CreateChannel();
        using var cts = new CancellationTokenSource();
        using var call = new EchoContract.EchoClient(channel).Bidi(new CallOptions(CancellationToken: cts.Token));
        await call.RequestStream.WriteAsync(new EchoRequest { Message = "x" }, default);
        Assert.True(await call.ResponseStream.MoveNext(default));

        await cts.CancelAsync();

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(default));
        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
        Assert.Equal("Bidi", await Server.Echo.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Unknown_method_is_unimplemented()
    {
        using var channel = Server.CreateChannel();
        var missing = ProtobufMethods.Create<EchoRequest, EchoReply>(MethodType.Unary, "exo.test.v1.Missing", "Nope");
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await channel.CreateCallInvoker().AsyncUnaryCall(missing, null, default, new EchoRequest()));

        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
    }

    [Fact]
    public async Task Gzip_compressed_messages_round_trip_both_ways()
    {
        using var channel = Server.CreateChannel(new GrpcChannelOptions { SendCompression = "gzip" });
        var payload = new byte[1_000_000];
        payload.AsSpan(500_000).Fill(7);
        var reply = await new EchoContract.EchoClient(channel).UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(payload) });

        Assert.Equal(payload, reply.Payload.ToByteArray());
    }

    [Fact]
    public async Task Concurrent_calls_share_one_http2_connection()
    {
        Server.Echo.Connections.Clear();
        using var channel = Server.CreateChannel();
        var client = new EchoContract.EchoClient(channel);
        await client.UnaryAsync(new EchoRequest());

        await Task.WhenAll(Enumerable.Range(0, 64).Select(async i => (await client.UnaryAsync(new EchoRequest { Message = $"{i}", DelayMs = 50 })).Message));

        Assert.Single(Server.Echo.Connections);
        Assert.Equal(65, Server.Echo.Connections.Values.Single());
    }

    [Fact]
    public async Task Sixteen_mebibyte_message_round_trips_with_raised_limits()
    {
        await using var server = await GrpcTestServer.StartAsync(o => o.MaxReceiveMessageSize = 32 << 20);
        using var channel = server.CreateChannel(new GrpcChannelOptions { MaxReceiveMessageSize = 32 << 20 });
        var payload = RandomNumberGenerator.GetBytes(16 << 20);

        var reply = await new EchoContract.EchoClient(channel).UnaryAsync(new EchoRequest { Payload = UnsafeByteOperations.UnsafeWrap(payload) });

        Assert.True(payload.AsSpan().SequenceEqual(reply.Payload.Span));
    }

    [Fact]
    public async Task Message_size_limits_give_resource_exhausted_on_both_sides()
    {
        using var channel = Server.CreateChannel(new GrpcChannelOptions { MaxSendMessageSize = 1000 });
        var client = new EchoContract.EchoClient(channel);

        var tooBigForServer = await Assert.ThrowsAsync<RpcException>(async () =>
            await new EchoContract.EchoClient(Server.CreateChannel()).UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[5 << 20]) }));
        var tooBigForClient = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.UnaryAsync(new EchoRequest { ResponseSize = 5 << 20 }));
        var tooBigToSend = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[2000]) }));

        Assert.Equal(StatusCode.ResourceExhausted, tooBigForServer.StatusCode);
        Assert.Equal(StatusCode.ResourceExhausted, tooBigForClient.StatusCode);
        Assert.Equal(StatusCode.ResourceExhausted, tooBigToSend.StatusCode);
        Assert.Equal("ok", (await client.UnaryAsync(new EchoRequest { Message = "ok" })).Message);
    }

    [Fact]
    public async Task Health_check_and_watch_follow_status_changes()
    {
        using var channel = Server.CreateChannel();
        var health = new Health.HealthClient(channel);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await health.CheckAsync(new HealthCheckRequest { Service = "nope" }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var watch = health.Watch(new HealthCheckRequest { Service = "shard" }, new CallOptions(CancellationToken: cts.Token));
        Assert.True(await watch.ResponseStream.MoveNext(cts.Token));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.ServiceUnknown, watch.ResponseStream.Current.Status);

        Server.Health.SetStatus("shard", HealthCheckResponse.Types.ServingStatus.NotServing);
        Assert.True(await watch.ResponseStream.MoveNext(cts.Token));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, watch.ResponseStream.Current.Status);
    }

    [Fact]
    public async Task Tls_is_used_when_a_certificate_is_configured()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        await using var server = await GrpcTestServer.StartAsync(certificate: certificate);
        Assert.StartsWith("https://", server.Address, StringComparison.Ordinal);
        var thumbprint = certificate.Thumbprint;
        using var channel = server.CreateChannel(new GrpcChannelOptions
        {
            RemoteCertificateValidationCallback = (_, cert, _, _) => cert is X509Certificate2 c && c.Thumbprint == thumbprint,
        });

        Assert.Equal("secure", (await new EchoContract.EchoClient(channel).UnaryAsync(new EchoRequest { Message = "secure" })).Message);
    }
}
