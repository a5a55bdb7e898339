using EmailTracking.Server.Accounts;
using EmailTracking.Server.Mailboxes;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

public sealed class MailboxesModel(MailboxService mailboxes, GraphConnector microsoft) : PageModel
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

    // Microsoft 365: the connect button, or why there is none; what went wrong at the last sign-in.
    public bool MicrosoftConfigured => microsoft.IsConfigured;
    [TempData(Key = GraphApi.ProblemKey)] public string? MicrosoftProblem { get; set; }

    public static string Words(MailSecurity s) => s switch
    {
        MailSecurity.Tls => "TLS (993 / 465)",
        MailSecurity.StartTls => "STARTTLS (143 / 587)",
        _ => "none (same machine only)",
    };

    public async Task OnGetAsync(CancellationToken ct) => Mailboxes = await mailboxes.ListAsync(CurrentUser.Required(User), ct);

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
        Mailboxes = await mailboxes.ListAsync(me, ct);
        return Page();
    }

    public async Task<IActionResult> OnPostRemoveAsync(Guid id, CancellationToken ct)
    {
        await mailboxes.RemoveAsync(CurrentUser.Required(User), id, ct);
        return RedirectToPage();
    }
}
