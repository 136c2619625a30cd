using Exo.Text.Templates;

namespace Exo.Text.Tests.Templates;

public sealed class JinjaTests
{
    private static string Render(string source, Dictionary<string, object?>? variables = null) =>
        JinjaTemplate.Parse(source).Render(variables ?? []);

    [Theory]
    [InlineData("{% if x %}a{% elif y %}b{% else %}c{% endif %}", "c")]
    [InlineData("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ 2 ** 10 }}|{{ 7 / 2 }}|{{ 4 / 2 }}", "7|3|-4|1|1024|3.5|2.0")]
    [InlineData("{{ True }} {{ none }} {{ 1.0 }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ [1, 'a', none] }} {{ {'k': \"it's\"} }}", "True None 1.0 1e+20 0.30000000000000004 [1, 'a', None] {'k': \"it's\"}")]
    [InlineData("{{ 'abc'[::-1] }}{{ [1,2,3,4][1:3] }}{{ 'hello'[-1] }}", "cba[2, 3]o")]
    [InlineData("{% for x in [1,2,3] if x != 2 %}{{ loop.index }}{{ x }}{{ ',' if not loop.last }}{% endfor %}", "11,23")]
    [InlineData("{% for x in [] %}x{% else %}empty{% endfor %}", "empty")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;")]
    [InlineData("{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", "13")]
    [InlineData("{% set ns = namespace(n=0) %}{% for x in [1,2,3] %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}", "6")]
    [InlineData("{% set y = 1 %}{% for x in [5] %}{% set y = x %}{% endfor %}{{ y }}", "1")]
    [InlineData("{% set b %}  inner  {% endset %}[{{ b | trim }}]", "[inner]")]
    [InlineData("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', punct='?') }}", "Hi A! Hi B?")]
    [InlineData("{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}body{% endcall %}", "<body>")]
    [InlineData("{{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ {} is mapping }} {{ [1] is iterable }} {{ 3 is odd }} {{ 4 is divisibleby 2 }}", "False True True True True True True")]
    [InlineData("{{ 'b' in 'abc' }} {{ 2 not in [1,2] }} {{ 'k' in {'k': 1} }} {{ not true or false }}", "True False True False")]
    [InlineData("{{ '  x  ' | trim }}|{{ 'ab' | upper }}|{{ [1,2,3] | length }}|{{ ['a','b'] | join('-') }}|{{ [3,1,2] | sort | first }}|{{ [3,1,2] | last }}", "x|AB|3|a-b|1|2")]
    [InlineData("{{ undefined_thing | default('d') }}|{{ '' | default('e', true) }}|{{ '5' | int + 1 }}|{{ 3 | string ~ 'x' }}", "d|e|6|3x")]
    [InlineData("{{ [{'a': 1, 'r': 'u'}, {'a': 2, 'r': 's'}] | selectattr('r', 'equalto', 's') | map(attribute='a') | list }}", "[2]")]
    [InlineData("{{ [{'r': 'u'}, {'r': 's'}] | rejectattr('r', 'eq', 's') | list | length }}", "1")]
    [InlineData("{{ ' a b '.strip() }}|{{ 'abc'.startswith('ab') }}|{{ 'a,b'.split(',') }}|{{ 'hello world'.title() }}|{{ 'x'.replace('x', 'y') }}|{{ 'AB'.lower() }}", "a b|True|['a', 'b']|Hello World|y|ab")]
    [InlineData("{{ 'yes' if 1 > 0 else 'no' }}{{ 'a' ~ 1 ~ none }}", "yesa1None")]
    [InlineData("{{ {'b': [1, 2.5, true, none], 'a': 'é\"\\n'} | tojson }}", "{\"b\": [1, 2.5, true, null], \"a\": \"é\\\"\\n\"}")]
    [InlineData("{{ {'a': [1]} | tojson(indent=2) }}", "{\n  \"a\": [\n    1\n  ]\n}")]
    [InlineData("{{ range(3) | list }}{{ dict(a=1) }}", "[0, 1, 2]{'a': 1}")]
    [InlineData("{# comment #}x{{ 'y' }}{% raw %}{{ z }}{% endraw %}", "xy{{ z }}")]
    public void RendersConstruct(string source, string expected) => Assert.Equal(expected, Render(source));

    [Fact]
    public void WhitespaceControlFollowsTrimAndLstripBlocks()
    {
        var source = "<ul>\n  {% for x in items %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n{{- ' end' }}  {%- if true %} !{% endif %}";
        var items = new Dictionary<string, object?> { ["items"] = new List<object?> { "a", "b" } };
        Assert.Equal("<ul>\n    <li>a</li>\n    <li>b</li>\n</ul> end !", Render(source, items));
    }

    [Fact]
    public void RaiseExceptionIsARaisedErrorWithItsLine()
    {
        var error = Assert.Throws<TemplateException>(() => Render("line1\n{{ raise_exception('bad role') }}"));
        Assert.Equal(TemplateErrorKind.Raised, error.Kind);
        Assert.Equal("bad role", error.Detail);
        Assert.Equal(2, error.Line);
    }

    [Theory]
    [InlineData("{% if x %}never closed", TemplateErrorKind.Syntax, 1)]
    [InlineData("a\n\n{{ 1 + }}", TemplateErrorKind.Syntax, 3)]
    [InlineData("{% frobnicate %}", TemplateErrorKind.Syntax, 1)]
    [InlineData("{{ 'a' + none }}", TemplateErrorKind.Type, 1)]
    [InlineData("x\n{{ missing.attr }}", TemplateErrorKind.Undefined, 2)]
    [InlineData("{{ [1] | nosuchfilter }}", TemplateErrorKind.Syntax, 1)]
    [InlineData("{% set l = [] %}{{ l.append(1) }}", TemplateErrorKind.Security, 1)]
    [InlineData("{{ 1 / 0 }}", TemplateErrorKind.Value, 1)]
    public void ErrorsAreTemplateExceptionsWithLines(string source, TemplateErrorKind kind, int line)
    {
        var error = Assert.Throws<TemplateException>(() => Render(source));
        Assert.Equal(kind, error.Kind);
        Assert.Equal(line, error.Line);
    }

    [Fact]
    public void ChatTemplateReadsTemplateListAndAddedTokenObjects()
    {
        var dir = Directory.CreateTempSubdirectory("exo-tpl");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "tokenizer_config.json"), """
                {"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
                 "chat_template": [{"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"},
                                   {"name": "tool_use", "template": "T{{ tools | length }}"}]}
                """);
            var template = ChatTemplate.FromModelDirectory(dir.FullName);
            Assert.Equal("<s>hi</s>", template.Render([new ChatMessage("user", "hi")], null, addGenerationPrompt: false));
            using var tools = System.Text.Json.JsonDocument.Parse("[{\"type\": \"function\"}]");
            Assert.Equal("T1", template.Render([new ChatMessage("user", "hi")], tools.RootElement, addGenerationPrompt: false));
            File.WriteAllText(Path.Combine(dir.FullName, "chat_template.jinja"), "J{{ add_generation_prompt }}");
            Assert.Equal("JTrue", ChatTemplate.FromModelDirectory(dir.FullName).Render([new ChatMessage("user", "hi")], null, addGenerationPrompt: true));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void StrftimeNowUsesTheGivenClock()
    {
        var clock = new FixedClock(new DateTimeOffset(2025, 3, 7, 14, 5, 9, TimeSpan.Zero));
        Assert.Equal("07 Mar 2025 14:05:09 Friday", JinjaTemplate.Parse("{{ strftime_now('%d %b %Y %H:%M:%S %A') }}", clock).Render(new Dictionary<string, object?>()));
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }
}
