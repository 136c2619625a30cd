namespace Exo.Api.Tests;

/// <summary>
/// The shipped model with a chat template extended for tools (its ChatML, plus the tools and tool-call turns in the
/// Hermes form that Qwen's template uses), served by a real API process. The model was never taught tools: a call comes
/// out of it only when tool_choice forces one, by constrained decoding.
/// </summary>
public sealed class ToolModel : IDisposable
{
    public const string Id = "exo-tiny-tools";

    private const string Template = """
        {%- if tools %}
            {{- '<|im_start|>system\n' }}
            {%- if messages[0].role == 'system' %}{{- messages[0].content + '\n\n' }}{%- endif %}
            {{- '# Tools\n\nYou may call one of these functions:\n<tools>' }}
            {%- for tool in tools %}{{- '\n' + (tool | tojson) }}{%- endfor %}
            {{- '\n</tools>\n\nFor a call, write <tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' }}
        {%- elif messages[0].role == 'system' %}
            {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
        {%- endif %}
        {%- for message in messages %}
            {%- if message.role == 'assistant' and message.tool_calls %}
                {{- '<|im_start|>assistant' }}
                {%- if message.content %}{{- '\n' + message.content }}{%- endif %}
                {%- for call in message.tool_calls %}
                    {{- '\n<tool_call>\n{"name": "' + call.function.name + '", "arguments": ' + (call.function.arguments | tojson) + '}\n</tool_call>' }}
                {%- endfor %}
                {{- '<|im_end|>\n' }}
            {%- elif message.role == 'tool' %}
                {{- '<|im_start|>user\n<tool_response>\n' + message.content + '\n</tool_response><|im_end|>\n' }}
            {%- elif message.role != 'system' %}
                {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}
        """;

    private readonly string _root = System.IO.Directory.CreateTempSubdirectory("exo-tools-").FullName;

    public ToolModel()
    {
        Directory = Path.Combine(_root, Id);
        System.IO.Directory.CreateDirectory(Directory);
        foreach (var file in System.IO.Directory.GetFiles(RepositoryPaths.ShippedModel))
            File.CreateSymbolicLink(Path.Combine(Directory, Path.GetFileName(file)), file);
        File.WriteAllText(Path.Combine(Directory, "chat_template.jinja"), Template);
        Api = new ApiProcess("--Api:Models:0=" + Directory);
    }

    public string Directory { get; }

    public ApiProcess Api { get; }

    public void Dispose()
    {
        Api.Dispose();
        System.IO.Directory.Delete(_root, recursive: true);
    }
}
