using Exo.Gateway;
using Exo.Gateway.Edge;
using Exo.Gateway.Proxy;
using Exo.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddDefaultEndpoints(httpPort: 52415);
builder.AddServiceDefaults("Gateway");
builder.AddApplicationServices();

var app = builder.Build();
app.UseEdgeChecks();
app.MapDefaultEndpoints();
app.MapChatUi();
app.MapApiProxy();
app.Run();
