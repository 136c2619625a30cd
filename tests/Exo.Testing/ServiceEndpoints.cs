namespace Exo.Testing;

/// <summary>
/// A gRPC service's two Kestrel endpoints on free loopback ports: <c>http</c> (HTTP/1.1, health) and <c>grpc</c> (h2c),
/// set on its command line the way the AppHost sets them in its environment.
/// </summary>
public sealed record ServiceEndpoints(int HttpPort, int GrpcPort)
{
    public static ServiceEndpoints Free() => new(Ports.Free(), Ports.Free());

    public string Http => $"http://127.0.0.1:{HttpPort}";

    public string Grpc => $"http://127.0.0.1:{GrpcPort}";

    /// <summary>Command-line settings for both endpoints; the grpc endpoint keeps the service's default protocol (HTTP/2 only).</summary>
    public string[] Args => [$"--Kestrel:Endpoints:http:Url={Http}", $"--Kestrel:Endpoints:grpc:Url={Grpc}"];
}
