using System.Globalization;
using System.Text;

namespace Exo.Text.Templates;

internal enum TokenKind
{
    Text,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    End,
}

internal readonly record struct Token(TokenKind Kind, string Value, int Line);

/// <summary>
/// Splits template source into text and tag tokens, applying Jinja's whitespace control as transformers configures it:
/// <c>trim_blocks</c> (drop the newline after a block or comment tag) and <c>lstrip_blocks</c> (drop the spaces and tabs
/// before a block or comment tag that starts its line), with <c>-</c> and <c>+</c> overriding them per tag.
/// </summary>
internal sealed class Lexer(string source)
{
    private static readonly string[] Operators =
        ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    private readonly List<Token> _tokens = [];
    private int _pos;
    private int _line = 1;

    public List<Token> Tokenize()
    {
        var stripNextText = false;
        var trimNextNewline = false;
        while (_pos < source.Length)
        {
            var tagStart = FindTagStart(_pos);
            var textEnd = tagStart < 0 ? source.Length : tagStart;
            var text = source[_pos..textEnd];
            var textLine = _line;
            var lineStart = _pos == 0 || source[_pos - 1] == '\n';
            if (trimNextNewline && text.StartsWith('\n'))
            {
                text = text[1..];
                lineStart = true;
            }
            if (stripNextText)
            {
                text = text.TrimStart();
            }
            _line += Count(source, _pos, textEnd);
            _pos = textEnd;
            if (tagStart < 0)
            {
                AddText(text, textLine);
                break;
            }

            var kind = source[tagStart + 1];
            var modifier = tagStart + 2 < source.Length ? source[tagStart + 2] : '\0';
            if (modifier == '-')
            {
                text = text.TrimEnd();
            }
            else if (modifier != '+' && kind != '{')
            {
                text = LeftStripBlock(text, lineStart);
            }
            AddText(text, textLine);
            _pos = tagStart + 2 + (modifier is '-' or '+' ? 1 : 0);

            switch (kind)
            {
                case '#':
                    (stripNextText, trimNextNewline) = SkipComment();
                    break;
                case '{':
                    _tokens.Add(new Token(TokenKind.VariableBegin, "{{", _line));
                    (stripNextText, trimNextNewline) = (LexTag("}}"), false);
                    _tokens.Add(new Token(TokenKind.VariableEnd, "}}", _line));
                    break;
                default:
                    _tokens.Add(new Token(TokenKind.BlockBegin, "{%", _line));
                    var stripAfter = LexTag("%}");
                    _tokens.Add(new Token(TokenKind.BlockEnd, "%}", _line));
                    (stripNextText, trimNextNewline) = (stripAfter, !stripAfter && source[_pos - 3] != '+');
                    if (IsRawBlockStart())
                    {
                        (stripNextText, trimNextNewline) = ReadRawBody(stripNextText, trimNextNewline);
                    }
                    break;
            }
        }
        _tokens.Add(new Token(TokenKind.End, "", _line));
        return _tokens;
    }

    private void AddText(string text, int line)
    {
        if (text.Length > 0)
        {
            _tokens.Add(new Token(TokenKind.Text, text, line));
        }
    }

    private static string LeftStripBlock(string text, bool chunkStartsLine)
    {
        var lineStart = text.LastIndexOf('\n') + 1;
        if (lineStart == 0 && !chunkStartsLine)
        {
            return text;
        }
        for (var i = lineStart; i < text.Length; i++)
        {
            if (!char.IsWhiteSpace(text[i]))
            {
                return text;
            }
        }
        return text[..lineStart];
    }

    private int FindTagStart(int from)
    {
        for (var i = from; i + 1 < source.Length; i++)
        {
            if (source[i] == '{' && source[i + 1] is '{' or '%' or '#')
            {
                return i;
            }
        }
        return -1;
    }

    private static int Count(string text, int from, int to)
    {
        var count = 0;
        for (var i = from; i < to; i++)
        {
            if (text[i] == '\n')
            {
                count++;
            }
        }
        return count;
    }

    private (bool StripNext, bool TrimNewline) SkipComment()
    {
        var end = source.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (end < 0)
        {
            throw new TemplateException(TemplateErrorKind.Syntax, "unterminated comment: missing '#}'", _line);
        }
        var strip = end > _pos && source[end - 1] == '-';
        var keep = end > _pos && source[end - 1] == '+';
        _line += Count(source, _pos, end);
        _pos = end + 2;
        return (strip, !strip && !keep);
    }

    /// <summary>Lexes expression tokens up to the closing delimiter; returns whether it was written with '-' (strip what follows).</summary>
    private bool LexTag(string close)
    {
        var startLine = _line;
        while (true)
        {
            while (_pos < source.Length && char.IsWhiteSpace(source[_pos]))
            {
                if (source[_pos] == '\n')
                {
                    _line++;
                }
                _pos++;
            }
            if (_pos >= source.Length)
            {
                throw new TemplateException(TemplateErrorKind.Syntax, $"unexpected end of template, expected '{close}'", startLine);
            }
            if (string.CompareOrdinal(source, _pos, close, 0, 2) == 0)
            {
                _pos += 2;
                return false;
            }
            if (source[_pos] is '-' or '+' && string.CompareOrdinal(source, _pos + 1, close, 0, 2) == 0)
            {
                var strip = source[_pos] == '-';
                _pos += 3;
                return strip;
            }
            _tokens.Add(LexExpressionToken());
        }
    }

    private Token LexExpressionToken()
    {
        var c = source[_pos];
        if (char.IsLetter(c) || c == '_')
        {
            var start = _pos;
            while (_pos < source.Length && (char.IsLetterOrDigit(source[_pos]) || source[_pos] == '_'))
            {
                _pos++;
            }
            return new Token(TokenKind.Name, source[start.._pos], _line);
        }
        if (char.IsAsciiDigit(c))
        {
            return LexNumber();
        }
        if (c is '\'' or '"')
        {
            return LexString(c);
        }
        foreach (var op in Operators)
        {
            if (string.CompareOrdinal(source, _pos, op, 0, op.Length) == 0)
            {
                _pos += op.Length;
                return new Token(TokenKind.Operator, op, _line);
            }
        }
        throw new TemplateException(TemplateErrorKind.Syntax, $"unexpected character '{c}'", _line);
    }

    private Token LexNumber()
    {
        var start = _pos;
        while (_pos < source.Length && (char.IsAsciiDigit(source[_pos]) || source[_pos] == '_'))
        {
            _pos++;
        }
        var isFloat = false;
        if (_pos + 1 < source.Length && source[_pos] == '.' && char.IsAsciiDigit(source[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            while (_pos < source.Length && (char.IsAsciiDigit(source[_pos]) || source[_pos] == '_'))
            {
                _pos++;
            }
        }
        if (_pos < source.Length && source[_pos] is 'e' or 'E')
        {
            var save = _pos;
            _pos++;
            if (_pos < source.Length && source[_pos] is '+' or '-')
            {
                _pos++;
            }
            if (_pos < source.Length && char.IsAsciiDigit(source[_pos]))
            {
                isFloat = true;
                while (_pos < source.Length && char.IsAsciiDigit(source[_pos]))
                {
                    _pos++;
                }
            }
            else
            {
                _pos = save;
            }
        }
        return new Token(isFloat ? TokenKind.Float : TokenKind.Integer, source[start.._pos].Replace("_", ""), _line);
    }

    private Token LexString(char quote)
    {
        var line = _line;
        var builder = new StringBuilder();
        _pos++;
        while (true)
        {
            if (_pos >= source.Length)
            {
                throw new TemplateException(TemplateErrorKind.Syntax, "unterminated string literal", line);
            }
            var c = source[_pos++];
            if (c == quote)
            {
                return new Token(TokenKind.String, builder.ToString(), line);
            }
            if (c == '\n')
            {
                _line++;
            }
            if (c != '\\' || _pos >= source.Length)
            {
                builder.Append(c);
                continue;
            }
            var e = source[_pos++];
            switch (e)
            {
                case 'n': builder.Append('\n'); break;
                case 't': builder.Append('\t'); break;
                case 'r': builder.Append('\r'); break;
                case 'b': builder.Append('\b'); break;
                case 'f': builder.Append('\f'); break;
                case 'v': builder.Append('\v'); break;
                case 'a': builder.Append('\a'); break;
                case '0': builder.Append('\0'); break;
                case '\\' or '\'' or '"': builder.Append(e); break;
                case '\n': _line++; break;
                case 'x': builder.Append((char)ParseHex(2)); break;
                case 'u': builder.Append((char)ParseHex(4)); break;
                case 'U': builder.Append(char.ConvertFromUtf32(ParseHex(8))); break;
                default: builder.Append('\\').Append(e); break;
            }
        }
    }

    private int ParseHex(int digits)
    {
        if (_pos + digits > source.Length
            || !int.TryParse(source.AsSpan(_pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value)
            || value > 0x10FFFF)
        {
            throw new TemplateException(TemplateErrorKind.Syntax, "invalid escape in string literal", _line);
        }
        _pos += digits;
        return value;
    }

    private bool IsRawBlockStart() =>
        _tokens.Count >= 3 && _tokens[^3].Kind == TokenKind.BlockBegin && _tokens[^2] is { Kind: TokenKind.Name, Value: "raw" };

    /// <summary>Copies everything up to <c>{% endraw %}</c> as text, unparsed.</summary>
    private (bool, bool) ReadRawBody(bool stripStart, bool trimNewline)
    {
        _tokens.RemoveRange(_tokens.Count - 3, 3);
        var search = _pos;
        while (true)
        {
            var tag = source.IndexOf("{%", search, StringComparison.Ordinal);
            if (tag < 0)
            {
                throw new TemplateException(TemplateErrorKind.Syntax, "missing {% endraw %}", _line);
            }
            var inner = tag + 2;
            var stripBefore = inner < source.Length && source[inner] == '-';
            var word = source[(inner + (stripBefore || (inner < source.Length && source[inner] == '+') ? 1 : 0))..].TrimStart();
            if (!word.StartsWith("endraw", StringComparison.Ordinal))
            {
                search = inner;
                continue;
            }
            var text = source[_pos..tag];
            if (trimNewline && text.StartsWith('\n'))
            {
                text = text[1..];
            }
            if (stripStart)
            {
                text = text.TrimStart();
            }
            if (stripBefore)
            {
                text = text.TrimEnd();
            }
            AddText(text, _line);
            _line += Count(source, _pos, tag);
            _pos = tag + 2 + (stripBefore ? 1 : 0);
            _tokens.Add(new Token(TokenKind.BlockBegin, "{%", _line));
            var strip = LexTag("%}");
            _tokens.RemoveRange(_tokens.Count - 2, 2);
            return (strip, !strip && source[_pos - 3] != '+');
        }
    }
}
