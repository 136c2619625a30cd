using System.Globalization;

namespace Exo.Text.Templates;

/// <summary>Recursive-descent parser for the Jinja subset, with Jinja's operator precedence.</summary>
internal sealed class Parser(List<Token> tokens)
{
    private int _pos;

    private Token Current => tokens[_pos];

    public List<Node> ParseTemplate()
    {
        var body = ParseBody([], out var end);
        if (end is not null)
        {
            throw Error($"unexpected '{end}'");
        }
        return body;
    }

    /// <summary>Parses nodes until a block tag whose keyword is in <paramref name="stops"/> (returned, tag not consumed past its name) or the end.</summary>
    private List<Node> ParseBody(string[] stops, out string? stoppedAt)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.End:
                    if (stops.Length > 0)
                    {
                        throw Error($"unexpected end of template, expected one of: {string.Join(", ", stops)}");
                    }
                    stoppedAt = null;
                    return nodes;
                case TokenKind.Text:
                    nodes.Add(new TextNode(token.Value, token.Line));
                    _pos++;
                    break;
                case TokenKind.VariableBegin:
                    _pos++;
                    nodes.Add(new OutputNode(ParseExpression(), token.Line));
                    Expect(TokenKind.VariableEnd);
                    break;
                case TokenKind.BlockBegin:
                    var keyword = tokens[_pos + 1];
                    if (keyword.Kind != TokenKind.Name)
                    {
                        throw Error("expected a statement name after '{%'");
                    }
                    if (stops.Contains(keyword.Value))
                    {
                        _pos += 2;
                        stoppedAt = keyword.Value;
                        return nodes;
                    }
                    _pos += 2;
                    nodes.Add(ParseStatement(keyword));
                    break;
                default:
                    throw Error($"unexpected '{token.Value}'");
            }
        }
    }

    private Node ParseStatement(Token keyword)
    {
        var line = keyword.Line;
        switch (keyword.Value)
        {
            case "if":
                return ParseIf(line);
            case "for":
                return ParseFor(line);
            case "set":
                return ParseSet(line);
            case "macro":
                return ParseMacro(line);
            case "call":
                return ParseCallBlock(line);
            case "filter":
                var filters = ParseFilterChain();
                Expect(TokenKind.BlockEnd);
                var filtered = ParseBody(["endfilter"], out _);
                Expect(TokenKind.BlockEnd);
                return new FilterBlockNode(filters, filtered, line);
            case "break":
                Expect(TokenKind.BlockEnd);
                return new BreakNode(line);
            case "continue":
                Expect(TokenKind.BlockEnd);
                return new ContinueNode(line);
            case "generation":
                // transformers' AssistantTracker extension: marks assistant text, renders its body unchanged.
                Expect(TokenKind.BlockEnd);
                var generated = ParseBody(["endgeneration"], out _);
                Expect(TokenKind.BlockEnd);
                return new GenerationNode(generated, line);
            default:
                throw new TemplateException(TemplateErrorKind.Syntax, $"unknown statement '{keyword.Value}'", line);
        }
    }

    private IfNode ParseIf(int line)
    {
        var branches = new List<(Expr, IReadOnlyList<Node>)>();
        var condition = ParseExpression();
        while (true)
        {
            Expect(TokenKind.BlockEnd);
            var body = ParseBody(["elif", "else", "endif"], out var stop);
            branches.Add((condition, body));
            if (stop == "elif")
            {
                condition = ParseExpression();
                continue;
            }
            IReadOnlyList<Node> elseBody = [];
            if (stop == "else")
            {
                Expect(TokenKind.BlockEnd);
                elseBody = ParseBody(["endif"], out _);
            }
            Expect(TokenKind.BlockEnd);
            return new IfNode(branches, elseBody, line);
        }
    }

    private ForNode ParseFor(int line)
    {
        var targets = new List<string> { ExpectName() };
        while (AcceptOperator(","))
        {
            targets.Add(ExpectName());
        }
        ExpectKeyword("in");
        var iterable = ParseConditionalFree();
        Expr? filter = null;
        if (AcceptKeyword("if"))
        {
            filter = ParseConditionalFree();
        }
        if (AcceptKeyword("recursive"))
        {
            throw Error("recursive for loops are not supported");
        }
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["else", "endfor"], out var stop);
        IReadOnlyList<Node> elseBody = [];
        if (stop == "else")
        {
            Expect(TokenKind.BlockEnd);
            elseBody = ParseBody(["endfor"], out _);
        }
        Expect(TokenKind.BlockEnd);
        return new ForNode(targets, iterable, filter, body, elseBody, line);
    }

    private Node ParseSet(int line)
    {
        var first = ExpectName();
        if (AcceptOperator("."))
        {
            var attribute = ExpectName();
            ExpectOperator("=");
            var value = ParseExpression();
            Expect(TokenKind.BlockEnd);
            return new SetAttributeNode(first, attribute, value, line);
        }
        var targets = new List<string> { first };
        while (AcceptOperator(","))
        {
            targets.Add(ExpectName());
        }
        if (AcceptOperator("="))
        {
            var value = ParseExpression();
            Expect(TokenKind.BlockEnd);
            return new SetNode(targets, value, line);
        }
        if (targets.Count != 1)
        {
            throw Error("a block set assigns one name");
        }
        var filters = Current is { Kind: TokenKind.Operator, Value: "|" } ? ParseFilterChain() : [];
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["endset"], out _);
        Expect(TokenKind.BlockEnd);
        return new SetBlockNode(first, filters, body, line);
    }

    private MacroNode ParseMacro(int line)
    {
        var name = ExpectName();
        var parameters = ParseParameters();
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["endmacro"], out _);
        Expect(TokenKind.BlockEnd);
        return new MacroNode(name, parameters, body, line);
    }

    private CallBlockNode ParseCallBlock(int line)
    {
        var parameters = Current is { Kind: TokenKind.Operator, Value: "(" } ? ParseParameters() : [];
        var call = ParsePrimaryWithPostfix() as CallExpr ?? throw Error("expected a macro call after 'call'");
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["endcall"], out _);
        Expect(TokenKind.BlockEnd);
        return new CallBlockNode(call, parameters, body, line);
    }

    private List<(string, Expr?)> ParseParameters()
    {
        ExpectOperator("(");
        var parameters = new List<(string, Expr?)>();
        while (!AcceptOperator(")"))
        {
            if (parameters.Count > 0)
            {
                ExpectOperator(",");
                if (AcceptOperator(")"))
                {
                    break;
                }
            }
            var name = ExpectName();
            parameters.Add((name, AcceptOperator("=") ? ParseExpression() : null));
        }
        return parameters;
    }

    private List<FilterExpr> ParseFilterChain()
    {
        var filters = new List<FilterExpr>();
        do
        {
            filters.Add(ParseFilterCall(null));
        }
        while (AcceptOperator("|"));
        return filters;
    }

    public Expr ParseExpression()
    {
        var line = Current.Line;
        var value = ParseOr();
        if (!AcceptKeyword("if"))
        {
            return value;
        }
        var condition = ParseOr();
        var otherwise = AcceptKeyword("else") ? ParseExpression() : null;
        return new ConditionalExpr(condition, value, otherwise, line);
    }

    /// <summary>An expression without a trailing inline <c>if</c> (for-loop iterables, where <c>if</c> starts the filter).</summary>
    private Expr ParseConditionalFree() => ParseOr();

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (Current is { Kind: TokenKind.Name, Value: "or" })
        {
            var line = Current.Line;
            _pos++;
            left = new BinaryExpr("or", left, ParseAnd(), line);
        }
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (Current is { Kind: TokenKind.Name, Value: "and" })
        {
            var line = Current.Line;
            _pos++;
            left = new BinaryExpr("and", left, ParseNot(), line);
        }
        return left;
    }

    private Expr ParseNot()
    {
        if (Current is { Kind: TokenKind.Name, Value: "not" })
        {
            var line = Current.Line;
            _pos++;
            return new UnaryExpr("not", ParseNot(), line);
        }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var line = Current.Line;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && Current.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                var op = Current.Value;
                _pos++;
                rest.Add((op, ParseMath1()));
            }
            else if (Current is { Kind: TokenKind.Name, Value: "in" })
            {
                _pos++;
                rest.Add(("in", ParseMath1()));
            }
            else if (Current is { Kind: TokenKind.Name, Value: "not" } && tokens[_pos + 1] is { Kind: TokenKind.Name, Value: "in" })
            {
                _pos += 2;
                rest.Add(("not in", ParseMath1()));
            }
            else
            {
                break;
            }
        }
        return rest.Count == 0 ? first : new CompareExpr(first, rest, line);
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        while (Current.Kind == TokenKind.Operator && Current.Value is "+" or "-")
        {
            var token = Current;
            _pos++;
            left = new BinaryExpr(token.Value, left, ParseConcat(), token.Line);
        }
        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        while (Current is { Kind: TokenKind.Operator, Value: "~" })
        {
            var line = Current.Line;
            _pos++;
            left = new BinaryExpr("~", left, ParseMath2(), line);
        }
        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            var token = Current;
            _pos++;
            left = new BinaryExpr(token.Value, left, ParsePow(), token.Line);
        }
        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(withFilters: true);
        while (Current is { Kind: TokenKind.Operator, Value: "**" })
        {
            var line = Current.Line;
            _pos++;
            left = new BinaryExpr("**", left, ParseUnary(withFilters: true), line);
        }
        return left;
    }

    private Expr ParseUnary(bool withFilters)
    {
        Expr node;
        if (Current.Kind == TokenKind.Operator && Current.Value is "-" or "+")
        {
            var token = Current;
            _pos++;
            node = new UnaryExpr(token.Value, ParseUnary(withFilters: false), token.Line);
        }
        else
        {
            node = ParsePrimaryWithPostfix();
        }
        return withFilters ? ParseFiltersAndTests(node) : node;
    }

    private Expr ParseFiltersAndTests(Expr node)
    {
        while (true)
        {
            if (AcceptOperator("|"))
            {
                node = ParseFilterCall(node);
            }
            else if (Current is { Kind: TokenKind.Name, Value: "is" })
            {
                var line = Current.Line;
                _pos++;
                var negated = AcceptKeyword("not");
                var name = ExpectName();
                var args = new List<Expr>();
                if (Current is { Kind: TokenKind.Operator, Value: "(" })
                {
                    var (positional, _) = ParseCallArguments();
                    args.AddRange(positional);
                }
                else if (StartsTestArgument())
                {
                    args.Add(ParsePrimaryWithPostfix());
                }
                node = new TestExpr(node, name, args, negated, line);
            }
            else
            {
                return node;
            }
        }
    }

    private bool StartsTestArgument() => Current.Kind switch
    {
        TokenKind.String or TokenKind.Integer or TokenKind.Float => true,
        TokenKind.Name => Current.Value is not ("else" or "or" or "and" or "if" or "in" or "not" or "is"),
        TokenKind.Operator => Current.Value is "[" or "{",
        _ => false,
    };

    private FilterExpr ParseFilterCall(Expr? value)
    {
        var line = Current.Line;
        var name = ExpectName();
        while (AcceptOperator("."))
        {
            name += "." + ExpectName();
        }
        if (Current is { Kind: TokenKind.Operator, Value: "(" })
        {
            var (args, kwargs) = ParseCallArguments();
            return new FilterExpr(value, name, args, kwargs, line);
        }
        return new FilterExpr(value, name, [], [], line);
    }

    private (List<Expr>, List<(string, Expr)>) ParseCallArguments()
    {
        ExpectOperator("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!AcceptOperator(")"))
        {
            if (args.Count + kwargs.Count > 0)
            {
                ExpectOperator(",");
                if (AcceptOperator(")"))
                {
                    break;
                }
            }
            if (Current.Kind == TokenKind.Name && tokens[_pos + 1] is { Kind: TokenKind.Operator, Value: "=" })
            {
                var name = Current.Value;
                _pos += 2;
                kwargs.Add((name, ParseExpression()));
            }
            else if (kwargs.Count > 0)
            {
                throw Error("positional argument after keyword argument");
            }
            else
            {
                args.Add(ParseExpression());
            }
        }
        return (args, kwargs);
    }

    private Expr ParsePrimaryWithPostfix()
    {
        var node = ParsePrimary();
        while (true)
        {
            var line = Current.Line;
            if (AcceptOperator("."))
            {
                var attribute = Current;
                if (attribute.Kind is not (TokenKind.Name or TokenKind.Integer))
                {
                    throw Error("expected an attribute name after '.'");
                }
                _pos++;
                node = attribute.Kind == TokenKind.Integer
                    ? new ItemExpr(node, new LiteralExpr(long.Parse(attribute.Value, CultureInfo.InvariantCulture), line), line)
                    : new AttributeExpr(node, attribute.Value, line);
            }
            else if (Current is { Kind: TokenKind.Operator, Value: "[" })
            {
                node = ParseSubscript(node);
            }
            else if (Current is { Kind: TokenKind.Operator, Value: "(" })
            {
                var (args, kwargs) = ParseCallArguments();
                node = new CallExpr(node, args, kwargs, line);
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParseSubscript(Expr target)
    {
        var line = Current.Line;
        ExpectOperator("[");
        Expr? start = null;
        if (!IsOperator(":"))
        {
            start = ParseExpression();
            if (AcceptOperator("]"))
            {
                return new ItemExpr(target, start, line);
            }
        }
        ExpectOperator(":");
        Expr? stop = IsOperator(":") || IsOperator("]") ? null : ParseExpression();
        Expr? step = null;
        if (AcceptOperator(":") && !IsOperator("]"))
        {
            step = ParseExpression();
        }
        ExpectOperator("]");
        return new SliceExpr(target, start, stop, step, line);
    }

    private Expr ParsePrimary()
    {
        var token = Current;
        _pos++;
        switch (token.Kind)
        {
            case TokenKind.String:
                var text = token.Value;
                while (Current.Kind == TokenKind.String)
                {
                    text += Current.Value;
                    _pos++;
                }
                return new LiteralExpr(text, token.Line);
            case TokenKind.Integer:
                return long.TryParse(token.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var integer)
                    ? new LiteralExpr(integer, token.Line)
                    : throw new TemplateException(TemplateErrorKind.Syntax, $"integer literal {token.Value} is too large", token.Line);
            case TokenKind.Float:
                return new LiteralExpr(double.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case TokenKind.Name:
                return token.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, token.Line),
                    "false" or "False" => new LiteralExpr(false, token.Line),
                    "none" or "None" => new LiteralExpr(null, token.Line),
                    _ => new NameExpr(token.Value, token.Line),
                };
            case TokenKind.Operator when token.Value == "(":
                return ParseParenthesized(token.Line);
            case TokenKind.Operator when token.Value == "[":
                var items = new List<Expr>();
                while (!AcceptOperator("]"))
                {
                    if (items.Count > 0)
                    {
                        ExpectOperator(",");
                        if (AcceptOperator("]"))
                        {
                            break;
                        }
                    }
                    items.Add(ParseExpression());
                }
                return new ListExpr(items, token.Line);
            case TokenKind.Operator when token.Value == "{":
                var pairs = new List<(Expr, Expr)>();
                while (!AcceptOperator("}"))
                {
                    if (pairs.Count > 0)
                    {
                        ExpectOperator(",");
                        if (AcceptOperator("}"))
                        {
                            break;
                        }
                    }
                    var key = ParseExpression();
                    ExpectOperator(":");
                    pairs.Add((key, ParseExpression()));
                }
                return new DictExpr(pairs, token.Line);
            default:
                _pos--;
                throw Error(token.Kind == TokenKind.VariableEnd || token.Kind == TokenKind.BlockEnd
                    ? "expected an expression"
                    : $"unexpected '{token.Value}'");
        }
    }

    private Expr ParseParenthesized(int line)
    {
        if (AcceptOperator(")"))
        {
            return new ListExpr([], line);
        }
        var first = ParseExpression();
        if (AcceptOperator(")"))
        {
            return first;
        }
        var items = new List<Expr> { first };
        while (AcceptOperator(","))
        {
            if (IsOperator(")"))
            {
                break;
            }
            items.Add(ParseExpression());
        }
        ExpectOperator(")");
        return new ListExpr(items, line);
    }

    private bool IsOperator(string op) => Current.Kind == TokenKind.Operator && Current.Value == op;

    private bool AcceptOperator(string op)
    {
        if (!IsOperator(op))
        {
            return false;
        }
        _pos++;
        return true;
    }

    private void ExpectOperator(string op)
    {
        if (!AcceptOperator(op))
        {
            throw Error($"expected '{op}'");
        }
    }

    private bool AcceptKeyword(string keyword)
    {
        if (Current.Kind != TokenKind.Name || Current.Value != keyword)
        {
            return false;
        }
        _pos++;
        return true;
    }

    private void ExpectKeyword(string keyword)
    {
        if (!AcceptKeyword(keyword))
        {
            throw Error($"expected '{keyword}'");
        }
    }

    private string ExpectName()
    {
        if (Current.Kind != TokenKind.Name)
        {
            throw Error("expected a name");
        }
        return tokens[_pos++].Value;
    }

    private void Expect(TokenKind kind)
    {
        if (Current.Kind != kind)
        {
            throw Error(kind switch
            {
                TokenKind.BlockEnd => "expected '%}'",
                TokenKind.VariableEnd => "expected '}}'",
                _ => $"expected {kind}",
            });
        }
        _pos++;
    }

    private TemplateException Error(string message)
    {
        var found = Current.Kind switch
        {
            TokenKind.End => "end of template",
            TokenKind.Text => "text",
            _ => $"'{Current.Value}'",
        };
        return new TemplateException(TemplateErrorKind.Syntax, $"{message} (found {found})", Current.Line);
    }
}
