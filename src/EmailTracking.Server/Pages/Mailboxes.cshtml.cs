using EmailTracking.Server.Accounts;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Mailboxes.Gmail;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

public sealed class MailboxesModel(MailboxService mailboxes, Microsoft.Extensions.Options.IOptions<GmailOptions> gmail, GraphConnector microsoft) : PageModel
{
    public sealed class ConnectForm
    {
        public string? Address { get; set; }
        public string? Username { get; set; }
        public string? Password { get; set; }
        public string? ImapHost { get; set; }
        public int ImapPort { get; set; } = 993;
        public MailSecurity ImapSecurity { get; set; } = MailSecurity.Tls;
        public string? SmtpHost { get; set; }
        public int SmtpPort { get; set; } = 587;
        public MailSecurity SmtpSecurity { get; set; } = MailSecurity.StartTls;
    }

    public List<MailboxSummary> Mailboxes { get; private set; } = [];
    [BindProperty] public ConnectForm Form { get; set; } = new();
    [TempData] public string? Connected { get; set; }

    /// <summary>How the last Gmail consent ended (set by the OAuth callback's redirect).</summary>
    [BindProperty(SupportsGet = true, Name = "gmail")] public string? GmailOutcome { get; set; }

    public bool GmailConfigured => gmail.Value.IsConfigured;

    /// <summary>Fixed words per outcome: nothing from the query string is shown as it is.</summary>
    public (string Text, bool Problem)? GmailNotice => GmailOutcome switch
    {
        "connected" => ("Gmail is connected.", false),
        "denied" => ("Gmail was not connected: the permission was not given on Google's page.", true),
        "scopes" => ("Gmail was not connected: both permissions (read and send mail) are needed. Connect again and leave them ticked.", true),
        "not-yours" => ("Gmail was not connected: the Google account's address is not one of your addresses. Add it under Your addresses (/addresses) first, or choose another account.", true),
        "bad-state" => ("Gmail was not connected: the answer from Google did not belong to this sign-in (expired or from another browser). Try again.", true),
        "not-configured" => ("Gmail is not configured on this server.", true),
        "failed" => ("Gmail could not be connected: Google did not complete the sign-in. Try again.", true),
        _ => null,
    };

    // Microsoft 365: the connect button, or why there is none; what went wrong at the last sign-in.
    public bool MicrosoftConfigured => microsoft.IsConfigured;
    [TempData(Key = GraphApi.ProblemKey)] public string? MicrosoftProblem { get; set; }

    public static string Words(MailSecurity s) => s switch
    {
        MailSecurity.Tls => "TLS (993 / 465)",
        MailSecurity.StartTls => "STARTTLS (143 / 587)",
        _ => "none (same machine only)",
    };

    /// <summary>The latest messages each mailbox could not read or handle (only for mailboxes that have some).</summary>
    public Dictionary<Guid, List<UnreadableSummary>> Unreadable { get; } = [];

    /// <summary>How many of them the page lists per mailbox; the API gives more.</summary>
    public const int UnreadableShown = 20;

    public Task OnGetAsync(CancellationToken ct) => LoadAsync(CurrentUser.Required(User), ct);

    /// <summary>
    /// The mailboxes and what each could not read: all a refused connect form comes back with too (it came back without
    /// the messages that could not be read).
    /// </summary>
    async Task LoadAsync(CurrentUser me, CancellationToken ct)
    {
        Mailboxes = await mailboxes.ListAsync(me, ct);
        foreach (var m in Mailboxes.Where(m => m.Unreadable > 0))
        {
            if (await mailboxes.UnreadableAsync(me, m.Id, UnreadableShown, ct) is { } rows) Unreadable[m.Id] = rows;
        }
    }

    public async Task<IActionResult> OnPostConnectAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        var f = Form;
        var result = await mailboxes.ConnectImapAsync(me, new ConnectImapRequest(f.Address, f.Username, f.Password,
            new ServerRequest(f.ImapHost, f.ImapPort, f.ImapSecurity), new ServerRequest(f.SmtpHost, f.SmtpPort, f.SmtpSecurity)), ct);
        if (result.Connection is { } c)
        {
            Connected = c.Address;
            return RedirectToPage();
        }
        foreach (var (field, messages) in result.Errors ?? [])
        {
            foreach (var m in messages) ModelState.AddModelError(field, m);
        }
        if (result.ServerProblem is { } problem) ModelState.AddModelError("", "The mailbox could not be connected: " + problem);
        await LoadAsync(me, ct);
        return Page();
    }

    /// <summary>"Looked at": clears the notes up to the newest the page showed, not ones noted since.</summary>
    public async Task<IActionResult> OnPostClearUnreadableAsync(Guid id, long upTo, CancellationToken ct)
    {
        await mailboxes.ClearUnreadableAsync(CurrentUser.Required(User), id, upTo, ct);
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostRemoveAsync(Guid id, CancellationToken ct)
    {
        await mailboxes.RemoveAsync(CurrentUser.Required(User), id, ct);
        return RedirectToPage();
    }
}
