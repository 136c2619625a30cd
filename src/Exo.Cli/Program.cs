using System.CommandLine;
using Exo.Cli.Commands;

var root = new RootCommand("exo: run Llama-family language models, whole or split across machines.");
root.Subcommands.Add(VerifyCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(ChatCommand.Create());
root.Subcommands.Add(TokenizeCommand.Create());
root.Subcommands.Add(TemplateCommand.Create());
root.Subcommands.Add(ConvertCommand.Create());
root.Subcommands.Add(SynthCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(LogitsCommand.Create());
root.Subcommands.Add(DevicesCommand.Create());
root.Subcommands.Add(ModelsCommand.Create());
return await root.Parse(args).InvokeAsync();
