using System.Reflection;
using Exo.Contracts.V1;
using Exo.ServiceDefaults;
using Grpc.Core;
using Exo.ShardWorker.Stages;
using Microsoft.Extensions.Options;

namespace Exo.ShardWorker.Node;

/// <summary>
/// Keeps this node in the cluster: measures the machine, registers, renews the lease by heartbeat (registering again if
/// the registry forgot it), and deregisters on the way out. A refusal because another machine holds this node id (a
/// cloned data directory) or because this node lacks the cluster's join secret stops the worker with the registry's
/// explanation (exit code 3).
/// </summary>
public sealed partial class NodeAgent(
    Contracts.V1.Registry.RegistryClient registry,
    IOptions<ShardWorkerOptions> options,
    NodeId node,
    StageHosts hosts,
    WorkerCompute compute,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<NodeAgent> logger) : BackgroundService
{
    private readonly string _instanceToken = Guid.NewGuid().ToString("N");

    /// <summary>Longer than any lease the registry grants: an id still held after this belongs to another live process.</summary>
    private static readonly TimeSpan HeldIdPatience = TimeSpan.FromSeconds(30);
    private NodeInfo? _info;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _info = await Task.Run(Describe, stoppingToken);
        LogMeasured(node.Value, _info.Backend + (_info.DeviceName.Length > 0 ? $" ({_info.DeviceName})" : ""), _info.BandwidthBytesPerSecond / 1e9, _info.Flops / 1e9, _info.AvailableMemoryBytes / 1e9, string.Join(", ", _info.ModelsOnDisk));
        long? heldSince = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var lease = await registry.RegisterAsync(new RegisterRequest { Node = _info, InstanceToken = _instanceToken }, new CallOptions(cancellationToken: stoppingToken));
                LogRegistered(node.Value, _info.GrpcEndpoint, lease.LeaseTtlMs);
                heldSince = null;
                var interval = TimeSpan.FromMilliseconds(Math.Max(100, lease.LeaseTtlMs / 4));
                while (true)
                {
                    await Task.Delay(interval, stoppingToken);
                    var heartbeat = new HeartbeatRequest { NodeId = node.Value, LeaseId = lease.LeaseId, AvailableMemoryBytes = _info.AvailableMemoryBytes };
                    await registry.HeartbeatAsync(heartbeat, new CallOptions(cancellationToken: stoppingToken));
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists)
            {
                // This worker's previous process was killed and its lease is still live (it expires within seconds), or
                // the node id was cloned to another machine: only the first resolves itself by waiting.
                heldSince ??= time.GetTimestamp();
                if (time.GetElapsedTime(heldSince.Value) >= HeldIdPatience)
                {
                    Refused(e.Status.Detail);
                    return;
                }

                if (time.GetElapsedTime(heldSince.Value) < TimeSpan.FromSeconds(1)) LogIdHeld(node.Value, HeldIdPatience.TotalSeconds);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.InvalidArgument or StatusCode.Unauthenticated)
            {
                // Retrying cannot help: a description the registry refuses, or a join secret that is missing or wrong.
                Refused(e.Status.Detail);
                return;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
                LogLeaseLost(node.Value);
            }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException && !stoppingToken.IsCancellationRequested)
            {
                LogRegistryUnreachable(e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
            catch (Exception) when (stoppingToken.IsCancellationRequested)
            {
                // A call cut short by stopping; StopAsync deregisters.
                return;
            }
        }
    }

    private void Refused(string detail)
    {
        LogRefused(detail);
        Environment.ExitCode = 3;
        lifetime.StopApplication();
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (_info is null) return;
        try
        {
            // Leaving at once spares the cluster the lease timeout before it re-plans.
            await registry.DeregisterAsync(new DeregisterRequest { NodeId = node.Value, LeaseId = _instanceToken },
                new CallOptions(deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken));
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or IOException or OperationCanceledException)
        {
            LogDeregisterFailed(e.Message);
        }
    }

    private NodeInfo Describe()
    {
        var o = options.Value;
        // A GPU node's layers live in the GPU's memory: that is what it offers and what the planner counts.
        var gpu = compute.Gpu;
        var (total, available) = gpu is null ? MachineProbe.Memory() : (gpu.MemoryBytes, gpu.MemoryBytes * 9 / 10);
        // Offered memory stays what it was at start: memory moves as layers load, and re-planning on that would oscillate.
        var offered = o.MemoryMegabytes is { } mb ? mb * 1024 * 1024 : available;
        var info = new NodeInfo
        {
            NodeId = node.Value,
            GrpcEndpoint = o.Endpoint(o.GrpcPort),
            Host = Environment.MachineName,
            Os = MachineProbe.Os,
            Arch = MachineProbe.Arch,
            Backend = gpu is null ? "cpu" : "vulkan",
            DeviceName = gpu?.Name ?? "",
            TotalMemoryBytes = (ulong)total,
            AvailableMemoryBytes = (ulong)offered,
            BandwidthBytesPerSecond = gpu?.BandwidthBytesPerSecond ?? MachineProbe.ReadBandwidth(),
            // The CPU's FLOPS say nothing of a GPU's, which is not measured yet: 0 is "unknown" to the planner.
            Flops = gpu is null ? MachineProbe.Flops(TimeSpan.FromMilliseconds(100)) : 0,
            Version = typeof(NodeAgent).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0",
        };
        info.ModelsOnDisk.AddRange(hosts.ModelsOnDisk());
        info.FetchesModels = true;
        info.WeightTypes.AddRange(Exo.Inference.Weights.LoadQuantization.Supported.Select(t => Exo.Inference.Weights.LoadQuantization.Name(t)));
        return info;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} on {Backend}: {Bandwidth:0.0} GB/s read, {Gflops:0} GFLOPS, {Memory:0.0} GB offered; models on disk: {Models}")]
    private partial void LogMeasured(string nodeId, string backend, double bandwidth, double gflops, double memory, string models);

    [LoggerMessage(Level = LogLevel.Information, Message = "Registered {NodeId} at {Endpoint} (lease {TtlMs} ms)")]
    private partial void LogRegistered(string nodeId, string endpoint, uint ttlMs);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Another instance holds node id {NodeId} (a previous run of this worker that was killed, whose lease has not expired yet?); retrying for {Seconds:0} s")]
    private partial void LogIdHeld(string nodeId, double seconds);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The registry refused this node: {Detail}")]
    private partial void LogRefused(string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The registry no longer knows {NodeId} (its lease expired); registering again")]
    private partial void LogLeaseLost(string nodeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot reach the registry ({Reason}); retrying")]
    private partial void LogRegistryUnreachable(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not deregister ({Reason}); the lease will expire instead")]
    private partial void LogDeregisterFailed(string reason);
}
