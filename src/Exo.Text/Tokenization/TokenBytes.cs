using System.Text;

namespace Exo.Text.Tokenization;

/// <summary>
/// The bytes one token adds to the decoded text when it follows other tokens: the decoder chain applied to that
/// token alone. Steps that only touch the whole text's ends (a Strip after Fuse, Metaspace's leading-space drop)
/// do not apply, so a token that would start the text reads here with the space the real text loses: a grammar
/// that sees one space too many refuses rather than accepts something else.
/// </summary>
internal static class TokenBytes
{
    public static byte[] Of(IDecoder? decoder, string token)
    {
        var bytes = Encoding.UTF8.GetBytes(token);
        var fused = false;
        Apply(decoder, ref bytes, ref fused);
        return bytes;
    }

    private static void Apply(IDecoder? decoder, ref byte[] bytes, ref bool fused)
    {
        switch (decoder)
        {
            case SequenceDecoder sequence:
                foreach (var step in sequence.Steps) Apply(step, ref bytes, ref fused);
                break;
            case ByteLevelDecoder:
                var text = Encoding.UTF8.GetString(bytes);
                var raw = new List<byte>(text.Length);
                if (ByteLevelAlphabet.TryAppendBytes(text, raw)) bytes = [.. raw];
                break;
            case ByteFallbackDecoder when ByteFallbackDecoder.TryParseByte(Encoding.UTF8.GetString(bytes), out var value):
                bytes = [value];
                break;
            case ReplaceDecoder replace:
                bytes = Replace(bytes, Encoding.UTF8.GetBytes(replace.Pattern), Encoding.UTF8.GetBytes(replace.Content));
                break;
            case MetaspaceDecoder metaspace:
                bytes = Replace(bytes, Encoding.UTF8.GetBytes(metaspace.Replacement.ToString()), " "u8.ToArray());
                break;
            case StripDecoder strip when !fused:
                bytes = Encoding.UTF8.GetBytes(strip.Apply(Encoding.UTF8.GetString(bytes)));
                break;
            case FuseDecoder:
                fused = true;
                break;
        }
    }

    private static byte[] Replace(byte[] bytes, byte[] pattern, byte[] content)
    {
        if (pattern.Length == 0 || bytes.AsSpan().IndexOf(pattern) < 0) return bytes;
        var result = new List<byte>(bytes.Length);
        var rest = bytes.AsSpan();
        for (var at = rest.IndexOf(pattern); at >= 0; at = rest.IndexOf(pattern))
        {
            result.AddRange(rest[..at]);
            result.AddRange(content);
            rest = rest[(at + pattern.Length)..];
        }
        result.AddRange(rest);
        return [.. result];
    }
}
