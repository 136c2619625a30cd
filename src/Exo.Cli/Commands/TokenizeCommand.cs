using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Exo.Text.Tokenization;

namespace Exo.Cli.Commands;

internal static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Model folder holding tokenizer.json", Required = true };
        var text = new Option<string?>("--text") { Description = "Text to tokenize" };
        var inputFile = new Option<FileInfo?>("--input-file") { Description = "File with one JSON string per line; prints one id array per line" };
        var noSpecial = new Option<bool>("--no-special") { Description = "Do not add the post-processor's special tokens (BOS)" };
        var bench = new Option<bool>("--bench") { Description = "Time loading the tokenizer and encoding the input (default: 100 KB of generated prose)" };
        var command = new Command("tokenize", "Print the token ids of a text as a JSON array.") { model, text, inputFile, noSpecial, bench };
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            var folder = parse.GetValue(model)!.FullName;
            var addSpecial = !parse.GetValue(noSpecial);
            if (parse.GetValue(bench))
            {
                return Benchmark(folder, parse.GetValue(text), addSpecial);
            }
            var tokenizer = Tokenizer.FromModelDirectory(folder);
            if (parse.GetValue(inputFile) is { } file)
            {
                var lineNumber = 0;
                foreach (var line in File.ReadLines(file.FullName))
                {
                    lineNumber++;
                    string? input;
                    try
                    {
                        input = JsonSerializer.Deserialize<string>(line);
                    }
                    catch (JsonException e)
                    {
                        throw new CliInputException($"{file.FullName} line {lineNumber}: not a JSON string ({e.Message})");
                    }
                    Console.Out.WriteLine(JsonSerializer.Serialize(tokenizer.Encode(input ?? throw new CliInputException($"{file.FullName} line {lineNumber}: null is not a string"), addSpecial)));
                }
                return 0;
            }
            var value = parse.GetValue(text) ?? throw new CliInputException("give --text or --input-file");
            Console.Out.WriteLine(JsonSerializer.Serialize(tokenizer.Encode(value, addSpecial)));
            return 0;
        }));
        return command;
    }

    private static int Benchmark(string folder, string? text, bool addSpecial)
    {
        var input = text ?? SampleText(100 * 1024);
        var total = Stopwatch.StartNew();
        var tokenizer = Tokenizer.FromModelDirectory(folder);
        var loadMs = total.Elapsed.TotalMilliseconds;
        var encode = Stopwatch.StartNew();
        var ids = tokenizer.Encode(input, addSpecial);
        var encodeMs = encode.Elapsed.TotalMilliseconds;
        var warm = Stopwatch.StartNew();
        tokenizer.Encode(input, addSpecial);

        Console.Out.WriteLine($"{{\"chars\": {input.Length}, \"tokens\": {ids.Length}, \"load_ms\": {loadMs:F1}, \"first_encode_ms\": {encodeMs:F1}, \"load_plus_encode_ms\": {loadMs + encodeMs:F1}, \"warm_encode_ms\": {warm.Elapsed.TotalMilliseconds:F1}}}");
        return 0;
    }

    /// <summary>Deterministic mixed prose, code and numbers, so the word cache sees a realistic spread of words.</summary>
    private static string SampleText(int length)
    {
        string[] words = ["the", "model", "tokenizer", "runs", "across", "several", "machines,", "each", "holding", "layers", "of",
            "weights;", "latency", "bandwidth", "2024-07-26", "3.14159", "for (int i = 0; i < n; ++i)", "{ x += y[i]; }", "naïve", "café",
            "蓝牙耳机", "こんにちは", "Привет", "🚀", "don't", "they're", "\n\n", "    indented", "HTTP/2", "json:", "\"quoted\""];
        var random = new Random(1234);
        var builder = new System.Text.StringBuilder(length + 64);
        while (builder.Length < length)
        {
            builder.Append(words[random.Next(words.Length)]);
            builder.Append(random.Next(7) == 0 ? random.Next(100000).ToString(System.Globalization.CultureInfo.InvariantCulture) : "");
            builder.Append(' ');
        }
        return builder.ToString(0, length);
    }
}
