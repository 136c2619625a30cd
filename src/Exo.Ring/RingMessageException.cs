namespace Exo.Ring;

/// <summary>A ring message that cannot be acted on (malformed, or not for this stage); its text goes back to the gateway.</summary>
public sealed class RingMessageException(string message) : Exception(message);
