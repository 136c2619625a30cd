using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Exo.Contracts;

/// <summary>
/// The cluster's join secret (<c>Cluster:Secret</c>, <c>Cluster__Secret</c> in the environment), configured once per
/// cluster and given to every node: each gRPC call between nodes carries it as <see cref="Header"/>, and the registry,
/// the planner and the shard workers refuse calls without it. With none configured nothing is sent or required, as for
/// one machine's services started by hand.
/// </summary>
public sealed class ClusterSecret
{
    public const string Setting = "Cluster:Secret";
    public const string Header = "x-exo-cluster-secret";
    public const string Fix = "set Cluster__Secret to the value the cluster was started with (the AppHost keeps it in the cluster-secret file of its data directory)";

    private readonly byte[] _digest;

    public ClusterSecret(string? value)
    {
        var secret = string.IsNullOrWhiteSpace(value) ? null : value.Trim();
        IsSet = secret is not null;
        _digest = Digest(secret);
        Interceptor = new HeaderInterceptor(secret);
    }

    public static ClusterSecret None { get; } = new(null);

    public bool IsSet { get; }

    /// <summary>Adds the secret to every call made through it (a pass-through when none is configured).</summary>
    public Interceptor Interceptor { get; }

    /// <summary>A channel's calls, carrying the secret.</summary>
    public CallInvoker Attach(ChannelBase channel) => channel.Intercept(Interceptor);

    /// <summary>Why a call that presents <paramref name="presented"/> is refused; null when it is let in.</summary>
    public string? Refusal(string? presented) =>
        !IsSet ? null
        : presented is null ? $"this node does not have the cluster's join secret: {Fix}"
        // Digests of equal length, so the comparison's time says nothing of the secret, its length included.
        : CryptographicOperations.FixedTimeEquals(_digest, Digest(presented.Trim())) ? null
        : $"this node's join secret is not the cluster's: {Fix}";

    /// <summary>
    /// A signature of <paramref name="text"/> that only holders of the secret can make (HMAC-SHA256 keyed by its digest,
    /// hex); null without a secret. It lets a node tell its cluster's advertisements on the network from anyone else's.
    /// </summary>
    public string? Sign(string text) => IsSet ? Convert.ToHexStringLower(HMACSHA256.HashData(_digest, Encoding.UTF8.GetBytes(text))) : null;

    /// <summary>Whether <paramref name="signature"/> is <see cref="Sign"/>'s for <paramref name="text"/>; without a secret, anything is.</summary>
    public bool Verifies(string text, string? signature)
    {
        if (!IsSet) return true;
        if (signature is not { Length: 64 } || !signature.All(char.IsAsciiHexDigit)) return false;
        return CryptographicOperations.FixedTimeEquals(HMACSHA256.HashData(_digest, Encoding.UTF8.GetBytes(text)), Convert.FromHexString(signature));
    }

    private static byte[] Digest(string? secret) => secret is null ? [] : SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    private sealed class HeaderInterceptor(string? secret) : Interceptor
    {
        public override TResponse BlockingUnaryCall<TRequest, TResponse>(
            TRequest request, ClientInterceptorContext<TRequest, TResponse> context, BlockingUnaryCallContinuation<TRequest, TResponse> continuation) =>
            continuation(request, With(context));

        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
            TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation) =>
            continuation(request, With(context));

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(
            TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation) =>
            continuation(request, With(context));

        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(
            ClientInterceptorContext<TRequest, TResponse> context, AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation) =>
            continuation(With(context));

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(
            ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation) =>
            continuation(With(context));

        private ClientInterceptorContext<TRequest, TResponse> With<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context)
            where TRequest : class where TResponse : class
        {
            if (secret is null) return context;
            // A copy: the caller's headers may be shared with other calls.
            var headers = new Metadata();
            foreach (var entry in context.Options.Headers ?? []) headers.Add(entry);
            headers.Add(Header, secret);
            return new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, context.Options.WithHeaders(headers));
        }
    }
}
