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
if (builder.TryAddApplicationServices(args) is { } exitCode) return exitCode;

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcService<ShardService>();
app.MapModelFilesApi();
app.MapGrpcHealthChecksService();
app.Run();
return Environment.ExitCode;
