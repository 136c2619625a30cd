using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Exo.Inference.Generation;
using OpenAI;
using OpenAI.Chat;

namespace Exo.Api.Tests;

/// <summary>Tool calls, structured output, logit_bias and n, as the official OpenAI SDKs (.NET and npm) meet them.</summary>
public sealed class ToolCallTests(ToolModel model) : IClassFixture<ToolModel>
{
    private readonly ChatClient _chat = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = model.Api.V1 }).GetChatClient(ToolModel.Id);
    private readonly HttpClient _http = new() { BaseAddress = model.Api.BaseAddress };

    private static readonly ChatTool Weather = ChatTool.CreateFunctionTool("get_weather", "The weather in a city", BinaryData.FromString(
        """{"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}"""));

    private static readonly ChatTool Time = ChatTool.CreateFunctionTool("get_time", "The time in a time zone", BinaryData.FromString(
        """{"type": "object", "properties": {"zone": {"type": "string"}, "hour24": {"type": "boolean"}}, "required": ["zone", "hour24"]}"""));

    private static ChatCompletionOptions Options(ChatToolChoice? choice = null, params ChatTool[] tools)
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 160, ToolChoice = choice };
        foreach (var tool in tools) options.Tools.Add(tool);
        return options;
    }

    [Fact]
    public async Task AnAgentLoopRunsThroughTheDotNetSdkWholeAndStreamed()
    {
        List<ChatMessage> question = [new UserChatMessage("What is the weather in Paris?")];

        // Whole: the forced call, read into OpenAI's tool_calls.
        var first = (await _chat.CompleteChatAsync(question, Options(ChatToolChoice.CreateRequiredChoice(), Weather))).Value;
        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.StartsWith("call_", call.Id);
        AssertWeatherArguments(call.FunctionArguments.ToString());

        // Streamed: the same call (greedy), assembled from delta.tool_calls.
        var streamed = new StringBuilder();
        string? id = null, name = null;
        ChatFinishReason? finish = null;
        await foreach (var update in _chat.CompleteChatStreamingAsync(question, Options(ChatToolChoice.CreateRequiredChoice(), Weather)))
        {
            foreach (var part in update.ToolCallUpdates)
            {
                Assert.Equal(0, part.Index);
                id ??= part.ToolCallId;
                name ??= part.FunctionName;
                streamed.Append(part.FunctionArgumentsUpdate?.ToString());
            }

            finish ??= update.FinishReason;
        }

        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal("get_weather", name);
        Assert.StartsWith("call_", id);
        Assert.Equal(call.FunctionArguments.ToString(), streamed.ToString());

        // The follow-up every agent sends: the assistant's call (content null) and the tool's result; then the answer.
        List<ChatMessage> followUp = [.. question, new AssistantChatMessage(first), new ToolChatMessage(call.Id, """{"temperature": 22}""")];
        var final = (await _chat.CompleteChatAsync(followUp, Options(null, Weather))).Value;
        Assert.NotEqual(ChatFinishReason.ToolCalls, final.FinishReason);
        Assert.Empty(final.ToolCalls);
        Assert.NotEmpty(final.Content[0].Text);
        // The call and its result reached the prompt: the follow-up's prompt is longer by at least their text.
        Assert.True(final.Usage.InputTokenCount > first.Usage.InputTokenCount + 10, $"{final.Usage.InputTokenCount} vs {first.Usage.InputTokenCount}");

        var finalStreamed = new StringBuilder();
        await foreach (var update in _chat.CompleteChatStreamingAsync(followUp, Options(null, Weather)))
            foreach (var part in update.ContentUpdate) finalStreamed.Append(part.Text);
        Assert.Equal(final.Content[0].Text, finalStreamed.ToString());
    }

    [Fact]
    public async Task AnAgentLoopRunsThroughTheNpmSdk()
    {
        // The SDK is installed beside the script by `npm ci --prefix tests/Exo.Api.Tests/npm` (.ci/run does it).
        var script = Path.Combine(RepositoryPaths.Root, "tests", "Exo.Api.Tests", "npm", "agent-loop.mjs");
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetDirectoryName(script)! };
        foreach (var arg in new[] { script, model.Api.V1.ToString(), ToolModel.Id }) start.ArgumentList.Add(arg);
        using var node = Process.Start(start)!;
        var error = node.StandardError.ReadToEndAsync();
        var output = await node.StandardOutput.ReadToEndAsync();
        Assert.True(node.WaitForExit(60_000), "the npm agent loop did not finish in a minute");
        Assert.True(node.ExitCode == 0, $"node exited {node.ExitCode}: {await error}");

        var seen = JsonDocument.Parse(output).RootElement;
        foreach (var run in new[] { seen.GetProperty("whole"), seen.GetProperty("streamed") })
        {
            Assert.Equal("tool_calls", run.GetProperty("finish").GetString());
            Assert.Equal("get_weather", run.GetProperty("call").GetProperty("name").GetString());
            Assert.StartsWith("call_", run.GetProperty("id").GetString());
            AssertWeatherArguments(run.GetProperty("call").GetProperty("arguments").GetString()!);
            Assert.NotEqual("tool_calls", run.GetProperty("finalFinish").GetString());
            Assert.NotEmpty(run.GetProperty("final").GetString()!);
        }

        Assert.Equal(1, seen.GetProperty("streamed").GetProperty("calls").GetInt32());
        Assert.Equal(seen.GetProperty("whole").GetProperty("call").GetProperty("arguments").GetString(),
            seen.GetProperty("streamed").GetProperty("call").GetProperty("arguments").GetString());
        Assert.Equal(seen.GetProperty("whole").GetProperty("final").GetString(), seen.GetProperty("streamed").GetProperty("final").GetString());
    }

    [Fact]
    public async Task ANamedFunctionIsTheOneCalledAndNoneLeavesText()
    {
        foreach (var seed in new long[] { 1, 2, 3 })
        {
            var options = Options(ChatToolChoice.CreateFunctionChoice("get_time"), Weather, Time);
            options.Temperature = 1;
            options.Seed = seed;
            var answer = (await _chat.CompleteChatAsync([new UserChatMessage("What is the weather in Paris?")], options)).Value;
            var call = Assert.Single(answer.ToolCalls);
            Assert.Equal("get_time", call.FunctionName);
            var arguments = JsonDocument.Parse(call.FunctionArguments.ToString()).RootElement;
            Assert.Equal(JsonValueKind.String, arguments.GetProperty("zone").ValueKind);
            Assert.True(arguments.GetProperty("hour24").ValueKind is JsonValueKind.True or JsonValueKind.False);
        }

        var plain = (await _chat.CompleteChatAsync([new UserChatMessage("Hello")], Options(ChatToolChoice.CreateNoneChoice(), Weather))).Value;
        Assert.Empty(plain.ToolCalls);
        Assert.NotEqual(ChatFinishReason.ToolCalls, plain.FinishReason);
    }

    [Fact]
    public async Task StructuredOutputAlwaysParsesAndValidates()
    {
        const string schema = """
            {"type": "object", "properties": {
              "name": {"type": "string", "maxLength": 20},
              "age": {"type": "integer"},
              "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
              "home": {"$ref": "#/$defs/place"}},
             "required": ["name", "age", "tags", "home"], "additionalProperties": false,
             "$defs": {"place": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}, "lat": {"type": "number"}}, "required": ["city", "lat"]}}}
            """;
        for (var seed = 0; seed < 4; seed++)
        {
            var options = new ChatCompletionOptions
            {
                Temperature = 1, Seed = seed, MaxOutputTokenCount = 120,
                ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(schema), jsonSchemaIsStrict: true),
            };
            var answer = (await _chat.CompleteChatAsync([new UserChatMessage("Describe a person.")], options)).Value;
            var person = JsonDocument.Parse(answer.Content[0].Text).RootElement;
            Assert.Equal(["name", "age", "tags", "home"], person.EnumerateObject().Select(p => p.Name));
            Assert.True(person.GetProperty("name").GetString()!.Length <= 20);
            Assert.True(person.GetProperty("age").TryGetInt64(out _));
            Assert.All(person.GetProperty("tags").EnumerateArray(), t => Assert.Contains(t.GetString(), new[] { "a", "b", "c" }));
            Assert.Equal(JsonValueKind.String, person.GetProperty("home").GetProperty("city").ValueKind);
            Assert.Equal(JsonValueKind.Number, person.GetProperty("home").GetProperty("lat").ValueKind);
        }

        var any = (await _chat.CompleteChatAsync([new UserChatMessage("Give me JSON.")],
            new ChatCompletionOptions { MaxOutputTokenCount = 64, ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat() })).Value;
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(any.Content[0].Text).RootElement.ValueKind);
    }

    [Fact]
    public async Task LogitBiasBansAndForcesTokens()
    {
        async Task<string[]> Tokens(string bias)
        {
            using var response = await _http.PostAsync("/v1/completions", Json($$"""{"model": "{{ToolModel.Id}}", "prompt": "Once upon a time", "max_tokens": 6, "temperature": 0, "logprobs": 0, "logit_bias": {{bias}}}"""));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var tokens = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("choices")[0].GetProperty("logprobs").GetProperty("tokens");
            return tokens.EnumerateArray().Select(t => t.GetString()!).ToArray();
        }

        // The greedy first token, banned, gives way to another; a token pushed up by 100 is every token.
        var free = await Tokens("{}");
        using var local = LocalModel.Load(RepositoryPaths.ShippedModel);
        var first = local.Generator.Generate(local.Tokenizer.Encode("Once upon a time"), Inference.Sampling.SamplingParameters.Greedy, 1, local.Special.StopTokenIds).First().Token;
        Assert.Equal(free[0], local.Tokenizer.Decode([first]));
        var banned = await Tokens($$"""{"{{first}}": -100}""");
        Assert.NotEqual(free[0], banned[0]);
        var forced = await Tokens("""{"42": 100}""");
        Assert.All(forced, t => Assert.Equal(local.Tokenizer.Decode([42]), t));
    }

    [Fact]
    public async Task NChoicesComeBackEachWithItsIndexWholeAndStreamed()
    {
        const string body = """{"model": "exo-tiny-tools", "messages": [{"role": "user", "content": "Tell me about Elizabeth Bennet."}], "n": 3, "seed": 5, "temperature": 1.5, "max_tokens": 12""";
        using var whole = await _http.PostAsync("/v1/chat/completions", Json(body + "}"));
        var answer = await whole.Content.ReadFromJsonAsync<JsonElement>();
        var choices = answer.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.True(choices.Select(c => c.GetProperty("message").GetProperty("content").GetString()).Distinct().Count() > 1, "seeded choices should differ");
        var usage = answer.GetProperty("usage");
        Assert.True(usage.GetProperty("completion_tokens").GetInt32() > 12, "every choice's tokens count");

        using var streamed = await _http.PostAsync("/v1/chat/completions", Json(body + ", \"stream\": true}"));
        var texts = new StringBuilder[3].Select(_ => new StringBuilder()).ToArray();
        var finished = new HashSet<int>();
        foreach (var line in (await streamed.Content.ReadAsStringAsync()).Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            foreach (var choice in JsonDocument.Parse(line[6..]).RootElement.GetProperty("choices").EnumerateArray())
            {
                var index = choice.GetProperty("index").GetInt32();
                if (choice.GetProperty("delta").TryGetProperty("content", out var content)) texts[index].Append(content.GetString());
                if (choice.GetProperty("finish_reason").ValueKind == JsonValueKind.String) finished.Add(index);
            }
        }

        Assert.Equal([0, 1, 2], finished.Order());
        Assert.Equal(choices.Select(c => c.GetProperty("message").GetProperty("content").GetString()), texts.Select(t => t.ToString()));
    }

    [Theory]
    [InlineData("""{"tools": {"type": "function"}}""", "tools")]
    [InlineData("""{"tools": [{"type": "function", "function": {"name": "bad name!"}}]}""", "tools[0].function.name")]
    [InlineData("""{"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "strange"}}}}}], "tool_choice": "required"}""", "tools")]
    [InlineData("""{"tool_choice": "required"}""", "tool_choice")]
    [InlineData("""{"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required", "max_completion_tokens": 5}""", "max_completion_tokens")]
    [InlineData("""{"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}, "max_tokens": 3}""", "max_tokens")]
    [InlineData("""{"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}""", "tool_choice")]
    [InlineData("""{"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/missing"}}}}""", "response_format")]
    [InlineData("""{"response_format": {"type": "xml"}}""", "response_format.type")]
    [InlineData("""{"logit_bias": {"5": 101}}""", "logit_bias")]
    [InlineData("""{"logit_bias": {"99999999": 1}}""", "logit_bias")]
    [InlineData("""{"n": 17}""", "n")]
    [InlineData("""{"messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "not json"}}]}]}""", "messages[0].tool_calls[0].function.arguments")]
    public async Task BadToolAndFormatRequestsAre400sNamingTheField(string fields, string param)
    {
        var request = JsonDocument.Parse(fields).RootElement;
        var body = new Dictionary<string, JsonElement>
        {
            ["model"] = JsonSerializer.SerializeToElement(ToolModel.Id),
            ["messages"] = JsonSerializer.SerializeToElement(new[] { new { role = "user", content = "Hi" } }),
        };
        foreach (var property in request.EnumerateObject()) body[property.Name] = property.Value;
        using var response = await _http.PostAsJsonAsync("/v1/chat/completions", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, text);
        Assert.Equal(param, JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("param").GetString());
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>get_weather's arguments: an object with a string city and, if any, a unit of its enum, and nothing else.</summary>
    private static void AssertWeatherArguments(string json)
    {
        var arguments = JsonDocument.Parse(json).RootElement;
        Assert.Equal(JsonValueKind.String, arguments.GetProperty("city").ValueKind);
        if (arguments.TryGetProperty("unit", out var unit)) Assert.Contains(unit.GetString(), new[] { "celsius", "fahrenheit" });
        Assert.All(arguments.EnumerateObject(), p => Assert.Contains(p.Name, new[] { "city", "unit" }));
    }
}
