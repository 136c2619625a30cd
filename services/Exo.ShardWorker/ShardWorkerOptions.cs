namespace Exo.ShardWorker;

/// <summary>The worker's settings (section "ShardWorker"), validated at start.</summary>
public sealed class ShardWorkerOptions
{
    public const string Usage = """
        Exo shard worker: joins an Exo cluster, loads the layers the planner assigns to this machine and runs them.

        Usage: Exo.ShardWorker [options]      (every option can also be set as ShardWorker__<Name> in the environment)
          --registry URL        the registry's gRPC address (services__registry__grpc__0), e.g. http://10.0.0.2:52416;
                                without it the worker finds a cluster on the local network (see below)
          --planner URL         the planner's gRPC address (services__planner__grpc__0), e.g. http://10.0.0.2:52417
          --cluster NAME        the cluster to join when several are found (Cluster__Name)
          --interface NAME      the network interface to look for clusters on (Discovery__Interface; default: every
                                interface that is up and multicast-capable)
          --data-dir DIR        where the node id is kept (default ~/.exo/worker); one per worker, never shared or cloned
          --models-dir DIR      folder holding one subfolder per model (default DATA_DIR/models); this node serves
                                them to other workers, and fetches the layers it is given of a model it lacks from
                                one that has it, into DATA_DIR/fetched
          --port N              gRPC port (default 52418); --address IP the interface to listen on (default 0.0.0.0)
          --advertise URL       the gRPC address other nodes use to reach this one (default http://<this host>:<port>)
          --memory-mb N         memory offered to the cluster (default: the machine's available memory at start)
          --kv-cache-mb N       KV cache memory for all requests together (default 1024)
          --backend NAME        where layers run: auto (a GPU when the machine has one, else the CPU), cpu, or vulkan
          --gpu N               the Vulkan device to use (see `exo devices`); with a GPU, --memory-mb counts its memory
          --urls URL            plain HTTP for /health and /alive (e.g. http://127.0.0.1:52419)

        Finding a cluster: with no registry address the worker asks the local network over mDNS (multicast on UDP 5353)
        for _exo._tcp.local, which a registry started with Registry__Advertise=true (the AppHost's --public) answers with
        the cluster's name and its registry's and planner's addresses; it waits, saying so every 10 s, until one answers,
        and Ctrl-C or SIGTERM stops the wait. Given --cluster NAME it joins only that cluster; without it, when several
        answer, it joins the first by name and lists them all in its log. A --planner given by hand wins over the one
        advertised. Discovery only gives addresses: the join secret still decides who may join.

        The cluster's join secret, without which the registry refuses this node, is set as Cluster__Secret in the
        environment: the cluster-secret file in the data directory of the AppHost that runs the cluster.
        """;

    /// <summary>Short command-line names for the settings above.</summary>
    public static readonly IReadOnlyDictionary<string, string> Switches = new Dictionary<string, string>
    {
        ["--registry"] = "services:registry:grpc:0",
        ["--planner"] = "services:planner:grpc:0",
        ["--cluster"] = "Cluster:Name",
        ["--interface"] = "Discovery:Interface",
        ["--data-dir"] = "ShardWorker:DataDir",
        ["--models-dir"] = "ShardWorker:ModelsDir",
        ["--port"] = "ShardWorker:GrpcPort",
        ["--address"] = "ShardWorker:GrpcAddress",
        ["--advertise"] = "ShardWorker:AdvertisedEndpoint",
        ["--memory-mb"] = "ShardWorker:MemoryMegabytes",
        ["--kv-cache-mb"] = "ShardWorker:KvCacheMegabytes",
        ["--backend"] = "ShardWorker:Backend",
        ["--gpu"] = "ShardWorker:Gpu",
    };

    public string DataDir { get; set; } = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".exo", "worker");

    public string? ModelsDir { get; set; }

    public int GrpcPort { get; set; } = 52418;

    public string GrpcAddress { get; set; } = "0.0.0.0";

    public string? AdvertisedEndpoint { get; set; }

    public long? MemoryMegabytes { get; set; }

    public long KvCacheMegabytes { get; set; } = 1024;

    public string Backend { get; set; } = "auto";

    public int? Gpu { get; set; }

    /// <summary>The backend choice these settings make (checked by <see cref="Validate"/>).</summary>
    public Inference.Backends.BackendOptions BackendChoice => new(Inference.Backends.BackendOptions.Parse(Backend), Gpu);

    public string ModelsDirectory => ModelsDir ?? Path.Combine(DataDir, "models");

    /// <summary>Where the layers of models this node lacks are kept once fetched from a peer: never served to others, as they hold only some tensors.</summary>
    public string FetchedDirectory => Path.Combine(DataDir, "fetched");

    /// <summary>The address the registry publishes for this node: explicit, else this host's name (loopback stays loopback).</summary>
    public string Endpoint(int boundPort)
    {
        if (AdvertisedEndpoint is not null) return AdvertisedEndpoint;
        var host = System.Net.IPAddress.TryParse(GrpcAddress, out var ip) && System.Net.IPAddress.IsLoopback(ip) ? GrpcAddress : Environment.MachineName;
        return $"http://{host}:{boundPort}";
    }

    public void Validate()
    {
        // Port 0 would be advertised as such: other stages could not reach it.
        if (GrpcPort is < 1 or > 65535) throw new InvalidOperationException($"ShardWorker:GrpcPort {GrpcPort} is not a port number (1 to 65535)");
        if (!System.Net.IPAddress.TryParse(GrpcAddress, out _)) throw new InvalidOperationException($"ShardWorker:GrpcAddress '{GrpcAddress}' is not an IP address");
        if (AdvertisedEndpoint is not null && !(Uri.TryCreate(AdvertisedEndpoint, UriKind.Absolute, out var advertised) && advertised.Scheme is "http" or "https"))
            throw new InvalidOperationException($"ShardWorker:AdvertisedEndpoint '{AdvertisedEndpoint}' is not a URL like http://10.0.0.5:52418");
        if (MemoryMegabytes is <= 0 || KvCacheMegabytes <= 0) throw new InvalidOperationException("ShardWorker:MemoryMegabytes and KvCacheMegabytes must be positive");
        try
        {
            if (BackendChoice is { Kind: Inference.Backends.BackendKind.Cpu, Gpu: not null })
                throw new InvalidOperationException($"ShardWorker:Gpu {Gpu} names a GPU, but ShardWorker:Backend is cpu");
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"ShardWorker:Backend: {e.Message}");
        }

        if (Gpu is < 0) throw new InvalidOperationException($"ShardWorker:Gpu must be a device index (0 or more), not {Gpu}");
        // The default lives in the worker's own data directory and is made on first start; a folder given by hand must exist.
        if (ModelsDir is null) Directory.CreateDirectory(ModelsDirectory);
        else if (!Directory.Exists(ModelsDirectory))
            throw new InvalidOperationException($"the models directory '{ModelsDirectory}' does not exist: create it and put model folders in it, or fix --models-dir");
    }
}
