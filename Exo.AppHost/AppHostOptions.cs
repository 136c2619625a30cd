namespace Exo.AppHost;

/// <summary>Aspire's options for this run: the dashboard on the chosen port, or none.</summary>
public static class AppHostOptions
{
    public static DistributedApplicationOptions For(AppHostSettings settings)
    {
        if (settings.DashboardPort is { } port)
        {
            // What a launch profile would set, so that `dotnet Exo.AppHost.dll` and `dotnet run` behave alike: the dashboard
            // and its OTLP receiver on loopback over plain HTTP, where every service sends its logs, traces and metrics.
            Environment.SetEnvironmentVariable("ASPNETCORE_URLS", $"http://localhost:{port}");
            Environment.SetEnvironmentVariable("ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL", $"http://localhost:{port + 1}");
            Environment.SetEnvironmentVariable("ASPIRE_ALLOW_UNSECURED_TRANSPORT", "true");
        }

        // Our options are not Aspire's configuration: they were parsed into the settings already.
        return new DistributedApplicationOptions { Args = [], DisableDashboard = settings.DashboardPort is null };
    }
}
