using Exo.Planner;
using Exo.Planner.Grpc;
using Exo.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults("Planner");
builder.AddApplicationServices();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGrpcService<PlannerService>();
app.MapGrpcHealthChecksService();
app.Run();
