using Microsoft.Extensions.Logging;

namespace Exo.Discovery;

/// <summary>Reads received packets for the advertiser and the finder: a malformed one is counted, logged and skipped, never thrown.</summary>
public sealed partial class PacketReader(ILogger logger)
{
    private long _malformed;

    /// <summary>What <paramref name="packet"/> says, or null when it is not a well-formed packet of ours.</summary>
    public ServicePacket? Read(byte[] packet)
    {
        try
        {
            return ServicePacket.Read(packet);
        }
        catch (InvalidDataException e)
        {
            LogMalformed(logger, Interlocked.Increment(ref _malformed), e.Message);
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Ignored a malformed mDNS packet ({Count} so far): {Reason}")]
    private static partial void LogMalformed(ILogger logger, long count, string reason);
}
