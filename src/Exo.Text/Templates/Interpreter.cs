using System.Text;

namespace Exo.Text.Templates;

/// <summary>Walks the template AST, writing output; one instance per render.</summary>
internal sealed class Interpreter
{
    private enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    private readonly List<Dictionary<string, object?>> _scopes;
    private readonly GenerationTracker _tracker;
    private int _line;

    public Interpreter(Dictionary<string, object?> globals, Dictionary<string, object?> variables)
    {
        _scopes = [globals, variables];
        _tracker = new GenerationTracker();
    }

    private Interpreter(List<Dictionary<string, object?>> scopes, Interpreter parent)
    {
        _scopes = scopes;
        _tracker = parent._tracker;
        _line = parent._line;
    }

    /// <summary>Where the text of each <c>{% generation %}</c> block landed in the output, in render order.</summary>
    public IReadOnlyList<CharSpan> Generation => _tracker.Spans;

    public string Render(IReadOnlyList<Node> template)
    {
        var output = _tracker.Root;
        try
        {
            ExecuteBody(template, output);
        }
        catch (TemplateRuntimeException e)
        {
            throw new TemplateException(e.Kind, e.Message, _line, e);
        }
        catch (Exception e) when (e is InvalidCastException or ArgumentException or OverflowException or FormatException or DivideByZeroException)
        {
            throw new TemplateException(TemplateErrorKind.Type, e.Message, _line, e);
        }
        return output.ToString();
    }

    private Flow ExecuteBody(IReadOnlyList<Node> body, StringBuilder output)
    {
        foreach (var node in body)
        {
            var flow = Execute(node, output);
            if (flow != Flow.Normal)
            {
                return flow;
            }
        }
        return Flow.Normal;
    }

    private Flow Execute(Node node, StringBuilder output)
    {
        _line = node.Line;
        switch (node)
        {
            case TextNode text:
                Write(output, text.Text);
                return Flow.Normal;
            case OutputNode o:
                Write(output, Py.Str(Evaluate(o.Value)));
                return Flow.Normal;
            case IfNode branch:
                foreach (var (condition, body) in branch.Branches)
                {
                    if (Py.Truthy(Evaluate(condition)))
                    {
                        return ExecuteBody(body, output);
                    }
                }
                return ExecuteBody(branch.Else, output);
            case ForNode loop:
                ExecuteFor(loop, output);
                return Flow.Normal;
            case SetNode set:
                Assign(set.Targets, Evaluate(set.Value));
                return Flow.Normal;
            case SetAttributeNode setAttribute:
                if (Lookup(setAttribute.Target) is not Namespace ns)
                {
                    throw new TemplateRuntimeException(TemplateErrorKind.Type, "cannot assign attribute on non-namespace object");
                }
                ns.Attributes[setAttribute.Attribute] = Evaluate(setAttribute.Value);
                return Flow.Normal;
            case SetBlockNode block:
                _scopes[^1][block.Target] = ApplyFilters(block.Filters, Capture(block.Body));
                return Flow.Normal;
            case MacroNode macro:
                _scopes[^1][macro.Name] = MakeMacro(macro.Name, macro.Parameters, macro.Body);
                return Flow.Normal;
            case CallBlockNode call:
                var caller = MakeMacro("caller", call.Parameters, call.Body);
                Write(output, Py.Str(EvaluateCall(call.Call, caller)));
                return Flow.Normal;
            case FilterBlockNode filter:
                Write(output, Py.Str(ApplyFilters(filter.Filters, Capture(filter.Body))));
                return Flow.Normal;
            case GenerationNode generation:
                Write(output, RenderGeneration(generation.Body));
                return Flow.Normal;
            case BreakNode:
                return Flow.Break;
            case ContinueNode:
                return Flow.Continue;
            default:
                throw new TemplateRuntimeException(TemplateErrorKind.Syntax, $"unsupported node {node.GetType().Name}");
        }
    }

    /// <summary>
    /// transformers' AssistantTracker: the body renders in a scope of its own (it is a caller macro) and its span starts
    /// at the length of what the template has output at top level so far, so text buffered by an enclosing macro or set
    /// block is not counted. Like transformers, nothing is recorded before the first top-level output or span.
    /// </summary>
    private string RenderGeneration(IReadOnlyList<Node> body)
    {
        _scopes.Add([]);
        var text = Capture(body);
        _scopes.RemoveAt(_scopes.Count - 1);
        if (_tracker.RootWritten || _tracker.Spans.Count > 0)
        {
            _tracker.Spans.Add(new CharSpan(_tracker.Root.Length, _tracker.Root.Length + text.Length));
        }
        return text;
    }

    /// <summary>Appends output; what reaches the top level counts as yielded even when empty, as Jinja yields "" too.</summary>
    private void Write(StringBuilder output, string text)
    {
        output.Append(text);
        _tracker.RootWritten |= ReferenceEquals(output, _tracker.Root);
    }

    /// <summary>The top-level output and the generation spans, shared by a render and the macros it calls.</summary>
    private sealed class GenerationTracker
    {
        public StringBuilder Root { get; } = new();

        public List<CharSpan> Spans { get; } = [];

        public bool RootWritten { get; set; }
    }

    private string Capture(IReadOnlyList<Node> body)
    {
        var captured = new StringBuilder();
        ExecuteBody(body, captured);
        return captured.ToString();
    }

    private object? ApplyFilters(IReadOnlyList<FilterExpr> filters, object? value)
    {
        foreach (var filter in filters)
        {
            value = Builtins.ApplyFilter(filter.Name, value, EvaluateAll(filter.Args), EvaluateKwargs(filter.Kwargs), this);
        }
        return value;
    }

    private void ExecuteFor(ForNode loop, StringBuilder output)
    {
        var source = Evaluate(loop.Iterable);
        if (source is null)
        {
            throw new TemplateRuntimeException(TemplateErrorKind.Type, "'NoneType' object is not iterable");
        }
        var items = Py.Iterate(source);
        if (loop.Filter is not null)
        {
            var kept = new List<object?>();
            foreach (var item in items)
            {
                _scopes.Add([]);
                Bind(loop.Targets, item);
                var keep = Py.Truthy(Evaluate(loop.Filter));
                _scopes.RemoveAt(_scopes.Count - 1);
                if (keep)
                {
                    kept.Add(item);
                }
            }
            items = kept;
        }
        else
        {
            items = [.. items];
        }
        if (items.Count == 0)
        {
            ExecuteBody(loop.Else, output);
            return;
        }
        for (var i = 0; i < items.Count; i++)
        {
            _scopes.Add(new Dictionary<string, object?> { ["loop"] = LoopObject(items, i) });
            Bind(loop.Targets, items[i]);
            var flow = ExecuteBody(loop.Body, output);
            _scopes.RemoveAt(_scopes.Count - 1);
            if (flow == Flow.Break)
            {
                break;
            }
        }
    }

    private static OrderedDictionary<string, object?> LoopObject(List<object?> items, int i)
    {
        var count = items.Count;
        return new OrderedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["index"] = (long)(i + 1),
            ["index0"] = (long)i,
            ["revindex"] = (long)(count - i),
            ["revindex0"] = (long)(count - i - 1),
            ["first"] = i == 0,
            ["last"] = i == count - 1,
            ["length"] = (long)count,
            ["depth"] = 1L,
            ["depth0"] = 0L,
            ["previtem"] = i > 0 ? items[i - 1] : new Undefined("previtem"),
            ["nextitem"] = i + 1 < count ? items[i + 1] : new Undefined("nextitem"),
            ["cycle"] = new Callable("cycle", (args, _) =>
                args.Count == 0 ? throw new TemplateRuntimeException(TemplateErrorKind.Type, "no items for cycling given") : args[i % args.Count]),
        };
    }

    private void Bind(IReadOnlyList<string> targets, object? value)
    {
        if (targets.Count == 1)
        {
            _scopes[^1][targets[0]] = value;
            return;
        }
        var parts = Py.Iterate(value);
        if (parts.Count != targets.Count)
        {
            throw new TemplateRuntimeException(TemplateErrorKind.Value, $"cannot unpack {parts.Count} values into {targets.Count} names");
        }
        for (var i = 0; i < targets.Count; i++)
        {
            _scopes[^1][targets[i]] = parts[i];
        }
    }

    private void Assign(IReadOnlyList<string> targets, object? value) => Bind(targets, value);

    private Callable MakeMacro(string name, IReadOnlyList<(string Name, Expr? Default)> parameters, IReadOnlyList<Node> body)
    {
        var closure = _scopes.ToList();
        return new Callable(name, (args, kwargs) =>
        {
            var locals = new Dictionary<string, object?>();
            var scopes = new List<Dictionary<string, object?>>(closure) { locals };
            var inner = new Interpreter(scopes, this);
            for (var p = 0; p < parameters.Count; p++)
            {
                var (parameter, fallback) = parameters[p];
                locals[parameter] = p < args.Count ? args[p]
                    : kwargs.TryGetValue(parameter, out var named) ? named
                    : fallback is not null ? inner.Evaluate(fallback)
                    : new Undefined(parameter);
            }
            if (args.Count > parameters.Count)
            {
                throw new TemplateRuntimeException(TemplateErrorKind.Type, $"macro '{name}' takes not more than {parameters.Count} argument(s)");
            }
            if (kwargs.TryGetValue("caller", out var caller) && !parameters.Any(p => p.Name == "caller"))
            {
                locals["caller"] = caller;
            }
            var output = new StringBuilder();
            inner.ExecuteBody(body, output);
            return output.ToString();
        });
    }

    public object? Lookup(string name)
    {
        for (var i = _scopes.Count - 1; i >= 0; i--)
        {
            if (_scopes[i].TryGetValue(name, out var value))
            {
                return value;
            }
        }
        return new Undefined(name);
    }

    public object? Evaluate(Expr expr)
    {
        switch (expr)
        {
            case LiteralExpr literal:
                return literal.Value;
            case NameExpr name:
                return Lookup(name.Name);
            case ListExpr list:
                return list.Items.Select(Evaluate).ToList();
            case DictExpr dict:
                var result = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (key, value) in dict.Items)
                {
                    result[Py.Text(Evaluate(key)) ?? throw new TemplateRuntimeException(TemplateErrorKind.Type, "dict keys must be strings")] = Evaluate(value);
                }
                return result;
            case AttributeExpr attribute:
                return Builtins.GetAttribute(Evaluate(attribute.Target), attribute.Name);
            case ItemExpr item:
                return Builtins.GetItem(Evaluate(item.Target), Evaluate(item.Index));
            case SliceExpr slice:
                return Builtins.Slice(Evaluate(slice.Target), EvaluateOptional(slice.Start), EvaluateOptional(slice.Stop), EvaluateOptional(slice.Step));
            case CallExpr call:
                return EvaluateCall(call, null);
            case FilterExpr filter:
                var input = filter.Value is null ? null : Evaluate(filter.Value);
                return Builtins.ApplyFilter(filter.Name, input, EvaluateAll(filter.Args), EvaluateKwargs(filter.Kwargs), this);
            case TestExpr test:
                var outcome = Builtins.ApplyTest(test.Name, Evaluate(test.Value), EvaluateAll(test.Args), this);
                return test.Negated ? !outcome : outcome;
            case UnaryExpr unary:
                return EvaluateUnary(unary);
            case BinaryExpr binary:
                return EvaluateBinary(binary);
            case CompareExpr compare:
                return EvaluateCompare(compare);
            case ConditionalExpr conditional:
                return Py.Truthy(Evaluate(conditional.Condition))
                    ? Evaluate(conditional.Then)
                    : conditional.Else is null ? new Undefined("inline if") : Evaluate(conditional.Else);
            default:
                throw new TemplateRuntimeException(TemplateErrorKind.Syntax, $"unsupported expression {expr.GetType().Name}");
        }
    }

    private object? EvaluateOptional(Expr? expr) => expr is null ? null : Evaluate(expr);

    private List<object?> EvaluateAll(IReadOnlyList<Expr> exprs) => exprs.Select(Evaluate).ToList();

    private Dictionary<string, object?> EvaluateKwargs(IReadOnlyList<(string Name, Expr Value)> kwargs)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in kwargs)
        {
            result[name] = Evaluate(value);
        }
        return result;
    }

    private object? EvaluateCall(CallExpr call, Callable? caller)
    {
        var target = Evaluate(call.Target);
        var args = EvaluateAll(call.Args);
        var kwargs = EvaluateKwargs(call.Kwargs);
        if (caller is not null)
        {
            kwargs["caller"] = caller;
        }
        return target switch
        {
            Callable callable => callable.Invoke(args, kwargs),
            Undefined u => throw u.Error(),
            _ => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"'{Py.TypeName(target)}' object is not callable"),
        };
    }

    private object? EvaluateUnary(UnaryExpr unary)
    {
        var operand = Evaluate(unary.Operand);
        return unary.Operator switch
        {
            "not" => !Py.Truthy(operand),
            "-" => operand switch
            {
                long l => (object)(-l),
                double d => -d,
                bool b => b ? -1L : 0L,
                Undefined u => throw u.Error(),
                _ => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"bad operand type for unary -: '{Py.TypeName(operand)}'"),
            },
            _ => Py.IsNumber(operand) ? operand : throw new TemplateRuntimeException(TemplateErrorKind.Type, $"bad operand type for unary +: '{Py.TypeName(operand)}'"),
        };
    }

    private object? EvaluateBinary(BinaryExpr binary)
    {
        if (binary.Operator == "and")
        {
            var left = Evaluate(binary.Left);
            return Py.Truthy(left) ? Evaluate(binary.Right) : left;
        }
        if (binary.Operator == "or")
        {
            var left = Evaluate(binary.Left);
            return Py.Truthy(left) ? left : Evaluate(binary.Right);
        }
        var a = Evaluate(binary.Left);
        var b = Evaluate(binary.Right);
        return binary.Operator == "~" ? Py.Str(a) + Py.Str(b) : Arithmetic.Apply(binary.Operator, a, b);
    }

    private bool EvaluateCompare(CompareExpr compare)
    {
        var left = Evaluate(compare.First);
        foreach (var (op, operandExpr) in compare.Rest)
        {
            var right = Evaluate(operandExpr);
            var holds = op switch
            {
                "==" => Py.Eq(left, right),
                "!=" => !Py.Eq(left, right),
                "<" => Py.Compare(left, right, op) < 0,
                ">" => Py.Compare(left, right, op) > 0,
                "<=" => Py.Compare(left, right, op) <= 0,
                ">=" => Py.Compare(left, right, op) >= 0,
                "in" => Py.Contains(right, left),
                _ => !Py.Contains(right, left),
            };
            if (!holds)
            {
                return false;
            }
            left = right;
        }
        return true;
    }
}
