using System.Text.Json;

namespace Exo.Text.Constraints;

internal sealed partial class SchemaCompiler
{
    private int StringType(JsonElement schema, string pointer)
    {
        Refuse(schema, pointer, "pattern");
        var (min, max) = Range(schema, pointer, "minLength", "maxLength");
        return min == 0 && max is null ? _json.String : _json.StringOf(min, max, pointer);
    }

    /// <summary>Numbers and integers without bounds: the grammar cannot keep a value within a range or a multiple.</summary>
    private static int NumberType(JsonElement schema, string pointer, int rule)
    {
        Refuse(schema, pointer, "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf");
        return rule;
    }
}
