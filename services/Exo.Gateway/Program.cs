using Exo.Gateway;
using Exo.Gateway.Apis;
using Exo.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults("Gateway");
builder.AddApplicationServices();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapOpenAiApi();
app.MapClusterApi();
app.MapChatUi();
app.Run();

/// <summary>The entry point, visible to the tests' web application factory.</summary>
public partial class Program;
