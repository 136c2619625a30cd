using Exo.Text.Tokenization;

namespace Exo.Text.Tests.Tokenization;

/// <summary>Our tokenizer against what Hugging Face's tokenizers library computed for the fixture and real tokenizers.</summary>
public sealed class ReferenceTokenizerTests
{
    public static TheoryData<string> Fixtures => SharedData.FolderNames("fixtures");

    public static TheoryData<string> RealTokenizers => SharedData.FolderNames("realtok");

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void FixtureTokenizerMatchesReference(string name)
    {
        var folder = Path.Combine(RepositoryPaths.Shared, "fixtures", name);
        var tokenizer = Tokenizer.FromModelDirectory(folder);
        var reference = SharedData.ReadJson(Path.Combine(folder, "reference.json"));
        var cases = reference.GetProperty("tokenizer").EnumerateArray().ToList();
        Assert.NotEmpty(cases);
        foreach (var entry in cases)
        {
            var text = entry.GetProperty("text").GetString()!;
            var expected = SharedData.Ints(entry.GetProperty("ids"));
            var ids = tokenizer.Encode(text);
            Assert.True(expected.SequenceEqual(ids), $"{name} '{text}': expected [{string.Join(",", expected)}] got [{string.Join(",", ids)}]");
            Assert.Equal(entry.GetProperty("decoded").GetString(), tokenizer.Decode(ids, skipSpecialTokens: true));
        }
    }

    [Theory]
    [MemberData(nameof(RealTokenizers))]
    public void RealTokenizerMatchesTokenizersLibrary(string name)
    {
        var folder = Path.Combine(RepositoryPaths.Shared, "realtok", name);
        var tokenizer = Tokenizer.FromModelDirectory(folder);
        var refs = SharedData.ReadJson(Path.Combine(folder, "refs.json"));
        var failures = new List<string>();
        var count = 0;
        foreach (var entry in refs.GetProperty("encode_cases").EnumerateArray())
        {
            count++;
            var input = entry.GetProperty("input").GetString()!;
            var raw = entry.GetProperty("raw");
            var withSpecial = tokenizer.Encode(input, addSpecialTokens: true);
            var noSpecial = tokenizer.Encode(input, addSpecialTokens: false);
            Check(failures, input, "ids_with_special", string.Join(",", SharedData.Ints(raw.GetProperty("ids_with_special"))), string.Join(",", withSpecial));
            Check(failures, input, "ids_no_special", string.Join(",", SharedData.Ints(raw.GetProperty("ids_no_special"))), string.Join(",", noSpecial));
            Check(failures, input, "tokens_no_special",
                string.Join("\u0001", raw.GetProperty("tokens_no_special").EnumerateArray().Select(t => t.GetString())),
                string.Join("\u0001", noSpecial.Select(id => tokenizer.IdToToken(id))));
            var expectedIds = SharedData.Ints(raw.GetProperty("ids_with_special"));
            Check(failures, input, "decode_with_special", raw.GetProperty("decode_with_special").GetString()!, tokenizer.Decode(expectedIds));
            Check(failures, input, "decode_skip_special", raw.GetProperty("decode_skip_special").GetString()!, tokenizer.Decode(expectedIds, skipSpecialTokens: true));
        }
        Assert.True(count > 0);
        Assert.True(failures.Count == 0, $"{name}: {failures.Count} mismatches:\n" + string.Join("\n", failures));
    }

    private static void Check(List<string> failures, string input, string field, string expected, string actual)
    {
        if (expected != actual)
        {
            failures.Add($"{field} of {System.Text.Json.JsonSerializer.Serialize(input)}:\n  expected {System.Text.Json.JsonSerializer.Serialize(expected)}\n  actual   {System.Text.Json.JsonSerializer.Serialize(actual)}");
        }
    }
}
