using Exo.Grpc.Tests.Echo;
using Google.Protobuf;

namespace Exo.Grpc.Tests;

/// <summary>grpc-js client against the Exo.Grpc server (each scenario a real node process).</summary>
public sealed class GrpcJsClientInteropTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Theory]
    [InlineData("unary")]
    [InlineData("metadata")]
    [InlineData("serverStream")]
    [InlineData("clientStream")]
    [InlineData("bidi")]
    [InlineData("error")]
    [InlineData("deadline")]
    [InlineData("cancel")]
    [InlineData("large")]
    [InlineData("unimplemented")]
    public async Task Grpc_js_client_scenario_passes_against_our_server(string scenario)
    {
        await using var server = scenario == "large"
            ? await GrpcTestServer.StartAsync(o => o.MaxReceiveMessageSize = 32 << 20)
            : null;

        var (exitCode, output) = await NodeInterop.RunClientAsync((server ?? fixture.Server).Address, scenario);

        Assert.True(exitCode == 0, output);
        Assert.Contains($"ok {scenario}", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Killed_grpc_js_client_mid_stream_cancels_the_handler_and_frees_the_call()
    {
        var server = fixture.Server;
        server.Echo.ResetSignals();
        using var process = NodeInterop.Start("client.js", NodeInterop.HostPort(server.Address), "vanish");
        Assert.Equal("ready", await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(server.Activity.ActiveCalls >= 1);

        process.Kill(entireProcessTree: true);

        Assert.Equal("Bidi", await server.Echo.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, await server.WaitForNoActiveCallsAsync(TimeSpan.FromSeconds(10)));
    }
}

/// <summary>The Exo.Grpc client against a grpc-js server.</summary>
public sealed class GrpcJsServerInteropTests(NodeServerFixture node) : IClassFixture<NodeServerFixture>
{
    [Fact]
    public async Task Unary_with_metadata()
    {
        using var channel = GrpcChannel.ForAddress(node.Address);
        var binary = new byte[] { 0, 255, 44, 7 };
        using var call = new EchoContract.EchoClient(channel).UnaryAsync(
            new EchoRequest { Message = "hi", Payload = ByteString.CopyFrom(9, 8) },
            new CallOptions(Headers: new Metadata { { "x-echo", "v 1" }, { "x-echo-bin", binary } }));

        var reply = await call;

        Assert.Equal("hi", reply.Message);
        Assert.Equal(new byte[] { 9, 8 }, reply.Payload.ToByteArray());
        Assert.Equal("v 1", (await call.ResponseHeadersAsync).GetValue("x-echo"));
        Assert.Equal(binary, call.GetTrailers().GetValueBytes("x-echo-bin"));
    }

    [Fact]
    public async Task Server_streaming()
    {
        using var channel = GrpcChannel.ForAddress(node.Address);
        using var call = new EchoContract.EchoClient(channel).ServerStream(new EchoRequest { Count = 25 });

        var indexes = new List<int>();
        await foreach (var reply in call.ResponseStream.ReadAllAsync())
        {
            indexes.Add(reply.Index);
        }

        Assert.Equal(Enumerable.Range(0, 25), indexes);
    }

    [Fact]
    public async Task Client_streaming()
    {
        using var channel = GrpcChannel.ForAddress(node.Address);
        using var call = new EchoContract.EchoClient(channel).ClientStream();
        foreach (var m in new[] { "a", "b", "c" })
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Message = m, Payload = ByteString.CopyFrom(new byte[7]) }, default);
        }

        await call.RequestStream.CompleteAsync();
        var reply = await call;

        Assert.Equal("a,b,c", reply.Message);
        Assert.Equal("21", reply.Payload.ToStringUtf8());
    }

    [Fact]
    public async Task Duplex_streaming()
    {
        using var channel = GrpcChannel.ForAddress(node.Address);
        using var call = new EchoContract.EchoClient(channel).Bidi();
        for (var i = 0; i < 40; i++)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Message = $"d{i}" }, default);
            Assert.True(await call.ResponseStream.MoveNext(default));
            Assert.Equal($"d{i}", call.ResponseStream.Current.Message);
        }

        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(default));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Error_status_and_trailers()
    {
        using var channel = GrpcChannel.ForAddress(node.Address);
        const string detail = "nöt hére: 100% \n gone";

        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await new EchoContract.EchoClient(channel).UnaryAsync(new EchoRequest { FailCode = (int)StatusCode.FailedPrecondition, FailMessage = detail }));

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal(detail, ex.Status.Detail);
        Assert.Equal("yes", ex.Trailers.GetValue("x-failed"));
    }

    [Fact]
    public async Task Deadline_exceeded_and_the_server_sees_it()
    {
        using var channel = GrpcChannel.ForAddress(node.Address);
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await new EchoContract.EchoClient(channel).UnaryAsync(new EchoRequest { DelayMs = 20_000 }, new CallOptions(Deadline: DateTime.UtcNow.AddMilliseconds(300))));

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        await node.WaitForLineAsync(l => l == "cancelled:Unary", TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Cancellation_reaches_the_grpc_js_server()
    {
        using var channel = GrpcChannel.ForAddress(node.Address);
        using var cts = new CancellationTokenSource();
        using var call = new EchoContract.EchoClient(channel).Bidi(new CallOptions(CancellationToken: cts.Token));
        await call.RequestStream.WriteAsync(new EchoRequest { Message = "x" }, default);
        Assert.True(await call.ResponseStream.MoveNext(default));

        await cts.CancelAsync();

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(default));
        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
        await node.WaitForLineAsync(l => l == "cancelled:Bidi", TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Sixteen_mebibyte_message()
    {
        using var channel = GrpcChannel.ForAddress(node.Address, new GrpcChannelOptions { MaxReceiveMessageSize = 32 << 20 });
        var payload = new byte[16 << 20];
        Random.Shared.NextBytes(payload);

        var reply = await new EchoContract.EchoClient(channel).UnaryAsync(new EchoRequest { Payload = UnsafeByteOperations.UnsafeWrap(payload) });

        Assert.True(payload.AsSpan().SequenceEqual(reply.Payload.Span));
    }

    [Fact]
    public async Task Unknown_method_is_unimplemented()
    {
        using var channel = GrpcChannel.ForAddress(node.Address);
        var missing = ProtobufMethods.Create<EchoRequest, EchoReply>(MethodType.Unary, "exo.test.v1.Missing", "Nope");

        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await channel.CreateCallInvoker().AsyncUnaryCall(missing, null, default, new EchoRequest()));

        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
    }
}
