namespace Exo.Text.Tokenization;

/// <summary>
/// GPT-2's reversible byte-to-character table: printable Latin-1 bytes map to themselves and the rest to
/// code points from U+0100 on, so every byte string becomes a string of visible characters.
/// </summary>
public static class ByteLevelAlphabet
{
    internal static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>Indexed by character; -1 where the character is not in the alphabet.</summary>
    internal static readonly short[] CharToByte = BuildCharToByte();

    /// <summary>The character byte-level vocabularies write for <paramref name="value"/> (a one-byte token's text).</summary>
    public static char ToChar(byte value) => ByteToChar[value];

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var reverse = new short[512];
        Array.Fill(reverse, (short)-1);
        for (var b = 0; b < 256; b++)
        {
            reverse[ByteToChar[b]] = (short)b;
        }
        return reverse;
    }

    internal static string Encode(string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, static (chars, source) =>
        {
            for (var i = 0; i < source.Length; i++)
            {
                chars[i] = ByteToChar[source[i]];
            }
        });
    }

    /// <summary>Appends the bytes a token stands for; false (nothing appended) when a character is outside the alphabet.</summary>
    internal static bool TryAppendBytes(string token, List<byte> output)
    {
        foreach (var c in token)
        {
            if (c >= CharToByte.Length || CharToByte[c] < 0)
            {
                return false;
            }
        }
        foreach (var c in token)
        {
            output.Add((byte)CharToByte[c]);
        }
        return true;
    }
}
