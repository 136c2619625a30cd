using System.CommandLine;
using Exo.Inference.Backends;
using Exo.Inference.Kernels;

namespace Exo.Cli.Commands;

/// <summary>The <c>--backend</c> and <c>--gpu</c> options every command that runs a model takes.</summary>
internal sealed class BackendChoice(string defaultBackend = "auto")
{
    private readonly Option<string> _backend = new("--backend")
    {
        Description = "Where the model runs: auto (a GPU when there is one, else the CPU), cpu, or vulkan (any Vulkan device, a CPU implementation included)",
        DefaultValueFactory = _ => defaultBackend,
    };

    private readonly Option<int?> _gpu = new("--gpu") { Description = "Vulkan device index to run on (see `exo devices`); implies --backend vulkan unless cpu is asked for" };

    public void AddTo(Command command)
    {
        command.Options.Add(_backend);
        command.Options.Add(_gpu);
    }

    public BackendOptions Options(ParseResult parse, IKernels? cpuKernels)
    {
        BackendKind kind;
        try
        {
            kind = BackendOptions.Parse(parse.GetValue(_backend)!);
        }
        catch (ArgumentException e)
        {
            throw new CliInputException($"--backend: {e.Message}");
        }

        var gpu = parse.GetValue(_gpu);
        if (gpu is < 0) throw new CliInputException($"--gpu must be a device index (0 or more), not {gpu}");
        if (gpu is not null && kind == BackendKind.Cpu) throw new CliInputException("--gpu names a GPU, but --backend cpu was asked for");
        return new BackendOptions(kind, gpu, cpuKernels);
    }
}
