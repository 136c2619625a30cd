using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Exo.Api.OpenAi;

/// <summary>
/// Finds the first string or property name of a JSON body that is not valid Unicode text. JSON parsing checks the
/// structure but leaves strings as bytes until they are read, so a bad byte in a message would otherwise surface as a
/// failure deep inside the request (a 500) instead of a 400 naming the field.
/// </summary>
internal static class JsonText
{
    public static void RequireValid(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        var path = new List<Frame>();
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName:
                    path[^1] = path[^1] with { Name = null };
                    if (Invalid(ref reader) is { } nameProblem)
                        throw OpenAiException.BadRequest($"a property name in {Describe(path)} is not valid UTF-8 text: {nameProblem}", Param(path), "invalid_encoding");
                    path[^1] = path[^1] with { Name = reader.GetString() };
                    continue;
                case JsonTokenType.EndObject or JsonTokenType.EndArray:
                    path.RemoveAt(path.Count - 1);
                    continue;
            }

            // Every other token is a value: the next element when it is in an array.
            if (path.Count > 0 && path[^1].Index is { } index) path[^1] = path[^1] with { Index = index + 1 };
            if (reader.TokenType is JsonTokenType.StartObject) path.Add(new Frame(null, null));
            else if (reader.TokenType is JsonTokenType.StartArray) path.Add(new Frame(null, -1));
            else if (reader.TokenType is JsonTokenType.String && Invalid(ref reader) is { } problem)
                throw OpenAiException.BadRequest($"{Describe(path)} is not valid UTF-8 text: {problem}", Param(path), "invalid_encoding");
        }
    }

    /// <summary>Why the current string token is not text, or null when it is.</summary>
    private static string? Invalid(ref Utf8JsonReader reader)
    {
        if (reader.ValueIsEscaped)
        {
            try
            {
                reader.GetString();
                return null;
            }
            catch (InvalidOperationException)
            {
                return "it holds invalid UTF-8 bytes or an escaped lone surrogate";
            }
        }

        var value = reader.ValueSpan;
        for (var i = 0; i < value.Length;)
        {
            if (Rune.DecodeFromUtf8(value[i..], out _, out var length) != System.Buffers.OperationStatus.Done)
            {
                var bad = string.Join(" ", value.Slice(i, length).ToArray().Select(b => $"0x{b:X2}"));
                var after = i + length < value.Length ? $"followed by 0x{value[i + length]:X2}" : "at the string's end";
                // The string's bytes start one past its opening quote.
                var offset = reader.TokenStartIndex + 1 + i;
                return string.Create(CultureInfo.InvariantCulture, $"{bad} at byte {offset} of the body, {after}, is not a UTF-8 character");
            }

            i += length;
        }

        return null;
    }

    private static string Describe(List<Frame> path) => Param(path) is { } param ? $"'{param}'" : "the body";

    /// <summary>The field as OpenAI's errors name it: messages[0].content.</summary>
    private static string? Param(List<Frame> path)
    {
        var param = new StringBuilder();
        foreach (var frame in path)
        {
            if (frame.Index is { } index) param.Append(CultureInfo.InvariantCulture, $"[{index}]");
            else if (frame.Name is { } name) param.Append(param.Length == 0 ? "" : ".").Append(name);
        }

        return param.Length == 0 ? null : param.ToString();
    }

    /// <summary>An object (the property being read) or an array (the element being read) on the way to the current token.</summary>
    private sealed record Frame(string? Name, int? Index);
}
