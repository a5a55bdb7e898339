namespace EmailTracking.Server.Replies;

/// <summary>
/// Outlook's Thread-Index header: base64 of a 22-byte conversation header (a time stamp and a GUID) followed by
/// 5 bytes per reply. The first 22 bytes name the conversation, whatever Message-IDs it carries.
/// </summary>
public static class ThreadIndex
{
    public static string? Conversation(string? header)
    {
        if (string.IsNullOrWhiteSpace(header) || header.Length > 4096) return null;
        var buffer = new byte[header.Length];
        if (!Convert.TryFromBase64String(header.Trim(), buffer, out var n) || n < 22) return null;
        return Convert.ToBase64String(buffer, 0, 22);
    }
}
