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
