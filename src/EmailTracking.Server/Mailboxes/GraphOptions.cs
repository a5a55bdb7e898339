namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// The app registration in Microsoft Entra ID that connects Microsoft 365 and Outlook.com mailboxes, and where
/// Microsoft Graph and its change notifications are. Section <c>Mailboxes:Graph</c>.
/// </summary>
public sealed class GraphOptions
{
    public const string Section = "Mailboxes:Graph";

    /// <summary>Application (client) id of the app registration.</summary>
    public string? ClientId { get; set; }

    /// <summary>A client secret of the app registration (keep it in user secrets or the environment).</summary>
    public string? ClientSecret { get; set; }

    /// <summary>The Microsoft identity platform; tests point it at a local fake.</summary>
    public string Instance { get; set; } = "https://login.microsoftonline.com/";

    /// <summary><c>common</c> takes work, school and personal (Outlook.com) accounts; a tenant id limits sign-in to one organisation.</summary>
    public string Tenant { get; set; } = "common";

    /// <summary>
    /// MSAL asks Microsoft which hosts are aliases of the authority; off for an identity server that is not
    /// Microsoft's (the tests' fake).
    /// </summary>
    public bool InstanceDiscovery { get; set; } = true;

    /// <summary>Microsoft Graph, version included.</summary>
    public string GraphBaseUrl { get; set; } = "https://graph.microsoft.com/v1.0";

    /// <summary>
    /// Where Microsoft redirects after sign-in, as registered in the app registration. Empty: this server's own
    /// <c>/mailboxes/microsoft/callback</c> as the request reached it.
    /// </summary>
    public string? RedirectUri { get; set; }

    /// <summary>
    /// The public HTTPS URL of <c>/hooks/graph/notifications</c>, which Microsoft must be able to reach. Empty: no
    /// change notifications; mailboxes are read every <see cref="MailboxOptions.PollInterval"/> instead.
    /// </summary>
    public string? NotificationUrl { get; set; }

    /// <summary>The public URL of <c>/hooks/graph/lifecycle</c>; empty: derived from <see cref="NotificationUrl"/>.</summary>
    public string? LifecycleNotificationUrl { get; set; }

    /// <summary>How long a subscription is asked for (Outlook messages allow under 7 days; 3 days is safe everywhere).</summary>
    public TimeSpan SubscriptionLifetime { get; set; } = TimeSpan.FromDays(3);

    /// <summary>A subscription is renewed once it has less than this left.</summary>
    public TimeSpan RenewBefore { get; set; } = TimeSpan.FromDays(1);

    /// <summary>While notifications arrive, the mailbox is still read this often, in case one was lost.</summary>
    public TimeSpan SafetyPollInterval { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>Delta pages are asked for in this size (Prefer: odata.maxpagesize).</summary>
    public int PageSize { get; set; } = 50;

    /// <summary>How often, after sending, Sent Items is searched for the sent copy before giving up (the watch finds it later).</summary>
    public int SentLookupAttempts { get; set; } = 5;

    public TimeSpan SentLookupDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Files under this go in one POST (fileAttachment); larger ones through an upload session (Graph: 3 MB).</summary>
    public int SmallAttachmentBytes { get; set; } = 3 * 1024 * 1024;

    /// <summary>Bytes per PUT of an upload session: a multiple of 320 KiB, under the 4 MB Graph asks for (3.75 MB).</summary>
    public int UploadSliceBytes { get; set; } = 12 * 320 * 1024;

    public bool IsConfigured => !string.IsNullOrWhiteSpace(ClientId) && !string.IsNullOrWhiteSpace(ClientSecret);

    public string Authority => Instance.TrimEnd('/') + "/" + Tenant.Trim('/') + "/";

    public string? LifecycleUrl => !string.IsNullOrWhiteSpace(LifecycleNotificationUrl) ? LifecycleNotificationUrl
        : string.IsNullOrWhiteSpace(NotificationUrl) ? null
        : NotificationUrl.EndsWith("/notifications", StringComparison.Ordinal) ? NotificationUrl[..^"/notifications".Length] + "/lifecycle"
        : null;
}
