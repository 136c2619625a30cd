using System.Text.Json;
using Exo.Text.Templates;

namespace Exo.Text.Tests.Templates;

/// <summary>
/// Where {% generation %} blocks land. Each expectation is what transformers' AssistantTracker extension records with
/// Jinja2 3.1.6 (its quirks included: nothing before the first top-level output, and a block inside a macro or set
/// block starts at the length of the top-level output at that moment).
/// </summary>
public sealed class GenerationBlockTests
{
    private static readonly JsonElement Messages = JsonDocument.Parse("""
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A!"}]
        """).RootElement;

    [Theory]
    [InlineData("{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}</s>{% endgeneration %}{% else %}{{ m.content }}{% endif %}\n{% endfor %}",
        "<user>Hi<assistant>Yo</s><user>Q<assistant>A!</s>", new[] { 19, 25, 43, 49 })]
    [InlineData("{% generation %}first{% endgeneration %}-{% generation %}second{% endgeneration %}", "first-second", new[] { 6, 12 })]
    [InlineData("x{% generation %}{% endgeneration %}{% generation %}y{% endgeneration %}", "xy", new[] { 1, 1, 1, 2 })]
    [InlineData("{% macro turn(m) %}[{{ m.role }}]{% generation %}{{ m.content }}{% endgeneration %}{% endmacro %}>>{% for m in messages %}{{ turn(m) }}{% endfor %}",
        ">>[user]Hi[assistant]Yo[user]Q[assistant]A!", new[] { 2, 4, 10, 12, 23, 24, 30, 32 })]
    [InlineData("ab{% set x %}cd{% generation %}ef{% endgeneration %}{% endset %}{{ x }}", "abcdef", new[] { 2, 4 })]
    [InlineData("{{ '' }}{% generation %}z{% endgeneration %}", "z", new[] { 0, 1 })]
    [InlineData("A{% generation %}{% set v = 'in' %}{{ v }}{% endgeneration %}{{ v is defined }}", "AinFalse", new[] { 1, 3 })]
    public void SpansMatchTransformersAssistantTracker(string source, string text, int[] spans)
    {
        var rendering = ChatTemplate.FromSource(source).Apply(Messages, new ChatTemplateOptions());
        Assert.Equal(text, rendering.Text);
        Assert.Equal(spans, rendering.Generation.SelectMany(s => new[] { s.Start, s.End }));
        Assert.True(rendering.TemplateHasGenerationBlocks);
    }

    [Fact]
    public void TemplateWithoutBlocksSaysSo()
    {
        var rendering = ChatTemplate.FromSource("{{ messages | length }}").Apply(Messages, new ChatTemplateOptions());
        Assert.Empty(rendering.Generation);
        Assert.False(rendering.TemplateHasGenerationBlocks);
    }
}
