namespace Exo.Text.Constraints;

/// <summary>
/// One request's progress through an <see cref="OutputGrammar"/>: which tokens may come next, given the text so far
/// and the tokens left. A token is allowed only if the grammar can still be completed in the tokens that would remain
/// after it (counted in bytes, each of which some single token writes), so the output always closes within
/// <see cref="MaxTokens"/>. Not thread-safe; the per-token calls allocate nothing once the states they meet are cached.
/// Dispose it when the request ends: the automaton and masks it built go back to the grammar for the next request.
/// </summary>
public sealed class TokenConstraint : IDisposable
{
    private readonly OutputGrammar _grammar;
    private readonly bool[] _isEnd;
    private readonly int[] _endTokens;
    private readonly ulong[] _allowed;          // [words] this step's mask
    private ConstraintEngine? _engine;
    private int _config;
    private bool _ended;

    internal TokenConstraint(OutputGrammar grammar, ConstraintEngine engine, IReadOnlySet<int> endTokens, int maxTokens)
    {
        _grammar = grammar;
        _engine = engine;
        _config = engine.Start;
        _endTokens = [.. endTokens.Where(t => t >= 0)];
        _isEnd = new bool[Math.Max(engine.Vocabulary.Count, _endTokens.Length == 0 ? 0 : _endTokens.Max() + 1)];
        foreach (var t in _endTokens) _isEnd[t] = true;
        _allowed = new ulong[Math.Max(engine.MaskWords, (_isEnd.Length + 63) / 64)];
        MaxTokens = maxTokens;
    }

    public int MaxTokens { get; }

    /// <summary>Tokens accepted so far, the end token included.</summary>
    public int Accepted { get; private set; }

    /// <summary>The text so far is a whole output: an end token is allowed now.</summary>
    public bool CanEnd => !_ended && Engine.Runner.Accepts(_config);

    /// <summary>The output is whole and nothing may follow it (or its end token was accepted): only end tokens are allowed.</summary>
    public bool IsComplete => _ended || (Engine.Runner.Accepts(_config) && !Engine.Runner.CanContinue(_config));

    private ConstraintEngine Engine => _engine ?? throw new ObjectDisposedException(nameof(TokenConstraint));

    public bool Allows(int token)
    {
        var left = MaxTokens - Accepted - 1;
        if (_ended || left < 0) return false;
        if ((uint)token < (uint)_isEnd.Length && _isEnd[token]) return Engine.Runner.Accepts(_config);
        var after = Engine.After(_config, token);
        return after != GrammarRunner.Dead && Engine.Runner.Cost(after) <= left;
    }

    /// <summary>Sets every logit whose token is not allowed now to negative infinity; ids past the vocabulary are never allowed.</summary>
    public void Mask(Span<float> logits)
    {
        var engine = Engine;
        if (_ended) throw new InvalidOperationException("the output has ended: its end token was accepted");
        var left = MaxTokens - Accepted - 1;
        var allowed = _allowed.AsSpan();
        allowed.Clear();
        if (left >= 0)
        {
            engine.Allowed(_config, left, allowed[..engine.MaskWords]);
            if (engine.Runner.Accepts(_config))
            {
                foreach (var t in _endTokens) allowed[t >> 6] |= 1UL << (t & 63);
            }
        }
        ConstraintEngine.Apply(allowed, logits);
    }

    /// <summary>Advances past <paramref name="token"/>; throws if it is not allowed now.</summary>
    public void Accept(int token)
    {
        if (!Allows(token)) throw new InvalidOperationException($"token {token} is not allowed by the output grammar here");
        Accepted++;
        if ((uint)token < (uint)_isEnd.Length && _isEnd[token])
        {
            _ended = true;
            return;
        }
        _config = Engine.Trim(Engine.After(_config, token));
    }

    public void Dispose()
    {
        if (_engine is null) return;
        _grammar.Return(_engine);
        _engine = null;
    }
}
