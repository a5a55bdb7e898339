namespace EmailTracking.Server.Mailboxes.Gmail;

/// <summary>
/// Gmail API mailboxes: the OAuth client of the Google Cloud project, Google's endpoints (replaceable, for tests and
/// for proxies), and the Pub/Sub topic and push subscription that wake a watch when mail arrives.
/// </summary>
public sealed class GmailOptions
{
    public const string Section = "Mailboxes:Gmail";

    /// <summary>
    /// gmail.readonly reads messages (raw), searches them (messages.list q=), and is accepted by history.list and
    /// watch; gmail.send sends. gmail.modify would also allow trashing and relabelling mail, which the product never
    /// does, and gmail.metadata would break raw reads and search, so neither is asked for.
    /// </summary>
    public static readonly string[] Scopes =
    [
        "https://www.googleapis.com/auth/gmail.readonly",
        "https://www.googleapis.com/auth/gmail.send",
    ];

    public string? ClientId { get; set; }
    public string? ClientSecret { get; set; }

    public string AuthUri { get; set; } = "https://accounts.google.com/o/oauth2/v2/auth";
    public string TokenUri { get; set; } = "https://oauth2.googleapis.com/token";
    public string RevokeUri { get; set; } = "https://oauth2.googleapis.com/revoke";
    public string ApiBaseUri { get; set; } = GmailClient.DefaultBaseUri;

    /// <summary>
    /// A message larger than this (its MIME, before base64url) is sent through the media upload URI rather than as
    /// <c>raw</c> in a JSON body: Google's upload guide gives 5 MB as the size for the simple path.
    /// </summary>
    public int MaxSimpleSendBytes { get; set; } = 5 * 1024 * 1024;

    /// <summary>
    /// The callback Google redirects to, exactly as registered on the OAuth client; empty: built from the request
    /// (<c>{scheme}://{host}/mailboxes/gmail/callback</c>), which is only right when no proxy changes the host.
    /// </summary>
    public string? RedirectUri { get; set; }

    /// <summary><c>projects/{project}/topics/{topic}</c>; empty: no push, the watch only polls.</summary>
    public string? PubSubTopic { get; set; }

    /// <summary>The audience set on the push subscription's OIDC token (by default Pub/Sub uses the push URL).</summary>
    public string? PushAudience { get; set; }

    /// <summary>The service account the push subscription signs its tokens as; compared exactly.</summary>
    public string? PushServiceAccount { get; set; }

    /// <summary>Where the token signing keys are read (JWKS); empty: Google's (https://www.googleapis.com/oauth2/v3/certs).</summary>
    public string? PushCertsUrl { get; set; }

    /// <summary>How often a mailbox is read when no push arrives (push is a hint; Google may delay or drop it).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>users.watch is called again this often (Google asks for at least every 7 days and recommends daily).</summary>
    public TimeSpan WatchRenewal { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Rate limits (429) and server errors are retried this many times, waiting RetryDelay, then twice as long.</summary>
    public int Retries { get; set; } = 3;
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Page size of history.list and messages.list (Gmail allows up to 500).</summary>
    public int PageSize { get; set; } = 500;

    public bool IsConfigured => !string.IsNullOrWhiteSpace(ClientId) && !string.IsNullOrWhiteSpace(ClientSecret);
}
