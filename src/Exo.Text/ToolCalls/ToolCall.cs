using System.Security.Cryptography;

namespace Exo.Text.ToolCalls;

/// <summary>A function call the model wrote: OpenAI's tool call, its arguments as JSON text.</summary>
public sealed record ToolCall(string Id, string Name, string Arguments)
{
    /// <summary>An id in OpenAI's style ("call_" and 24 random letters and digits), unique enough to pair a call with its result.</summary>
    public static string NewId()
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        return "call_" + RandomNumberGenerator.GetString(alphabet, 24);
    }
}

/// <summary>A function the client offers (OpenAI's tools[].function): its name and its parameters' JSON schema.</summary>
public sealed record ToolFunction(string Name, System.Text.Json.JsonElement Parameters);

/// <summary>What a reader gives back for the text it was fed: text to show as content, or a whole tool call.</summary>
public readonly record struct ToolCallPiece(string? Content, ToolCall? Call);
