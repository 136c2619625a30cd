using Exo.Gateway;
using Exo.Gateway.Apis;

var builder = WebApplication.CreateBuilder(args);
builder.AddApplicationServices();

var app = builder.Build();
app.MapOpenAiApi();
app.MapClusterApi();
app.MapChatUi();
app.Run();

/// <summary>The entry point, visible to the tests' web application factory.</summary>
public partial class Program;
