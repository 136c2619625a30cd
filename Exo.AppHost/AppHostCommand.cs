using System.CommandLine;
using System.Net;
using System.Net.Sockets;

namespace Exo.AppHost;

/// <summary>What the user asked for, checked: an existing model folder, a free gateway port, a sensible worker count.</summary>
/// <param name="Public">Serve on every interface, the registry and planner on their well-known ports, so other machines' workers can join.</param>
public sealed record AppHostSettings(string Model, int Workers, int Port, TimeSpan ReadyTimeout, string DataDir, bool Public = false);

/// <summary>Something the user must fix before the cluster can start (an option, a missing build); reported as one <c>error:</c> line and exit code 2.</summary>
public sealed class AppHostInputException(string message) : Exception(message);

/// <summary>The AppHost's command line (System.CommandLine), turned into <see cref="AppHostSettings"/>.</summary>
public static class AppHostCommand
{
    public const int InputError = 2;
    public const int DefaultPort = 52415;

    /// <summary>Where --public puts the registry and the planner, the ports a worker on another machine assumes.</summary>
    public const int PublicRegistryPort = 52416;

    public const int PublicPlannerPort = 52417;

    public static async Task<int> InvokeAsync(string[] args, Func<AppHostSettings, CancellationToken, Task<int>> run, CancellationToken cancellationToken)
    {
        var model = new Option<DirectoryInfo>("--model")
        {
            HelpName = "DIR",
            Description = "Hugging Face model folder to serve (config.json, safetensors, tokenizer) [default: models/exo-tiny of the repository]",
        };
        var workers = new Option<int>("--workers") { HelpName = "N", Description = "How many shard workers to start; the model's layers are split among them", DefaultValueFactory = _ => 2 };
        var port = new Option<int>("--port") { HelpName = "PORT", Description = "Port of the gateway (OpenAI API and web chat) on localhost", DefaultValueFactory = _ => DefaultPort };
        var readyTimeout = new Option<int>("--ready-timeout")
        {
            HelpName = "SECONDS",
            Description = "Seconds to wait for the model to be loaded on every worker before saying it is not ready (the cluster keeps running)",
            DefaultValueFactory = _ => 180,
        };
        var dataDir = new Option<DirectoryInfo>("--data-dir")
        {
            HelpName = "DIR",
            Description = "Folder for the workers' state (worker-N/ holds each one's node id, kept between runs) [default: .exo of the repository]",
        };

        var isPublic = new Option<bool>("--public")
        {
            Description = "Listen on every network interface, with the registry on port 52416 and the planner on 52417, so that shard workers "
                + "on other machines can join (deploy/ installs them); by default everything listens on loopback only",
        };

        var root = new RootCommand(
            "Exo AppHost: runs a whole Exo cluster on this machine, like an Aspire AppHost. It starts redis-server from PATH on a free "
            + "loopback port (without one, the registry and planner keep their state in memory, with a warning), the registry, the planner, "
            + "--workers shard workers and the gateway, each once the ones it depends on are healthy, wired by environment variables. "
            + "Each process's log lines are prefixed with its name. It prints the web chat and API URLs, then 'ready: ...' once the "
            + "model's layers are loaded on every worker. Ctrl-C (or SIGTERM) stops everything; if any process dies, the AppHost says "
            + "which, stops the rest and exits 1. Bad options exit 2.")
        {
            model, workers, port, readyTimeout, dataDir, isPublic,
        };

        var parse = root.Parse(args);
        if (parse.Errors.Count == 0 && parse.Action is not null)
        {
            // The root has no action of its own, so this is --help or --version.
            return await parse.InvokeAsync(cancellationToken: cancellationToken);
        }

        try
        {
            if (parse.Errors.Count > 0) throw new AppHostInputException(parse.Errors[0].Message);
            var settings = Check(parse.GetValue(model)?.FullName, parse.GetValue(workers), parse.GetValue(port), parse.GetValue(readyTimeout), parse.GetValue(dataDir)?.FullName)
                with { Public = parse.GetValue(isPublic) };
            if (settings.Public)
            {
                foreach (var (well, service) in new[] { (PublicRegistryPort, "registry"), (PublicPlannerPort, "planner") })
                {
                    if (!IsFree(well)) throw new AppHostInputException($"port {well}, where --public puts the {service}, is in use: is another cluster running here?");
                }
            }

            return await run(settings, cancellationToken);
        }
        catch (AppHostInputException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return InputError;
        }
    }

    /// <summary>Checks the options and fills in the defaults that live in the repository.</summary>
    public static AppHostSettings Check(string? model, int workers, int port, int readyTimeoutSeconds, string? dataDir)
    {
        if (workers is < 1 or > 64) throw new AppHostInputException($"--workers must be between 1 and 64, not {workers}");
        if (port is < 1 or > 65535) throw new AppHostInputException($"--port must be between 1 and 65535, not {port}");
        if (readyTimeoutSeconds < 1) throw new AppHostInputException($"--ready-timeout must be at least 1 second, not {readyTimeoutSeconds}");

        var root = FindRepositoryRoot();
        model ??= root is null
            ? throw new AppHostInputException("no Exo.sln above the AppHost or the current directory, so there is no default model: pass --model")
            : Path.Combine(root, "models", "exo-tiny");
        model = Path.TrimEndingDirectorySeparator(Path.GetFullPath(model));
        if (!Directory.Exists(model)) throw new AppHostInputException($"model folder {model} does not exist");
        if (!File.Exists(Path.Combine(model, "config.json"))) throw new AppHostInputException($"{model} is not a model folder: it has no config.json");
        if (!IsFree(port)) throw new AppHostInputException($"port {port} is in use; pick another with --port");

        dataDir ??= Path.Combine(root ?? Path.GetTempPath(), ".exo");
        return new AppHostSettings(model, workers, port, TimeSpan.FromSeconds(readyTimeoutSeconds), Path.GetFullPath(dataDir));
    }

    /// <summary>The folder holding Exo.sln above the AppHost's own folder, else above the current directory.</summary>
    public static string? FindRepositoryRoot() => FindUp(AppContext.BaseDirectory) ?? FindUp(Environment.CurrentDirectory);

    private static string? FindUp(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Exo.sln"))) return dir.FullName;
        }

        return null;
    }

    private static bool IsFree(int port)
    {
        // Exclusive, so that a server on 0.0.0.0 or 127.0.0.1 (which the gateway's "localhost" also binds) counts as using it.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ExclusiveAddressUse = true };
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
