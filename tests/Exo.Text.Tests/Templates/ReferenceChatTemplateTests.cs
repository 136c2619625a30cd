using System.Text.Json;
using Exo.Text.Templates;
using Exo.Text.Tokenization;

namespace Exo.Text.Tests.Templates;

/// <summary>Chat templates rendered against what transformers rendered, and the rendered text tokenized.</summary>
public sealed class ReferenceChatTemplateTests
{
    public static TheoryData<string> Fixtures => SharedData.FolderNames("fixtures");

    public static TheoryData<string> RealTokenizers => SharedData.FolderNames("realtok");

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void FixtureChatMatchesReference(string name)
    {
        var folder = Path.Combine(RepositoryPaths.Shared, "fixtures", name);
        var template = ChatTemplate.FromModelDirectory(folder);
        var tokenizer = Tokenizer.FromModelDirectory(folder);
        var cases = SharedData.ReadJson(Path.Combine(folder, "reference.json")).GetProperty("chat").EnumerateArray().ToList();
        Assert.NotEmpty(cases);
        foreach (var entry in cases)
        {
            var text = template.Render(entry.GetProperty("messages"), null, entry.GetProperty("add_generation_prompt").GetBoolean());
            Assert.Equal(entry.GetProperty("text").GetString(), text);
            Assert.Equal(SharedData.Ints(entry.GetProperty("ids")), tokenizer.Encode(text, addSpecialTokens: false));
        }
    }

    [Theory]
    [MemberData(nameof(RealTokenizers))]
    public void RealChatTemplateMatchesTransformers(string name)
    {
        var folder = Path.Combine(RepositoryPaths.Shared, "realtok", name);
        var refs = SharedData.ReadJson(Path.Combine(folder, "refs.json"));
        // strftime_now must see the moment the references were made (their machine kept UTC).
        var generated = DateTimeOffset.Parse(refs.GetProperty("generated_utc").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        var template = ChatTemplate.FromModelDirectory(folder, new FixedClock(generated));
        var tokenizer = Tokenizer.FromModelDirectory(folder);
        var failures = new List<string>();
        var count = 0;
        foreach (var entry in refs.GetProperty("chat_cases").EnumerateArray())
        {
            count++;
            var caseName = entry.GetProperty("name").GetString();
            var (addGenerationPrompt, continueFinal, extra) = ReadKwargs(entry.GetProperty("kwargs"));
            var tools = entry.GetProperty("tools");
            string? text = null;
            TemplateException? error = null;
            try
            {
                text = template.Render(entry.GetProperty("messages"), tools, addGenerationPrompt, extra, continueFinal);
            }
            catch (TemplateException e)
            {
                error = e;
            }

            if (entry.TryGetProperty("error", out var expectedError))
            {
                var expectedKind = expectedError.GetProperty("type").GetString() switch
                {
                    "TemplateError" => TemplateErrorKind.Raised,
                    "TypeError" => TemplateErrorKind.Type,
                    "ValueError" => TemplateErrorKind.Value,
                    var other => throw new InvalidOperationException("unknown error type " + other),
                };
                if (error is null || error.Kind != expectedKind || error.Detail != expectedError.GetProperty("message").GetString())
                {
                    failures.Add($"{caseName}: expected {expectedKind} '{expectedError.GetProperty("message").GetString()}', got {(error is null ? "text" : $"{error.Kind} '{error.Detail}'")}");
                }
                continue;
            }
            if (error is not null)
            {
                failures.Add($"{caseName}: unexpected error {error.Message}");
                continue;
            }
            if (text != entry.GetProperty("text").GetString())
            {
                failures.Add($"{caseName}: text differs\n  expected {JsonSerializer.Serialize(entry.GetProperty("text").GetString())}\n  actual   {JsonSerializer.Serialize(text)}");
                continue;
            }
            var ids = tokenizer.Encode(text!, addSpecialTokens: false);
            if (!SharedData.Ints(entry.GetProperty("raw_ids_of_text")).SequenceEqual(ids))
            {
                failures.Add($"{caseName}: ids of the text differ");
            }
        }
        Assert.True(count > 0);
        Assert.True(failures.Count == 0, $"{name}: {failures.Count} failures:\n" + string.Join("\n", failures));
    }

    private static (bool AddGenerationPrompt, bool ContinueFinal, Dictionary<string, object?> Extra) ReadKwargs(JsonElement kwargs)
    {
        var add = false;
        var continueFinal = false;
        var extra = new Dictionary<string, object?>();
        foreach (var property in kwargs.EnumerateObject())
        {
            switch (property.Name)
            {
                case "add_generation_prompt":
                    add = property.Value.GetBoolean();
                    break;
                case "continue_final_message":
                    continueFinal = property.Value.GetBoolean();
                    break;
                default:
                    extra[property.Name] = property.Value;
                    break;
            }
        }
        return (add, continueFinal, extra);
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }
}
