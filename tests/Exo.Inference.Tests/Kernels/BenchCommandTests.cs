using System.Text.Json;
using Exo.Inference.Model;
using Exo.Inference.Tests.Engine;

namespace Exo.Inference.Tests.Kernels;

/// <summary>Runs the real `exo bench` process on a fixture model.</summary>
public sealed class BenchCommandTests
{
    [Fact]
    public void JsonModePrintsOneConsistentLinePerThreadCount()
    {
        var folder = RepositoryPaths.Fixture("llama-tiny");
        var (code, output, error) = VerifyCommandTests.Exo("bench", "--model", folder, "--threads", "1,2", "--pp", "8", "--tg", "4",
            "--batch", "2", "--json", "--bandwidth-mb", "64");
        Assert.True(code == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);

        using var stage = ModelStage.Load(folder);
        for (var i = 0; i < 2; i++)
        {
            var r = JsonDocument.Parse(lines[i]).RootElement;
            Assert.Equal("exo", r.GetProperty("engine").GetString());
            Assert.Equal(i + 1, r.GetProperty("threads").GetInt32());
            double pp = r.GetProperty("pp_tok_s").GetDouble(), tg = r.GetProperty("tg_tok_s").GetDouble(), read = r.GetProperty("read_gb_s").GetDouble();
            Assert.True(pp > 0 && tg > 0 && read > 0 && r.GetProperty("batch_tg_tok_s").GetDouble() > 0, lines[i]);
            Assert.Equal(stage.Weights.BytesPerToken, r.GetProperty("weight_bytes").GetInt64());
            Assert.Equal(tg * stage.Weights.BytesPerToken / (read * 1e9), r.GetProperty("roofline_fraction").GetDouble(), 1e-9);
            Assert.Equal(8 / pp * 1000, r.GetProperty("ttft_ms").GetDouble(), 1e-6);
        }
    }

    [Fact]
    public void JsonSchemaModeComparesConstrainedWithFreeDecode()
    {
        using var folder = new TempDirectory();
        var schema = Path.Combine(folder.Path, "person.json");
        File.WriteAllText(schema, JsonSchemas.Acceptance[0].Schema);
        var (code, output, error) = VerifyCommandTests.Exo("bench", "--model", RepositoryPaths.ShippedModel, "--json-schema", schema, "--tg", "40", "--threads", "1");
        Assert.True(code == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        for (var i = 0; i < 2; i++)
        {
            var match = System.Text.RegularExpressions.Regex.Match(lines[i],
                @"^decode at temperature ([0-9.]+): ([0-9.]+) tok/s unconstrained, ([0-9.]+) tok/s with the json_schema \([+-][0-9.]+ %\)$");
            Assert.True(match.Success, lines[i]);
            Assert.Equal(i == 0 ? "0" : "0.8", match.Groups[1].Value);
            Assert.True(double.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) > 0 &&
                double.Parse(match.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture) > 0, lines[i]);
        }
    }

    [Theory]
    [InlineData("{\"type\": ", "is not JSON")]
    [InlineData("{\"type\": \"object\", \"minProperties\": 3, \"maxProperties\": 2}", "person.json:")]
    public void BadSchemasAreClearErrors(string text, string message)
    {
        using var folder = new TempDirectory();
        var schema = Path.Combine(folder.Path, "person.json");
        File.WriteAllText(schema, text);
        var (code, _, error) = VerifyCommandTests.Exo("bench", "--model", RepositoryPaths.ShippedModel, "--json-schema", schema);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
        File.WriteAllText(schema, JsonSchemas.Acceptance[0].Schema);
        (code, _, error) = VerifyCommandTests.Exo("bench", "--model", RepositoryPaths.ShippedModel, "--json-schema", schema, "--tg", "2");
        Assert.Equal(2, code);
        Assert.Contains("raise --tg", error);
        (code, _, error) = VerifyCommandTests.Exo("bench", "--model", RepositoryPaths.ShippedModel, "--json-schema", Path.Combine(folder.Path, "none.json"));
        Assert.Equal(2, code);
        Assert.Contains("does not exist", error);
    }

    [Theory]
    [InlineData("--threads", "one", "not a thread count")]
    [InlineData("--pp", "0", "--pp must be positive")]
    [InlineData("--batch", "-2", "--batch must be positive")]
    public void BadOptionsAreClearErrors(string option, string value, string message)
    {
        var (code, _, error) = VerifyCommandTests.Exo("bench", "--model", RepositoryPaths.Fixture("llama-tiny"), option, value);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
    }
}
