using Exo.Hub;
using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Exo.AppHost;

/// <summary>What the user asked for, checked: an existing model folder, free ports, sensible counts.</summary>
/// <param name="Public">Serve on every interface, the registry and planner on their well-known ports, so other machines' workers can join.</param>
/// <param name="DashboardPort">The Aspire dashboard's port on localhost; null runs without the dashboard.</param>
/// <param name="ApiKeys">Keys the gateway requires of every request but health and the web chat's page; none leaves it open.</param>
/// <param name="Replicas">The planner's <c>Planner:Replicas</c>: <c>auto</c> (as many rings of the model as the workers hold) or at most N rings.</param>
public sealed record AppHostSettings(
    string Model, int Workers, int ApiReplicas, int Port, TimeSpan ReadyTimeout, string DataDir, bool Public, int? DashboardPort, IReadOnlyList<string> ApiKeys,
    string Replicas = "auto");

/// <summary>Something the user must fix before the cluster can start; reported as one <c>error:</c> line and exit code 2.</summary>
public sealed class AppHostInputException(string message) : Exception(message);

/// <summary>The AppHost's command line (System.CommandLine), turned into <see cref="AppHostSettings"/>.</summary>
public static class AppHostCommand
{
    public const int InputError = 2;
    public const int DefaultPort = 52415;
    public const int DefaultDashboardPort = 18888;

    /// <summary>Where --public puts the registry and the planner, the ports a worker on another machine assumes.</summary>
    public const int PublicRegistryPort = 52416;

    public const int PublicPlannerPort = 52417;

    public static async Task<int> InvokeAsync(string[] args, Func<AppHostSettings, CancellationToken, Task<int>> run, CancellationToken cancellationToken)
    {
        var model = new Option<string>("--model")
        {
            HelpName = "DIR|ORG/NAME[@REVISION]",
            Description = "Hugging Face model folder to serve (config.json, safetensors, tokenizer), or a Hugging Face Hub repository, pulled "
                + "into EXO_HOME (~/.exo) first unless it is there already (HF_ENDPOINT, HF_TOKEN as for `exo models pull`) [default: models/exo-tiny of the repository]",
        };
        var workers = new Option<int>("--workers") { HelpName = "N", Description = "How many shard workers to start; the model's layers are split among them", DefaultValueFactory = _ => 2 };
        var apiReplicas = new Option<int>("--api-replicas")
        {
            HelpName = "N",
            Description = "How many API services the gateway balances over; a request that fails before its answer starts is retried on another",
            DefaultValueFactory = _ => 1,
        };
        var replicas = new Option<string>("--replicas")
        {
            HelpName = "auto|N",
            Description = "How many rings (replicas) of the model the planner places, each a whole copy over as few workers as hold it, requests going to "
                + "the least loaded: auto places as many as the workers' memory holds (the shipped model fits one worker, so each worker is a ring); "
                + "N places at most N, spreading the workers over them; 1 is one ring over every worker (pipeline only)",
            DefaultValueFactory = _ => "auto",
        };
        var port = new Option<int>("--port") { HelpName = "PORT", Description = "Port of the gateway (OpenAI API and web chat)", DefaultValueFactory = _ => DefaultPort };
        var dashboardPort = new Option<int>("--dashboard-port")
        {
            HelpName = "PORT",
            Description = "Port of the Aspire dashboard on localhost (logs, traces and metrics of every service); its OTLP receiver takes the next port",
            DefaultValueFactory = _ => DefaultDashboardPort,
        };
        var noDashboard = new Option<bool>("--no-dashboard")
        {
            Description = "Run headless, without the dashboard: every service's log lines are printed here instead, prefixed with its name",
        };
        var readyTimeout = new Option<int>("--ready-timeout")
        {
            HelpName = "SECONDS",
            Description = "Seconds to wait for the model to be loaded on every worker before saying it is not ready (the cluster keeps running)",
            DefaultValueFactory = _ => 180,
        };
        var dataDir = new Option<DirectoryInfo>("--data-dir")
        {
            HelpName = "DIR",
            Description = "Folder for the cluster's state: redis/ holds Redis's data, worker-N/ each worker's node id, cluster-secret the join secret every node "
                + "needs, all kept between runs [default: .exo of the repository]",
        };
        var apiKeys = new Option<string[]>("--api-key")
        {
            HelpName = "KEY",
            Description = "An API key the gateway requires (Authorization: Bearer KEY) of every request but /health, /alive and the web chat's page, "
                + "which asks for it; repeat for several keys. Without any the gateway is open to whoever reaches it",
        };
        var isPublic = new Option<bool>("--public")
        {
            Description = "Listen on every network interface, with the registry on port 52416 and the planner on 52417, so that shard workers "
                + "on other machines can join (deploy/ installs them, asking for the cluster's join secret, which this AppHost makes once and keeps in "
                + "the data directory's cluster-secret file), and advertise the cluster on the local network over mDNS (UDP 5353) as 'exo', so that "
                + "a worker started with no --registry finds it; by default everything listens on loopback only",
        };

        var root = new RootCommand(
            "Exo AppHost: runs a whole Exo cluster on this machine as an Aspire AppHost: redis-server from PATH (Aspire's Redis container where "
            + "a container runtime runs instead; without either the cluster's state is kept in memory, with a warning), the registry, the "
            + "planner, --workers shard workers, the API and the gateway, each once the ones it depends on are healthy, with the Aspire "
            + "dashboard. It prints the dashboard's login URL, the web chat and API URLs, then 'ready: ...' once the model's layers are "
            + "loaded on every worker. A service that crashes is restarted, with back-off. Ctrl-C (or SIGTERM) stops everything. Bad options exit 2.")
        {
            model, workers, replicas, apiReplicas, port, dashboardPort, noDashboard, readyTimeout, dataDir, apiKeys, isPublic,
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
            var folder = await PulledModel(parse.GetValue(model), cancellationToken);
            var settings = Check(
                folder is null ? null : Path.GetFullPath(folder), parse.GetValue(workers), parse.GetValue(apiReplicas), parse.GetValue(port),
                parse.GetValue(readyTimeout), parse.GetValue(dataDir)?.FullName, parse.GetValue(isPublic),
                parse.GetValue(noDashboard) ? null : parse.GetValue(dashboardPort), parse.GetValue(apiKeys) ?? [], parse.GetValue(replicas) ?? "auto");
            return await run(settings, cancellationToken);
        }
        catch (AppHostInputException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return InputError;
        }
    }

    /// <summary>The folder of <c>--model</c>: itself, or a Hugging Face Hub repository pulled into EXO_HOME first.</summary>
    private static async Task<string?> PulledModel(string? model, CancellationToken cancellationToken)
    {
        try
        {
            return await HubModels.ResolveAsync(model, new ModelCache(ModelCache.DefaultHome()), HubOptions.FromEnvironment(), Console.Out, cancellationToken);
        }
        catch (ModelDownloadException e)
        {
            throw new AppHostInputException($"--model {model} is no folder here, and pulling it from the Hugging Face Hub failed: {e.Message}");
        }
    }

    /// <summary>Checks the options and fills in the defaults that live in the repository.</summary>
    public static AppHostSettings Check(
        string? model, int workers, int apiReplicas, int port, int readyTimeoutSeconds, string? dataDir, bool isPublic, int? dashboardPort, IReadOnlyList<string> apiKeys,
        string replicas = "auto")
    {
        if (workers is < 1 or > 64) throw new AppHostInputException($"--workers must be between 1 and 64, not {workers}");
        if (replicas != "auto" && !(int.TryParse(replicas, NumberStyles.None, CultureInfo.InvariantCulture, out var rings) && rings >= 1))
            throw new AppHostInputException($"--replicas must be auto or a positive number of rings, not {replicas}");
        if (apiReplicas is < 1 or > 16) throw new AppHostInputException($"--api-replicas must be between 1 and 16, not {apiReplicas}");
        if (port is < 1 or > 65535) throw new AppHostInputException($"--port must be between 1 and 65535, not {port}");
        if (dashboardPort is < 1 or > 65534) throw new AppHostInputException($"--dashboard-port must be between 1 and 65534, not {dashboardPort}");
        if (readyTimeoutSeconds < 1) throw new AppHostInputException($"--ready-timeout must be at least 1 second, not {readyTimeoutSeconds}");
        if (apiKeys.Any(string.IsNullOrWhiteSpace)) throw new AppHostInputException("--api-key must not be empty");

        var root = FindRepositoryRoot();
        model ??= root is null
            ? throw new AppHostInputException("no Exo.sln above the AppHost or the current directory, so there is no default model: pass --model")
            : Path.Combine(root, "models", "exo-tiny");
        model = Path.TrimEndingDirectorySeparator(Path.GetFullPath(model));
        if (!Directory.Exists(model)) throw new AppHostInputException($"model folder {model} does not exist");
        if (!File.Exists(Path.Combine(model, "config.json"))) throw new AppHostInputException($"{model} is not a model folder: it has no config.json");

        RequireFree(port, "--port", "the gateway");
        if (dashboardPort is { } dashboard)
        {
            RequireFree(dashboard, "--dashboard-port", "the dashboard");
            RequireFree(dashboard + 1, "--dashboard-port", "the dashboard's OTLP receiver");
        }

        if (isPublic)
        {
            RequireFree(PublicRegistryPort, null, "the registry (--public)");
            RequireFree(PublicPlannerPort, null, "the planner (--public)");
        }

        // Free now but wanted twice: the second service would fail at start with a less helpful error.
        var wanted = new List<(int Port, string What)> { (port, "the gateway (--port)") };
        if (dashboardPort is { } ui) wanted.AddRange([(ui, "the dashboard (--dashboard-port)"), (ui + 1, "the dashboard's OTLP receiver")]);
        if (isPublic) wanted.AddRange([(PublicRegistryPort, "the registry (--public)"), (PublicPlannerPort, "the planner (--public)")]);
        if (wanted.GroupBy(w => w.Port).FirstOrDefault(g => g.Count() > 1) is { } clash)
            throw new AppHostInputException($"port {clash.Key} is wanted by both {string.Join(" and ", clash.Select(w => w.What))}; pick other ports");

        dataDir ??= Path.Combine(root ?? Path.GetTempPath(), ".exo");
        return new AppHostSettings(
            model, workers, apiReplicas, port, TimeSpan.FromSeconds(readyTimeoutSeconds), Path.GetFullPath(dataDir), isPublic, dashboardPort, [.. apiKeys.Select(k => k.Trim())],
            replicas);
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

    private static void RequireFree(int port, string? option, string what)
    {
        if (IsFree(port)) return;
        var fix = option is null ? "is another cluster running here?" : $"pick another with {option}";
        throw new AppHostInputException($"port {port}, where {what} listens, is in use; {fix}");
    }

    private static bool IsFree(int port)
    {
        // Exclusive, so that a server on 0.0.0.0 or 127.0.0.1 (which "localhost" also binds) counts as using it.
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
