using System.Text;
using System.Text.Json;
using Exo.Text.Constraints;

namespace Exo.Text.Tests.Constraints;

/// <summary>Runs a grammar over text byte by byte, as the token constraint does.</summary>
internal static class GrammarText
{
    public static OutputGrammar Schema(string schema) => OutputGrammar.Json(JsonDocument.Parse(schema).RootElement.Clone());

    /// <summary>Whether <paramref name="text"/> is a whole sentence of the grammar.</summary>
    public static bool Matches(OutputGrammar grammar, string text)
    {
        var runner = new GrammarRunner(grammar.Grammar);
        var config = runner.Start();
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            config = runner.Next(config, b);
            if (config == GrammarRunner.Dead) return false;
        }
        return runner.Accepts(config);
    }

    /// <summary>The fewest bytes that complete the grammar after <paramref name="text"/>.</summary>
    public static int CostAfter(OutputGrammar grammar, string text)
    {
        var runner = new GrammarRunner(grammar.Grammar);
        var config = runner.Start();
        foreach (var b in Encoding.UTF8.GetBytes(text)) config = runner.Next(config, b);
        return runner.Cost(config);
    }
}
