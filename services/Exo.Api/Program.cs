using Exo.Api;
using Exo.Api.Apis;
using Exo.Api.OpenAi;
using Exo.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddDefaultEndpoints(httpPort: 52420);
builder.AddServiceDefaults("Api");
builder.AddApplicationServices();

var app = builder.Build();
app.MapDefaultEndpoints();
app.UseOpenAiErrorsForUnmatchedRequests();
app.MapOpenAiApi();
app.MapOllamaApi();
app.MapClusterApi();
app.Run();

/// <summary>The entry point, visible to the tests' web application factory.</summary>
public partial class Program;
