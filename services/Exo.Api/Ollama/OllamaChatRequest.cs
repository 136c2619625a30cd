using System.Text.Json;
using Exo.Api.Models;
using Exo.Api.OpenAi;
using Exo.Text.Templates;

namespace Exo.Api.Ollama;

/// <summary>
/// A validated POST /api/chat body: the common fields and the messages, each a role (system, user, assistant or tool)
/// and its text. No messages asks only to load the model. Images and tools are refused: the models read no images,
/// and tool calls are not wired yet.
/// </summary>
internal sealed record OllamaChatRequest(OllamaRequest Common, IReadOnlyList<ChatMessage> Messages)
{
    private static readonly HashSet<string> Roles = ["system", "user", "assistant", "tool"];

    public static OllamaChatRequest Parse(JsonElement body, ModelCatalog catalog)
    {
        var r = new RequestReader(body);
        var messages = r.Field("messages") switch
        {
            null => [],
            { ValueKind: JsonValueKind.Array } array => array.EnumerateArray().Select(Message).ToList(),
            _ => throw OpenAiException.BadRequest("'messages' must be an array", "messages", "invalid_type"),
        };
        var common = OllamaRequest.Read(r, catalog);

        // Tool calls plug in here: the tools would reach the chat template (OllamaPrompt), and the text the runner
        // yields would be parsed for calls; until then a request with tools is refused rather than answered without them.
        OllamaErrors.RefuseList(r.Field("tools"), "tools", "tools are not supported yet");
        return new OllamaChatRequest(common, messages);
    }

    private static ChatMessage Message(JsonElement message, int index)
    {
        var param = $"messages[{index}]";
        if (message.ValueKind != JsonValueKind.Object) throw OpenAiException.BadRequest($"'{param}' must be an object", param, "invalid_type");
        try
        {
            var r = new RequestReader(message);
            var role = r.RequiredString("role");
            if (!Roles.Contains(role)) throw OpenAiException.BadRequest($"'role' must be one of {string.Join(", ", Roles)}", "role", "invalid_value");
            var content = r.String("content") ?? "";
            OllamaErrors.RefuseList(r.Field("images"), "images", OllamaErrors.NoImages);
            OllamaErrors.RefuseList(r.Field("tool_calls"), "tool_calls", "tool calls are not supported yet");
            return new ChatMessage(role, content);
        }
        catch (OpenAiException e)
        {
            throw OllamaErrors.Within(e, param);
        }
    }
}
