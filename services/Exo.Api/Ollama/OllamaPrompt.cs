using Exo.Api.Models;
using Exo.Api.OpenAi;
using Exo.Text.Templates;

namespace Exo.Api.Ollama;

/// <summary>The token ids a chat or a generate request puts before the model, as Ollama builds its prompts.</summary>
internal static class OllamaPrompt
{
    /// <summary>The messages in the model's chat template, the assistant's turn opened; <paramref name="param"/> is the field they came from.</summary>
    public static int[] Chat(ServedModel model, IReadOnlyList<ChatMessage> messages, string param)
    {
        if (model.Template is null)
            throw OpenAiException.BadRequest($"model '{model.Id}' has no chat template; send a prompt to /api/generate with raw: true", param, "no_chat_template");

        string prompt;
        try
        {
            prompt = model.Template.Render(messages, tools: null, addGenerationPrompt: true);
        }
        catch (TemplateException e)
        {
            throw OpenAiException.BadRequest($"the model's chat template refused these messages: {e.Message}", param, "invalid_messages");
        }

        model.RefuseHopeless(prompt, param);
        return model.Tokenizer.Encode(prompt, addSpecialTokens: false);
    }

    /// <summary>
    /// A raw prompt tokenized as it is (as /v1/completions does); otherwise the system message and the prompt as a user
    /// message in the chat template. The context of an earlier answer goes first.
    /// </summary>
    public static int[] Generate(OllamaGenerateRequest request)
    {
        var model = request.Common.Model;
        int[] prompt;
        if (request.Raw)
        {
            model.RefuseHopeless(request.Prompt, "prompt");
            prompt = model.Tokenizer.Encode(request.Prompt);
        }
        else
        {
            ChatMessage user = new("user", request.Prompt);
            prompt = Chat(model, request.System is { Length: > 0 } system ? [new ChatMessage("system", system), user] : [user], "prompt");
        }

        return [.. request.Context, .. prompt];
    }
}
