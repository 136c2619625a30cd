using Exo.Text.Templates;

namespace Exo.Text.Tests.Templates;

/// <summary>
/// Safe strings as transformers' Jinja environment (autoescape off) has them. Every expected output is what Jinja2 3.1.6
/// with MarkupSafe 3.0.3 renders in an ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True): MarkupSafe's
/// Markup.__add__/__radd__/__mod__/join/format escape the plain strings they take in, its str methods return Markup;
/// Jinja's Concat (~), join and replace filters (autoescape off) and output convert to plain str; the safe, escape and
/// string filters (mark_safe, markupsafe.escape, soft_str) make or keep Markup.
/// </summary>
public sealed class MarkupTests
{
    private static string Render(string source) => JinjaTemplate.Parse(source).Render(new Dictionary<string, object?>());

    [Theory]
    [InlineData("{{ '<b>' | safe }}", "<b>")]
    [InlineData("{{ '<b>' | e }}", "&lt;b&gt;")]
    [InlineData("{{ '<b>' | escape }}", "&lt;b&gt;")]
    [InlineData("{{ '<b>' | safe | e }}", "<b>")]
    [InlineData("{{ '<b>' | e | e }}", "&lt;b&gt;")]
    [InlineData("{{ ('<b>' | safe) + '<i>' }}", "<b>&lt;i&gt;")]
    [InlineData("{{ '<i>' + ('<b>' | safe) }}", "&lt;i&gt;<b>")]
    [InlineData("{{ ('<b>' | safe) ~ '<i>' }}", "<b><i>")]
    [InlineData("{{ '<i>' ~ ('<b>' | safe) }}", "<i><b>")]
    [InlineData("{{ ('%s<b>' | safe) % '<i>' }}", "&lt;i&gt;<b>")]
    [InlineData("{{ ('%s and %s' | safe) % ('<i>', '&') }}", "&lt;i&gt; and &amp;")]
    [InlineData("{{ '%s<b>' % ('<i>' | safe) }}", "<i><b>")]
    [InlineData("{{ ('<b>' | safe) * 2 }}", "<b><b>")]
    [InlineData("{{ (('<b>' | safe) + '<i>') is string }}", "True")]
    [InlineData("{{ ['<a>', '<b>' | safe] | join('&') }}", "<a>&<b>")]
    [InlineData("{{ ['<a>', '<b>'] | join('&' | safe) }}", "<a>&<b>")]
    [InlineData("{{ ('&' | safe).join(['<a>', '<b>' | safe]) }}", "&lt;a&gt;&<b>")]
    [InlineData("{{ ('<b>' | safe) | upper }}", "<B>")]
    [InlineData("{{ (('<b>' | safe) | upper) + '<' }}", "<B>&lt;")]
    [InlineData("{{ (('<b>' | safe) | string) + '<' }}", "<b>&lt;")]
    [InlineData("{{ (('<b> x' | safe) | title) + '<' }}", "<B> X<")]
    [InlineData("{{ (('<b>' | safe) | lower) + '<' }}", "<b>&lt;")]
    [InlineData("{{ (('<b>' | safe) | capitalize) + '<' }}", "<b>&lt;")]
    [InlineData("{{ ((' <b> ' | safe) | trim) + '<' }}", "<b>&lt;")]
    [InlineData("{{ (('<b>' | safe) | replace('b', '<i>')) + '<' }}", "<<i>><")]
    [InlineData("{{ ('<b>' | safe).replace('b', '<i>') }}", "<&lt;i&gt;>")]
    [InlineData("{{ ('<b>{}' | safe).format('<i>') }}", "<b>&lt;i&gt;")]
    [InlineData("{{ ('<b>' | safe).upper() + '<' }}", "<B>&lt;")]
    [InlineData("{{ (' <b> ' | safe).strip() + '<' }}", "<b>&lt;")]
    [InlineData("{{ ('<a> <b>' | safe).split() | map('string') | join('|') }}", "<a>|<b>")]
    [InlineData("{{ ('<a> <b>' | safe).split()[0] + '<' }}", "<a>&lt;")]
    [InlineData("{{ ('<b>' | safe)[1:] + '<' }}", "b>&lt;")]
    [InlineData("{{ ('<b>' | safe)[0] + '<' }}", "<&lt;")]
    [InlineData("{{ ('<b>' | safe) | first }}{{ (('<b>' | safe) | first) + '<' }}", "<<<")]
    [InlineData("{{ (('<b>' | safe) | reverse) + '<' }}", ">b<&lt;")]
    [InlineData("{{ ('<b>' | safe) | length }}", "3")]
    [InlineData("{{ ('<b>' | safe) == '<b>' }}", "True")]
    [InlineData("{{ 'b' in ('<b>' | safe) }}", "True")]
    [InlineData("{{ ['<b>' | safe] }}", "[Markup('<b>')]")]
    [InlineData("{{ 5 | e }}{{ (5 | e) + '<' }}", "55&lt;")]
    [InlineData("{{ none | e }}", "None")]
    [InlineData("{{ 5 | safe }}{{ (5 | safe) + '<' }}", "55&lt;")]
    [InlineData("{{ ('%s' | format('<i>' | safe)) + '<' }}", "<i><")]
    [InlineData("{{ ('<b>' | safe) | center(7) }}{{ (('<b>' | safe) | center(7)) + '<' }}", "  <b>    <b>  &lt;")]
    [InlineData("{{ (('<b>' | safe) | indent(2)) + '<' }}", "<b>&lt;")]
    [InlineData("{{ ('<b>\\n<i>' | safe) | indent(2, true) }}", "  <b>\n  <i>")]
    [InlineData("{{ (['<a>' | safe, '<b>'] | first) + '<' }}", "<a>&lt;")]
    [InlineData("{{ ('<b>' | safe) | forceescape }}", "&lt;b&gt;")]
    [InlineData("{{ '\"\\'&' | e }}", "&#34;&#39;&amp;")]
    [InlineData("{% set x = '<b>' | safe %}{% set y = x ~ '' %}{{ y + '<' }}", "<b><")]
    [InlineData("{{ ('a' | safe) if ('a' | safe) else 'no' }}{{ ('' | safe) or 'empty' }}", "aempty")]
    [InlineData("{{ ('<b>' | safe) is string }}", "True")]
    [InlineData("{{ (('<b>' | safe) | list) | join('') + '<' }}", "<b><")]
    [InlineData("{{ ('<b>' | safe) | default('x') + '<' }}", "<b>&lt;")]
    [InlineData("{{ ('<b>' | safe) | wordcount }}", "1")]
    [InlineData("{{ ('<b>' | safe).startswith('<') }}", "True")]
    [InlineData("{{ ((('<b>' | safe) + '<') | e) }}", "<b>&lt;")]
    [InlineData("{{ ('<b>' | safe) ~ 1 }}", "<b>1")]
    [InlineData("{{ ('<b>' | safe).lstrip('<') + '<' }}", "b>&lt;")]
    [InlineData("{{ ('<b>' | safe) * 2 + '<' }}", "<b><b>&lt;")]
    [InlineData("{{ ('a' | safe) < 'b' }}", "True")]
    [InlineData("{{ (('<b>' | safe) | dictsort) if false else 'ok' }}", "ok")]
    [InlineData("{{ ({'k': '<b>' | safe} | items | list)[0][1] + '<' }}", "<b>&lt;")]
    [InlineData("{{ ('<b>' | safe).join('xy') }}", "x<b>y")]
    [InlineData("{{ (('<a>' | safe) ~ ('<b>' | safe)) + '<' }}", "<a><b><")]
    [InlineData("{{ ('<b>' | safe) | pprint }}", "Markup('<b>')")]
    [InlineData("{{ (('<b>' | safe) | sort | join) }}", "<>b")]
    [InlineData("{{ ('<a>' | safe).split('<') }}", "[Markup(''), Markup('a>')]")]
    [InlineData("{{ ('%d' | safe) % 3 }}", "3")]
    [InlineData("{{ ('%r' | safe) % '<' }}", "&#39;&lt;&#39;")]
    [InlineData("{{ ('<' | safe) | int(default=7) }}{{ ('5' | safe) | int + 1 }}", "76")]
    [InlineData("{{ ('<{0}{x}>' | safe).format('&', x='<') }}", "<&amp;&lt;>")]
    [InlineData("{{ ('<b>' | safe).title() + '<' }}", "<B>&lt;")]
    [InlineData("{{ ('A' | safe) is upper }}{{ ('<b>' | safe) | unique | list }}", "True['<', 'b', '>']")]
    [InlineData("[{{ undefined_name | e }}][{{ undefined_name | safe }}]", "[][]")]
    public void MatchesJinja2AndMarkupSafe(string source, string expected) => Assert.Equal(expected, Render(source));

    [Fact]
    public void TojsonOfMarkupIsTransformersJsonDumps()
    {
        // transformers replaces Jinja's HTML-escaping tojson with json.dumps(x, ensure_ascii=False): a Markup is a str.
        Assert.Equal("[\"<b>\", \"&lt;\"]", Render("{{ ['<b>' | safe, '<' | e] | tojson }}"));
    }

    [Theory]
    [InlineData("{{ ('a' | safe) + 1 }}", "unsupported operand type(s) for +: 'Markup' and 'int'")]
    [InlineData("{{ ('<b>' | safe) | format('<i>') }}", "not all arguments converted during string formatting")]
    public void TypeErrorsMatchPython(string source, string message)
    {
        var error = Assert.Throws<TemplateException>(() => Render(source));
        Assert.Equal(TemplateErrorKind.Type, error.Kind);
        Assert.Equal(message, error.Detail);
    }
}
