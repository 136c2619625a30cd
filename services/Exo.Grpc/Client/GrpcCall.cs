using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using Exo.Grpc.Protocol;

namespace Exo.Grpc.Client;

/// <summary>
/// One client call over one HTTP/2 stream. It is its own request writer and response reader, so a streaming
/// call costs a single object beyond the HTTP machinery. The request body is an <see cref="HttpContent"/> that
/// stays open until the caller completes the request stream, which is what makes duplex calls possible.
/// </summary>
internal sealed class GrpcCall<TRequest, TResponse> : ICallState, IClientStreamWriter<TRequest>, IAsyncStreamReader<TResponse>, IRequestBodySource
    where TRequest : class
    where TResponse : class
{
    private static readonly MediaTypeHeaderValue GrpcContentType = new(GrpcProtocol.ContentType);
    private static readonly ProductInfoHeaderValue UserAgent = new("grpc-dotnet-exo", "1.0");

    private readonly GrpcChannel _channel;
    private readonly Method<TRequest, TResponse> _method;
    private readonly CallOptions _options;
    private readonly TRequest? _singleRequest;
    private readonly CancellationTokenSource _cts;
    private readonly CancellationTokenRegistration _abortRegistration;
    private readonly TaskCompletionSource<Stream> _requestStream = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _requestDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<Metadata> _headers = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _responseReady;
    private readonly bool _gzipRequests;
    private HttpResponseMessage? _response;
    private GrpcMessageReader? _reader;
    private GrpcMessageWriter? _writer;
    private Status? _status;
    private Metadata? _trailers;
    private TResponse? _current;
    private int _writing;
    private bool _requestCompleted;
    private volatile bool _disposed;

    public GrpcCall(GrpcChannel channel, Method<TRequest, TResponse> method, CallOptions options, TRequest? request)
    {
        _channel = channel;
        _method = method;
        _options = options;
        _singleRequest = request;
        _gzipRequests = string.Equals(channel.Options.SendCompression, GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase);
        _cts = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken);
        _headers.Task.ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);

        TimeSpan? timeout = null;
        if (options.Deadline is { } deadline && deadline != DateTime.MaxValue)
        {
            timeout = deadline.ToUniversalTime() - DateTime.UtcNow;
            if (timeout <= TimeSpan.Zero)
            {
                // Already late: fail without touching the network, as grpc.io clients do.
                Finish(new Status(StatusCode.DeadlineExceeded, "Deadline exceeded before the call started."), Metadata.Empty);
                _responseReady = Task.CompletedTask;
                return;
            }

            _cts.CancelAfter(timeout.Value);
        }

        _abortRegistration = _cts.Token.UnsafeRegister(static state => ((GrpcCall<TRequest, TResponse>)state!).Abort(), this);
        _responseReady = SendAsync(CreateRequest(timeout));
    }

    public TResponse Current => _current ?? throw new InvalidOperationException("MoveNext has not returned true yet.");

    public Task<Metadata> ResponseHeadersAsync => _headers.Task;

    public Status GetStatus() => _status ?? throw new InvalidOperationException("The call has not finished yet.");

    public Metadata GetTrailers() => _trailers ?? throw new InvalidOperationException("The call has not finished yet.");

    public async Task<TResponse> ReadSingleResponseAsync()
    {
        if (!await MoveNext(CancellationToken.None).ConfigureAwait(false))
        {
            // The stream has ended with OK but a unary response needs a message: the call failed after all.
            _status = new Status(StatusCode.Internal, "The server sent OK without a response message.");
            throw new RpcException(_status.Value, _trailers ?? Metadata.Empty);
        }

        var response = _current!;
        if (await MoveNext(CancellationToken.None).ConfigureAwait(false))
        {
            throw new RpcException(Fail(new Status(StatusCode.Internal, "The server sent more than one response message.")));
        }

        return response;
    }

    public async Task<bool> MoveNext(CancellationToken cancellationToken)
    {
        await _responseReady.ConfigureAwait(false);
        if (_reader is null || _status is not null)
        {
            return ThrowIfFailed();
        }

        using var linked = cancellationToken.CanBeCanceled
            ? CancellationTokenSource.CreateLinkedTokenSource(_cts.Token, cancellationToken)
            : null;
        bool hasMessage;
        try
        {
            (hasMessage, _current) = await _reader.ReadAsync(_method.ResponseMarshaller.ContextualDeserializer, linked?.Token ?? _cts.Token)
                .ConfigureAwait(false);
        }
        catch (RpcException ex)
        {
            throw new RpcException(Fail(ex.Status), _trailers ?? Metadata.Empty);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or HttpRequestException or ObjectDisposedException)
        {
            if (cancellationToken.IsCancellationRequested && !_cts.IsCancellationRequested)
            {
                // Only this read was cancelled; the call is torn down as grpc.io clients do.
                Fail(new Status(StatusCode.Cancelled, "Reading was cancelled."));
            }

            throw new RpcException(Fail(StatusFromTransportError(ex)), _trailers ?? Metadata.Empty);
        }

        if (hasMessage)
        {
            return true;
        }

        var trailers = new Metadata();
        var status = ReadStatus(_response!.TrailingHeaders, trailers)
            ?? new Status(StatusCode.Internal, "The response ended without a grpc-status trailer.");
        Finish(status, trailers);
        return ThrowIfFailed();
    }

    public async Task WriteAsync(TRequest message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_requestCompleted)
        {
            throw new InvalidOperationException("The request stream has already been completed.");
        }

        if (Interlocked.Exchange(ref _writing, 1) == 1)
        {
            throw new InvalidOperationException("Only one write can be pending at a time.");
        }

        try
        {
            ThrowIfFinished();
            var writer = _writer ?? await CreateWriterAsync().ConfigureAwait(false);
            writer.Write(message, _method.RequestMarshaller.ContextualSerializer);
            using var linked = cancellationToken.CanBeCanceled
                ? CancellationTokenSource.CreateLinkedTokenSource(_cts.Token, cancellationToken)
                : null;
            await writer.FlushAsync(linked?.Token ?? _cts.Token).ConfigureAwait(false);
        }
        catch (RpcException ex) when (_status is null)
        {
            // A message that cannot be sent (too large, serializer failure) ends the call.
            Fail(ex.Status);
            throw;
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
        {
            throw new RpcException(Fail(StatusFromTransportError(ex)));
        }
        finally
        {
            Volatile.Write(ref _writing, 0);
        }
    }

    public async Task CompleteAsync()
    {
        if (_requestCompleted)
        {
            return;
        }

        _requestCompleted = true;
        try
        {
            if (_status is null)
            {
                var writer = _writer ?? await CreateWriterAsync().ConfigureAwait(false);
                await writer.Pipe.CompleteAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The call is over (cancelled or failed); its status says why.
        }
        finally
        {
            _requestDone.TrySetResult();
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_status is null)
        {
            Fail(new Status(StatusCode.Cancelled, "The call was disposed."));
        }

        _abortRegistration.Dispose();
        _response?.Dispose();
        _cts.Dispose();
    }

    /// <summary>Called by <see cref="GrpcRequestContent"/> when HttpClient wants the request body.</summary>
    public async Task WriteRequestBodyAsync(Stream stream)
    {
        if (_singleRequest is null)
        {
            _requestStream.TrySetResult(stream);
            await _requestDone.Task.ConfigureAwait(false);
            return;
        }

        var pipe = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
        var writer = new GrpcMessageWriter(pipe, _channel.Options.MaxSendMessageSize, _gzipRequests);
        writer.Write(_singleRequest, _method.RequestMarshaller.ContextualSerializer);
        await writer.FlushAsync(_cts.Token).ConfigureAwait(false);
        await pipe.CompleteAsync().ConfigureAwait(false);
    }

    private HttpRequestMessage CreateRequest(TimeSpan? timeout)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_channel.Address, _method.FullName))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new GrpcRequestContent(this),
        };
        request.Content.Headers.ContentType = GrpcContentType;
        var headers = request.Headers;
        headers.TryAddWithoutValidation("te", "trailers");
        headers.UserAgent.Add(UserAgent);
        headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GrpcProtocol.SupportedEncodings);
        if (_gzipRequests)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.EncodingHeader, GrpcProtocol.Gzip);
        }

        if (timeout is { } value)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcProtocol.FormatTimeout(value));
        }

        if (_options.Headers is { } metadata)
        {
            foreach (var entry in metadata)
            {
                if (GrpcProtocol.IsReservedHeader(entry.Key))
                {
                    throw new ArgumentException($"Metadata key '{entry.Key}' is reserved by the gRPC protocol.");
                }

                headers.TryAddWithoutValidation(entry.Key, GrpcProtocol.EncodeValue(entry));
            }
        }

        return request;
    }

    private async Task SendAsync(HttpRequestMessage request)
    {
        try
        {
            var response = await _channel.Invoker.SendAsync(request, _cts.Token).ConfigureAwait(false);
            _response = response;
            if (_disposed || _status is not null)
            {
                response.Dispose();
                return;
            }

            var headerMetadata = new Metadata();
            foreach (var (name, headerValues) in response.Headers)
            {
                GrpcProtocol.AddHeaderTo(headerMetadata, name, headerValues);
            }

            if (response.StatusCode != HttpStatusCode.OK)
            {
                Fail(new Status(GrpcProtocol.FromHttpStatus((int)response.StatusCode), $"Bad gRPC response. HTTP status code: {(int)response.StatusCode}."));
                return;
            }

            // Trailers-only: the status arrived with the headers and no body follows.
            if (ReadStatus(response.Headers, trailers: null) is { } headerStatus)
            {
                _headers.TrySetResult(headerMetadata);
                Finish(headerStatus, headerMetadata);
                return;
            }

            if (!GrpcProtocol.IsGrpcContentType(response.Content.Headers.ContentType?.MediaType))
            {
                Fail(new Status(StatusCode.Internal, $"Bad gRPC response. Invalid content-type '{response.Content.Headers.ContentType}'."));
                return;
            }

            var encoding = response.Headers.TryGetValues(GrpcProtocol.EncodingHeader, out var values) ? values.FirstOrDefault() : null;
            if (encoding is not null && !encoding.Equals(GrpcProtocol.Identity, StringComparison.OrdinalIgnoreCase)
                && !encoding.Equals(GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase))
            {
                Fail(new Status(StatusCode.Internal, $"The server used unsupported grpc-encoding '{encoding}'."));
                return;
            }

            var stream = await response.Content.ReadAsStreamAsync(_cts.Token).ConfigureAwait(false);
            var pipe = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 65536, minimumReadSize: 4096, leaveOpen: true));
            _reader = new GrpcMessageReader(pipe, _channel.Options.MaxReceiveMessageSize, encoding);
            _headers.TrySetResult(headerMetadata);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or HttpRequestException or ObjectDisposedException)
        {
            Fail(StatusFromTransportError(ex));
        }
        catch (RpcException ex)
        {
            Fail(ex.Status);
        }
    }

    private async Task<GrpcMessageWriter> CreateWriterAsync()
    {
        var stream = await _requestStream.Task.WaitAsync(_cts.Token).ConfigureAwait(false);
        var pipe = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 16384, leaveOpen: true));
        return _writer = new GrpcMessageWriter(pipe, _channel.Options.MaxSendMessageSize, _gzipRequests);
    }

    /// <summary>Reads grpc-status/grpc-message (and, when asked, the other entries as metadata); null when absent.</summary>
    private static Status? ReadStatus(HttpHeaders headers, Metadata? trailers)
    {
        if (!headers.TryGetValues(GrpcProtocol.StatusHeader, out var statusValues))
        {
            return null;
        }

        var message = headers.TryGetValues(GrpcProtocol.MessageHeader, out var messageValues) ? messageValues.FirstOrDefault() : null;
        if (trailers is not null)
        {
            foreach (var (name, entryValues) in headers)
            {
                GrpcProtocol.AddHeaderTo(trailers, name, entryValues);
            }
        }

        return new Status(GrpcProtocol.ParseStatusCode(statusValues.FirstOrDefault()), GrpcProtocol.DecodeMessage(message));
    }

    /// <summary>Names why the transport failed, preferring what the caller did (cancel, deadline) over the symptom.</summary>
    private Status StatusFromTransportError(Exception ex)
    {
        if (_status is { } known)
        {
            return known;
        }

        if (_options.CancellationToken.IsCancellationRequested || _disposed)
        {
            return new Status(StatusCode.Cancelled, "Call canceled by the client.");
        }

        if (_cts.IsCancellationRequested)
        {
            return new Status(StatusCode.DeadlineExceeded, "Deadline exceeded.");
        }

        return ex switch
        {
            HttpProtocolException { ErrorCode: GrpcProtocol.Http2CancelErrorCode } => new Status(StatusCode.Cancelled, "The server cancelled the stream."),
            HttpProtocolException protocol => new Status(StatusCode.Internal, $"HTTP/2 error: {protocol.Message}"),
            HttpRequestException { InnerException: RpcException rpc } => rpc.Status,
            HttpRequestException request => new Status(StatusCode.Unavailable, $"Error connecting to the server: {request.Message}"),
            OperationCanceledException => new Status(StatusCode.Cancelled, "The call was cancelled."),
            _ => new Status(StatusCode.Unavailable, $"Error on the HTTP/2 stream: {ex.Message}"),
        };
    }

    /// <summary>Ends the call with an error status (the first status wins) and resets the stream.</summary>
    private Status Fail(Status status)
    {
        if (Finish(status, _trailers ?? Metadata.Empty))
        {
            _cts.Cancel();
        }

        return _status!.Value;
    }

    private bool Finish(Status status, Metadata trailers)
    {
        lock (_requestDone)
        {
            if (_status is not null)
            {
                return false;
            }

            _trailers = trailers;
            _status = status;
        }

        _headers.TrySetException(new RpcException(status, trailers));
        // The server has answered: stop holding the request body open.
        _requestDone.TrySetResult();
        return true;
    }

    private void Abort()
    {
        _requestStream.TrySetCanceled();
        _requestDone.TrySetResult();
        _response?.Dispose();
    }

    private bool ThrowIfFailed()
    {
        var status = _status ?? new Status(StatusCode.Internal, "The call ended without a status.");
        if (status.StatusCode != StatusCode.OK)
        {
            throw new RpcException(status, _trailers ?? Metadata.Empty);
        }

        return false;
    }

    private void ThrowIfFinished()
    {
        if (_status is { } status)
        {
            if (status.StatusCode == StatusCode.OK)
            {
                throw new InvalidOperationException("The call has finished; no more requests can be written.");
            }

            throw new RpcException(status, _trailers ?? Metadata.Empty);
        }
    }
}

/// <summary>The request body of a call: HttpClient asks for it once and it stays open as long as the call writes.</summary>
internal sealed class GrpcRequestContent(IRequestBodySource source) : HttpContent
{
    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => source.WriteRequestBodyAsync(stream);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        source.WriteRequestBodyAsync(stream);

    protected override bool TryComputeLength(out long length)
    {
        length = -1;
        return false;
    }
}

internal interface IRequestBodySource
{
    Task WriteRequestBodyAsync(Stream stream);
}
