using Exo.Inference.Templates;
using Exo.Inference.Tokenization;

namespace Exo.Cli.Commands;

/// <summary>A command-line input the user must fix (bad file, bad argument).</summary>
internal sealed class CliInputException(string message) : Exception(message);

/// <summary>Turns the expected failures of tokenizer and template commands into one stderr line and exit code 2.</summary>
internal static class CliErrors
{
    public const int InputError = 2;

    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is TokenizerFormatException or TemplateException or CliInputException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"exo: {e.Message}");
            return InputError;
        }
    }
}
