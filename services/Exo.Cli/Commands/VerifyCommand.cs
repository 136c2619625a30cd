using System.CommandLine;

namespace Exo.Cli.Commands;

internal static class VerifyCommand
{
    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Model folder holding reference.json and reference.bin", Required = true };
        var command = new Command("verify", "Check the engine against a model folder's reference.json/reference.bin.") { model };
        command.SetAction(parse => 1);
        return command;
    }
}
