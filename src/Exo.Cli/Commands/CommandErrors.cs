using Exo.Hub;
using Exo.Inference;
using Exo.Text.Templates;
using Exo.Text.Tokenization;

namespace Exo.Cli.Commands;

/// <summary>A command-line input the user must fix (bad file, bad argument).</summary>
internal sealed class CliInputException(string message) : Exception(message);

/// <summary>
/// Turns the errors a user can cause (bad files, bad options, a GPU asked for that is not there) into one line on
/// stderr and exit code 2.
/// </summary>
internal static class CommandErrors
{
    public const int InputError = 2;

    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (IsInputError(e))
        {
            return Report(e);
        }
    }

    public static async Task<int> RunAsync(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception e) when (IsInputError(e))
        {
            return Report(e);
        }
    }

    private static bool IsInputError(Exception e) =>
        e is ModelFormatException or TokenizerFormatException or TemplateException or ArgumentException
            or CliInputException or Inference.Vulkan.GpuUnavailableException
            or ModelDownloadException or ModelSourceException
            or IOException or UnauthorizedAccessException;

    private static int Report(Exception e)
    {
        // ArgumentException appends "(Parameter ...)" and the value on further lines: the first part is the message.
        var message = e is ArgumentException ? e.Message.Split(" (Parameter '")[0] : e.Message;
        Console.Error.WriteLine($"error: {message}");
        return InputError;
    }
}
