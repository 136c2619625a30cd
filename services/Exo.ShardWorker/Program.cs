using Exo.ServiceDefaults;
using Exo.ShardWorker;
using Exo.ShardWorker.Ring;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(ShardWorkerOptions.Usage);
    return 0;
}

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults("ShardWorker");
try
{
    builder.AddApplicationServices(args);
}
catch (Exception e) when (e is InvalidOperationException or InvalidDataException or IOException or UnauthorizedAccessException
                               or Exo.Inference.Vulkan.GpuUnavailableException)
{
    // Settings a person typed: one line saying what to fix, not a stack trace.
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
catch (OperationCanceledException)
{
    return 0; // Stopped while looking for a cluster.
}

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcService<ShardService>();
app.MapModelFilesApi();
app.MapGrpcHealthChecksService();
app.Run();
return Environment.ExitCode;
