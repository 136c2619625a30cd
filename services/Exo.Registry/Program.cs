using Exo.Registry;
using Exo.Registry.Grpc;
using Exo.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults("Registry");
try
{
    builder.AddApplicationServices();
}
catch (InvalidOperationException e)
{
    // Settings a person typed (the advertisement's): one line saying what to fix, not a stack trace.
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcService<RegistryService>();
app.MapGrpcHealthChecksService();
app.Run();
return Environment.ExitCode;
