using Exo.Registry;
using Exo.Registry.Grpc;
using Exo.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults("Registry");
builder.AddApplicationServices();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcService<RegistryService>();
app.MapGrpcHealthChecksService();
app.Run();
