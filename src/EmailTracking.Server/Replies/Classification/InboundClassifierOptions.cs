namespace EmailTracking.Server.Replies.Classification;

/// <summary>Limits that keep classification fast and bounded whatever arrives.</summary>
public sealed class InboundClassifierOptions
{
    public const string SectionName = "Replies:Classifier";

    /// <summary>
    /// Most characters of body text looked at per message (all text parts together, decoded). Bounce reports, auto-replies
    /// and the top of a reply sit at the start, so a 50 MB message costs no more than a small one beyond MIME parsing.
    /// </summary>
    public int MaxBodyChars { get; set; } = 64 * 1024;

    /// <summary>Most MIME parts visited per message; the rest of a part bomb is ignored.</summary>
    public int MaxParts { get; set; } = 200;

    /// <summary>Deepest MIME nesting visited.</summary>
    public int MaxDepth { get; set; } = 12;

    /// <summary>Most failed recipients taken from one report.</summary>
    public int MaxRecipients { get; set; } = 100;
}
