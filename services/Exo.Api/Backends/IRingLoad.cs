namespace Exo.Api.Backends;

/// <summary>What the choice of a ring for a request looks at (a <see cref="ModelRing"/>'s state as this API sees it).</summary>
internal interface IRingLoad
{
    bool Ready { get; }

    int OpenRequests { get; }

    KvRoom? Room { get; }
}
