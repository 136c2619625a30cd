using System.CommandLine;
using Exo.Inference.Sampling;

namespace Exo.Cli.Commands;

/// <summary>The sampling and length options shared by the commands that generate text.</summary>
internal sealed class SamplingOptions
{
    private readonly Option<int> _maxTokens = new("--max-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => 256 };
    private readonly Option<float> _temperature = new("--temperature") { Description = "Sampling temperature; 0 is greedy", DefaultValueFactory = _ => 0f };
    private readonly Option<float> _topP = new("--top-p") { Description = "Nucleus sampling: keep the most likely tokens up to this probability mass", DefaultValueFactory = _ => 1f };
    private readonly Option<int> _topK = new("--top-k") { Description = "Keep only the k most likely tokens; 0 keeps all", DefaultValueFactory = _ => 0 };
    private readonly Option<float> _minP = new("--min-p") { Description = "Drop tokens less likely than this fraction of the most likely one", DefaultValueFactory = _ => 0f };
    private readonly Option<float> _repetitionPenalty = new("--repetition-penalty") { Description = "Penalise tokens already seen; 1 is off", DefaultValueFactory = _ => 1f };
    private readonly Option<ulong?> _seed = new("--seed") { Description = "Random seed; the same seed gives the same text" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _maxTokens, _temperature, _topP, _topK, _minP, _repetitionPenalty, _seed }) command.Options.Add(option);
    }

    public int MaxTokens(ParseResult parse)
    {
        var n = parse.GetValue(_maxTokens);
        return n > 0 ? n : throw new ArgumentOutOfRangeException("--max-tokens", n, "--max-tokens must be positive");
    }

    public SamplingParameters Sampling(ParseResult parse)
    {
        var p = new SamplingParameters
        {
            Temperature = parse.GetValue(_temperature),
            TopP = parse.GetValue(_topP),
            TopK = parse.GetValue(_topK),
            MinP = parse.GetValue(_minP),
            RepetitionPenalty = parse.GetValue(_repetitionPenalty),
            Seed = parse.GetValue(_seed),
        };
        p.Validate();
        return p;
    }
}
