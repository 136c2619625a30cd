namespace Exo.Hub;

/// <summary>
/// Download progress for a log or a terminal line: every report is seen by <paramref name="track"/> (on the thread that
/// reports, unlike <see cref="Progress{T}"/>), and handed to <paramref name="report"/> at most once per
/// <paramref name="every"/>, and always when the download is complete.
/// </summary>
public sealed class ThrottledProgress(TimeSpan every, Action<DownloadProgress> report, Action<DownloadProgress>? track = null) : IProgress<DownloadProgress>
{
    private long _last = long.MinValue / 2;

    public void Report(DownloadProgress value)
    {
        track?.Invoke(value);
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _last);
        if (value.Done < value.Total && now - last < every.TotalMilliseconds) return;
        if (Interlocked.CompareExchange(ref _last, now, last) == last) report(value);
    }
}
