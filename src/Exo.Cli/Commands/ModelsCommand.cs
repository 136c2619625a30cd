using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Exo.Hub;

namespace Exo.Cli.Commands;

/// <summary>`exo models pull|list|rm`: models from the Hugging Face Hub in the local cache (EXO_HOME).</summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var command = new Command("models", "Models from the Hugging Face Hub, kept under EXO_HOME (default ~/.exo): EXO_HOME/models is a models directory for the shard worker.");
        command.Subcommands.Add(Pull());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Remove());
        return command;
    }

    private static Option<string?> Home() => new("--home") { Description = "The cache folder (default: EXO_HOME, else ~/.exo)" };

    private static ModelCache Cache(ParseResult parse, Option<string?> home) => new(parse.GetValue(home) ?? ModelCache.DefaultHome());

    private static Command Pull()
    {
        var model = new Argument<string>("model") { Description = "ORG/NAME or ORG/NAME@REVISION (a branch, tag or commit; default main)" };
        var home = Home();
        var endpoint = new Option<string?>("--endpoint") { Description = "The hub's URL (default: HF_ENDPOINT, else https://huggingface.co); HF_TOKEN opens gated and private models" };
        var parallel = new Option<int>("--parallel") { Description = "Files downloaded at once", DefaultValueFactory = _ => 4 };
        var command = new Command("pull",
            "Download a model at a revision into EXO_HOME/hub/ORG/NAME/COMMIT and link EXO_HOME/models/NAME to it. An interrupted pull resumes where it stopped; " +
            "every file is checked against the hub's SHA-256 or git blob id.") { model, home, endpoint, parallel };
        command.SetAction((parse, cancellationToken) => CommandErrors.RunAsync(async () =>
        {
            var reference = ModelReference.Parse(parse.GetValue(model)!);
            if (parse.GetValue(parallel) is < 1 or > 64) throw new CliInputException("--parallel must be 1 to 64");
            var cache = Cache(parse, home);
            using var http = HubHttp.CreateClient();
            var hub = new HubSource(http, HubOptions.FromEnvironment(parse.GetValue(endpoint)), reference);
            var downloader = new ModelDownloader(new DownloadOptions { MaxParallelFiles = parse.GetValue(parallel) });
            var clock = Stopwatch.StartNew();
            var pulled = await PullDisplay.RunAsync(progress => cache.PullAsync(reference, hub, [], downloader, progress, cancellationToken));
            var seconds = clock.Elapsed.TotalSeconds;
            var moved = pulled.Download.BytesTransferred;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"pulled {reference} at {pulled.Commit}: {pulled.Download.Files.Count} files, {Size(pulled.Download.Files.Sum(f => f.Size))}; " +
                $"{Size(moved)} downloaded in {seconds:0.0} s ({moved / 1e6 / Math.Max(seconds, 1e-3):0.0} MB/s)"));
            Console.WriteLine($"{pulled.Link} -> {pulled.Snapshot}");
            return 0;
        }));
        return command;
    }

    private static Command List()
    {
        var home = Home();
        var command = new Command("list", "List the pulled models: name, revision, commit, size and folder; * marks the revision EXO_HOME/models/NAME points at.") { home };
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            var models = Cache(parse, home).List();
            if (models.Count == 0)
            {
                Console.WriteLine("no models pulled yet: exo models pull ORG/NAME");
                return 0;
            }

            var rows = models.Select(m => (Name: (m.Linked ? "* " : "  ") + m.Model.RepoId, m.Model.Revision, Commit: m.Commit[..Math.Min(12, m.Commit.Length)], Size: Size(m.Size), m.Path)).ToList();
            var widths = (Name: Math.Max(6, rows.Max(r => r.Name.Length)), Revision: Math.Max(8, rows.Max(r => r.Revision.Length)), Size: Math.Max(4, rows.Max(r => r.Size.Length)));
            Console.WriteLine($"{"  NAME".PadRight(widths.Name)}  {"REVISION".PadRight(widths.Revision)}  {"COMMIT",-12}  {"SIZE".PadLeft(widths.Size)}  PATH");
            foreach (var r in rows) Console.WriteLine($"{r.Name.PadRight(widths.Name)}  {r.Revision.PadRight(widths.Revision)}  {r.Commit,-12}  {r.Size.PadLeft(widths.Size)}  {r.Path}");
            return 0;
        }));
        return command;
    }

    private static Command Remove()
    {
        var model = new Argument<string>("model") { Description = "ORG/NAME: every pulled revision of it goes, with its link in EXO_HOME/models" };
        var home = Home();
        var command = new Command("rm", "Remove a pulled model's snapshots and its link.") { model, home };
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            var reference = ModelReference.Parse(parse.GetValue(model)!);
            if (reference.Revision != ModelReference.DefaultRevision) throw new CliInputException("exo models rm takes ORG/NAME without a revision: it removes every revision");
            if (!Cache(parse, home).Remove(reference)) throw new CliInputException($"{reference.RepoId} is not pulled (exo models list shows what is)");
            Console.WriteLine($"removed {reference.RepoId}");
            return 0;
        }));
        return command;
    }

    internal static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.0} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.0} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 10):0.0} KiB"),
        _ => $"{bytes} B",
    };
}
