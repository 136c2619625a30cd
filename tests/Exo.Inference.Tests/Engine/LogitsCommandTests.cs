using System.Text.Json;
using Exo.Inference.Verification;

namespace Exo.Inference.Tests.Engine;

/// <summary>Runs the real `exo logits` process against another engine's logits: here transformers' reference logits.</summary>
public sealed class LogitsCommandTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>A dump in the format of llama.cpp's dump_logits: the case's tokens and one row of logits per token.</summary>
    private string Dump(ReferenceCase c, Func<float, int, float>? change = null)
    {
        var rows = Enumerable.Range(0, c.InputIds.Length)
            .Select(t => c.Logits.Skip(t * c.Vocab).Take(c.Vocab).Select((v, j) => change?.Invoke(v, t * c.Vocab + j) ?? v).ToArray())
            .ToArray();
        var path = _temp.File($"dump-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, JsonSerializer.Serialize(new { model = "x", n_vocab = c.Vocab, tokens = c.InputIds, logits = rows }));
        return path;
    }

    [Fact]
    public void AgreesWithTransformersLogitsAndFailsWhenTheyAreChanged()
    {
        var folder = RepositoryPaths.Fixture("qwen2-tiny");
        var c = ReferenceFile.Load(folder).Cases[0];
        var (code, output, error) = VerifyCommandTests.Exo("logits", "--model", folder, "--compare", Dump(c), "--tolerance", "1e-4");
        Assert.True(code == 0, output + error);
        Assert.Contains($"argmax agrees at {c.InputIds.Length} of {c.InputIds.Length} positions", output);

        // One logit moved by a tenth of the largest: that position fails and says so.
        var largest = c.Logits.Max(Math.Abs);
        (code, output, _) = VerifyCommandTests.Exo("logits", "--model", folder, "--compare", Dump(c, (v, i) => i == 3 * c.Vocab + 7 ? v + largest / 10 : v));
        Assert.Equal(1, code);
        var worst = System.Text.RegularExpressions.Regex.Match(output, @"FAIL: worst rel err (\S+)");
        Assert.True(worst.Success, output);
        Assert.True(double.Parse(worst.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 0.1, output);
    }

    [Fact]
    public void SavedLogitsOfTheReferenceKernelsAreWhatTheFastKernelsAreComparedWith()
    {
        var folder = RepositoryPaths.Fixture("qwen2-tiny");
        var vocab = ReferenceFile.Load(folder).Cases[0].Vocab;
        var saved = _temp.File("reference-kernels.json");
        var (code, output, error) = VerifyCommandTests.Exo("logits", "--model", folder, "--save", saved, "--tokens", "6", "--reference");
        Assert.True(code == 0, output + error);
        using (var dump = JsonDocument.Parse(File.ReadAllText(saved)))
        {
            var tokens = dump.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray();
            Assert.Equal(Enumerable.Range(0, 6).Select(i => (37 * i + 11) % (vocab - 2)), tokens);
            Assert.All(dump.RootElement.GetProperty("logits").EnumerateArray(), row => Assert.Equal(vocab, row.GetArrayLength()));
        }

        (code, output, error) = VerifyCommandTests.Exo("logits", "--model", folder, "--compare", saved, "--tolerance", "1e-4");
        Assert.True(code == 0, output + error);
        Assert.Contains("argmax agrees at 6 of 6 positions", output);

        (code, _, error) = VerifyCommandTests.Exo("logits", "--model", folder);
        Assert.Equal(2, code);
        Assert.Contains("give --compare FILE, --save FILE or both", error);
    }

    [Fact]
    public void MalformedDumpsAreClearErrors()
    {
        var folder = RepositoryPaths.Fixture("qwen2-tiny");
        var c = ReferenceFile.Load(folder).Cases[0];
        var notJson = _temp.File("bad.json");
        File.WriteAllText(notJson, "{ tokens: ");
        var shortRow = _temp.File("short.json");
        File.WriteAllText(shortRow, JsonSerializer.Serialize(new { tokens = new[] { 1 }, logits = new[] { new[] { 0.5f } } }));
        var badToken = _temp.File("token.json");
        File.WriteAllText(badToken, JsonSerializer.Serialize(new { tokens = new[] { c.Vocab }, logits = new[] { new float[c.Vocab] } }));
        foreach (var (path, message) in new[] { (notJson, "not JSON"), (shortRow, $"not an array of {c.Vocab} numbers"), (badToken, "not an id below") })
        {
            var (code, _, error) = VerifyCommandTests.Exo("logits", "--model", folder, "--compare", path);
            Assert.Equal(2, code);
            Assert.Contains(message, error);
        }
    }
}
