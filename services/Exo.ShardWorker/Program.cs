using Exo.Contracts.Health;
using Exo.Grpc;
using Exo.ServiceDefaults;
using Exo.ShardWorker;
using Exo.ShardWorker.Ring;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(ShardWorkerOptions.Usage);
    return;
}

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults("ShardWorker");
builder.AddApplicationServices(args);

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcService<ShardService>();
app.MapGrpcService<HealthService>();
app.Run();
