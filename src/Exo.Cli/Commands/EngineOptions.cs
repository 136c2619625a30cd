using System.CommandLine;
using Exo.Inference.Generation;
using Exo.Inference.Kernels;
using Exo.Inference.Weights;

namespace Exo.Cli.Commands;

/// <summary>
/// How a command runs a model on this machine: on a GPU or the CPU (<see cref="BackendChoice"/>), with the CPU's fast
/// kernels on N threads (default) or the reference ones, and optionally the weight matrices quantized once at load.
/// </summary>
internal sealed class EngineOptions
{
    private readonly Option<int> _threads = new("--threads") { Description = "Kernel threads; 0 means one per processor", DefaultValueFactory = _ => 0 };
    private readonly Option<bool> _reference = new("--reference") { Description = "Use the plain f64 reference kernels (slow, exact) instead of the fast ones" };
    private readonly Option<string?> _quantize = new("--quantize") { Description = "Quantize the weight matrices at load (none|q8_0|q4_0); the files are unchanged" };
    private readonly BackendChoice _backend = new();

    public void AddTo(Command command)
    {
        command.Options.Add(_threads);
        command.Options.Add(_reference);
        command.Options.Add(_quantize);
        _backend.AddTo(command);
    }

    /// <summary>A loaded model with the kernels it runs on; disposing it releases both.</summary>
    public sealed class Loaded(LocalModel model, IKernels kernels) : IDisposable
    {
        public LocalModel Model { get; } = model;

        public void Dispose()
        {
            Model.Dispose();
            (kernels as IDisposable)?.Dispose();
        }
    }

    public Loaded Load(ParseResult parse, string modelPath)
    {
        var kernels = Kernels(parse);
        try
        {
            return new Loaded(LocalModel.Load(modelPath, _backend.Options(parse, kernels), Quantize(parse)), kernels);
        }
        catch
        {
            (kernels as IDisposable)?.Dispose();
            throw;
        }
    }

    private IKernels Kernels(ParseResult parse)
    {
        if (parse.GetValue(_reference)) return ReferenceKernels.Instance;
        var threads = parse.GetValue(_threads);
        return threads >= 0 ? new FastKernels(threads) : throw new ArgumentOutOfRangeException("--threads", threads, "--threads must be 0 or more");
    }

    private DType? Quantize(ParseResult parse)
    {
        try
        {
            return LoadQuantization.Parse(parse.GetValue(_quantize));
        }
        catch (ArgumentException e)
        {
            throw new CliInputException($"--quantize: {e.Message}");
        }
    }
}
