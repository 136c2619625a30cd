using System.CommandLine;
using Exo.Inference.Kernels;

namespace Exo.Cli.Commands;

/// <summary>Which kernels run the model: the fast ones on N threads (default), or the reference ones.</summary>
internal sealed class KernelOptions
{
    private readonly Option<int> _threads = new("--threads") { Description = "Kernel threads; 0 means one per processor", DefaultValueFactory = _ => 0 };
    private readonly Option<bool> _reference = new("--reference") { Description = "Use the plain f64 reference kernels (slow, exact) instead of the fast ones" };

    public void AddTo(Command command)
    {
        command.Options.Add(_threads);
        command.Options.Add(_reference);
    }

    /// <summary>The kernels to run with; the caller disposes them (a no-op for the shared reference instance).</summary>
    public IKernels Create(ParseResult parse)
    {
        if (parse.GetValue(_reference)) return ReferenceKernels.Instance;
        var threads = parse.GetValue(_threads);
        return threads >= 0 ? new FastKernels(threads) : throw new ArgumentOutOfRangeException("--threads", threads, "--threads must be 0 or more");
    }
}
