using System.Text.Json;
using Exo.Inference.Sampling;

namespace Exo.Api.OpenAi;

/// <summary>OpenAI's response_format: text (no constraint), json_object (any JSON object), or json_schema (a value matching the schema).</summary>
internal static class ResponseFormat
{
    public static OutputConstraint? Parse(RequestReader r)
    {
        if (r.Field("response_format") is not { } format) return null;
        if (format.ValueKind != JsonValueKind.Object) throw OpenAiException.BadRequest("'response_format' must be an object", "response_format", "invalid_type");
        var reader = new RequestReader(format);
        switch (reader.String("type"))
        {
            case "text":
                return null;
            case "json_object":
                return new OutputConstraint("", null, "");
            case "json_schema":
                if (reader.Field("json_schema") is not { ValueKind: JsonValueKind.Object } spec)
                    throw OpenAiException.BadRequest("'response_format.json_schema' must be an object", "response_format.json_schema", "invalid_type");
                var s = new RequestReader(spec);
                if (s.String("name") is not { } name || !OpenAiNames.IsName(name))
                    throw OpenAiException.BadRequest("'response_format.json_schema.name' must be 1 to 64 letters, digits, '_' or '-'", "response_format.json_schema.name", "invalid_value");
                s.Bool("strict");
                s.String("description");
                return s.Field("schema") switch
                {
                    null => new OutputConstraint("", null, ""),
                    { ValueKind: JsonValueKind.Object } schema => new OutputConstraint("", schema.GetRawText(), ""),
                    _ => throw OpenAiException.BadRequest("'response_format.json_schema.schema' must be a JSON schema object", "response_format.json_schema.schema", "invalid_type"),
                };
            default:
                throw OpenAiException.BadRequest("'response_format.type' must be 'text', 'json_object' or 'json_schema'", "response_format.type", "invalid_value");
        }
    }
}
