using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Exo.ServiceDefaults;

/// <summary>
/// The service's own tracing source and meter, both named <c>Exo.&lt;Service&gt;</c> so that the <c>Exo.*</c>
/// subscription of <see cref="ServiceDefaultsExtensions.AddServiceDefaults{TBuilder}"/> picks them up.
/// </summary>
public sealed class ServiceTelemetry : IDisposable
{
    public const string Prefix = "Exo.";

    public ServiceTelemetry(string service, string? version = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(service);
        Name = service.StartsWith(Prefix, StringComparison.Ordinal) ? service : Prefix + service;
        ActivitySource = new ActivitySource(Name, version);
        Meter = new Meter(Name, version);
    }

    public string Name { get; }
    public ActivitySource ActivitySource { get; }
    public Meter Meter { get; }

    public void Dispose()
    {
        ActivitySource.Dispose();
        Meter.Dispose();
    }
}
