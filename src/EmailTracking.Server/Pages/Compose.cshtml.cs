using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Content;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Messages;
using EmailTracking.Server.Tracking;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Pages;

/// <summary>
/// Writing and sending a tracked email from the web app (/compose): through one of the user's connected mailboxes, by
/// the same path as POST /api/messages/send (<see cref="MailSender"/>), so that the addresses are checked by the same
/// rules, the body's links become tracked links and answers are matched by our Message-ID. A refused form comes back
/// with every field as typed and each problem beside its field; a mailbox that could not send leaves the draft on the
/// page. The form carries the new message's id (<see cref="Key"/>): posted twice, it is one message, sent once.
/// </summary>
[ComposeBodyLimit]
public sealed class ComposeModel(AppDbContext db, MailboxService mailboxes, MailSender sender, IOptions<TrackingOptions> tracking,
    ContentLibrary library, TimeProvider clock, IOptions<MailboxOptions> mailboxOptions, StagedAttachments staged) : PageModel, IFieldErrors
{
    /// <summary>
    /// The files attached with "Attach files". A browser cannot be handed files back: when the form comes back (a
    /// refused field, "Insert link", a mailbox that could not send) the server keeps them (<see cref="StagedAttachments"/>)
    /// and the form names them by id (<see cref="Kept"/>), to go with the message when it is sent.
    /// </summary>
    [BindProperty] public List<IFormFile> Files { get; set; } = [];

    /// <summary>The ids of the files kept from an earlier post of this form.</summary>
    [BindProperty] public List<Guid> Kept { get; set; } = [];
    /// <summary>Kept files ticked "remove" (without script; with it, "Remove" takes them out of the form).</summary>
    [BindProperty] public List<Guid> RemoveKept { get; set; } = [];

    /// <summary>The files kept with the form as it comes back, in order.</summary>
    public List<StagedAttachment> KeptFiles { get; private set; } = [];
    /// <summary>The files posted that were not kept (refused, or over a limit): the page asks for them again.</summary>
    public List<(string Name, long Size)> NotKept { get; private set; } = [];
    /// <summary>Why <see cref="NotKept"/> were not kept, when it is not a problem with the files themselves.</summary>
    public string? NotKeptWhy { get; private set; }

    /// <summary>The new files of this post that may be kept if the form comes back (read, and not programs).</summary>
    List<(string Name, byte[] Content)> keepable = [];

    /// <summary>The most the attachments may weigh together (Mailboxes:MaxAttachmentBytes).</summary>
    public long MaxAttachmentBytes => mailboxOptions.Value.MaxAttachmentBytes;

    /// <summary>The most a post of the form may weigh: room for the attachments (the server's default is smaller), and
    /// more, so that too many is answered by name rather than cut off.</summary>
    public static long MaxBodyBytes(long maxAttachmentBytes) => maxAttachmentBytes * 2 + 16 * 1024 * 1024;

    /// <summary>Documents offered for a tracked link, newest first (as many as the Gmail compose card offers).</summary>
    public const int MaxDocuments = 50;

    /// <summary>The id the message gets: the form's idempotency key, made when the page is opened.</summary>
    [BindProperty] public Guid Key { get; set; }
    [BindProperty] public Guid? MailboxId { get; set; }
    [BindProperty] public string? To { get; set; }
    [BindProperty] public string? Cc { get; set; }
    [BindProperty] public string? Bcc { get; set; }
    [BindProperty] public string? Subject { get; set; }
    /// <summary>The editor's body.</summary>
    [BindProperty] public string? Html { get; set; }
    /// <summary>The body typed in plain text, where the editor did not run (no script).</summary>
    [BindProperty] public string? Text { get; set; }
    [BindProperty] public bool PerRecipient { get; set; } = true;
    /// <summary>The document whose tracked link "Insert link" adds.</summary>
    [BindProperty] public Guid? DocumentId { get; set; }

    /// <summary>The user's documents (an admin's: the team's), or none with <see cref="DocumentsRefused"/> saying why (the Solo plan).</summary>
    public List<(Guid Id, string Name, int Pages)> Documents { get; private set; } = [];
    public string? DocumentsRefused { get; private set; }
    public string? Notice { get; private set; }

    public List<MailboxSummary> Mailboxes { get; private set; } = [];
    /// <summary>The mailboxes that can send now.</summary>
    public List<MailboxSummary> Usable => [.. Mailboxes.Where(m => m.Status == MailboxStatus.Active)];

    /// <summary>Problems by field: mailbox, to, cc, bcc, subject, body, attachments, or "" for the whole form.</summary>
    public Dictionary<string, string[]> Errors { get; } = [];
    IReadOnlyDictionary<string, string[]> IFieldErrors.Errors => Errors;
    /// <summary>Why the mailbox could not send (nothing was sent), in the send's own words.</summary>
    public (string Title, string Detail)? Problem { get; private set; }

    public (string Field, string[] Messages) Field(string key) => (key.Length == 0 ? "form" : key, Errors.GetValueOrDefault(key) ?? []);

    public async Task OnGetAsync(CancellationToken ct)
    {
        await LoadAsync(ct);
        Key = Guid.NewGuid();
        MailboxId = Usable.FirstOrDefault()?.Id;
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        await LoadAsync(ct);
        if (Key == Guid.Empty) Key = Guid.NewGuid();

        // The same form again (a double click, Back and Send): the message it made is the answer, not a second one.
        if (await SentBeforeAsync(me, ct) is { } earlier) return earlier;

        var to = Entries(To);
        var cc = Entries(Cc);
        var bcc = Entries(Bcc);
        foreach (var (field, entries) in new[] { ("to", to), ("cc", cc), ("bcc", bcc) })
        {
            var bad = entries.Where(e => !MessagesApi.TryParseRecipient(e, out _, out _)).Take(20).Select(MessagesApi.RecipientProblem).ToArray();
            if (bad.Length > 0) Errors[field] = bad;
        }
        if (Errors.Count == 0 && to.Count + cc.Count + bcc.Count == 0) Errors["to"] = ["At least one recipient (To, Cc or Bcc) is required."];

        var fromEditor = !string.IsNullOrWhiteSpace(Html);
        var html = fromEditor ? ComposedHtml.Clean(Html!)
            : !string.IsNullOrWhiteSpace(Text) ? ComposedHtml.FromPlainText(Text) : "";
        // The editor's body is shown again as it goes, should the form come back; a plain-text body stays in its box.
        Html = fromEditor ? html : null;
        if (!ComposedHtml.HasContent(html)) Errors["body"] = ["The message is empty: write something to send."];

        if (MailboxId is null)
        {
            Errors["mailbox"] = [Usable.Count == 0
                ? "No connected mailbox can send: connect one under Mailboxes first."
                : "Choose the mailbox to send from."];
        }
        var attachments = await TakeFilesAsync(me, ct);
        if (Errors.Count > 0) return await KeepFilesAsync(me, ct);

        var request = new SendRequest(MailboxId, null, Subject ?? "", to, cc, bcc, html, Text: null, PerRecipient, MessageSource.Web, attachments);
        SendOutcome outcome;
        try
        {
            // Once sending has started it finishes, whatever the browser does: a second click makes the browser drop
            // the first request, and stopping halfway would leave some copies sent and the message removed.
            outcome = await sender.SendAsync(me, request, TrackingUrls.For(HttpContext, tracking.Value), CancellationToken.None, Key);
        }
        catch (DbUpdateException)
        {
            // The same form posted at the same moment: the other request registered the message and is sending it.
            db.ChangeTracker.Clear();
            if (await SentBeforeAsync(me, ct) is { } other) return other;
            throw;
        }

        if (outcome.Errors is { } errors)
        {
            foreach (var (key, messages) in errors)
            {
                var field = key switch
                {
                    "mailboxId" or "from" => "mailbox",
                    "recipients" => "to",
                    "html" => "body",
                    "subject" => "subject",
                    "attachments" => "attachments",
                    _ => "",
                };
                Errors[field] = [.. Errors.GetValueOrDefault(field) ?? [], .. messages];
            }
            return await KeepFilesAsync(me, ct);
        }
        if (outcome.Response is not { } sent)
        {
            Problem = (outcome.ProblemTitle ?? "The message could not be sent.", outcome.ProblemDetail ?? "");
            // The send may have found that the mailbox needs reconnecting: the list shows it so.
            await LoadAsync(ct);
            return await KeepFilesAsync(me, ct);
        }

        await staged.SentAsync(me.Id, Key, [.. KeptFiles.Select(k => k.Id)], ct);
        var notSent = sent.Copies.Where(c => !c.Sent).ToList();
        var count = sent.Copies.Where(c => c.Sent).Sum(c => c.Recipients.Count);
        TempData[MessageModel.NoticeKey] = notSent.Count == 0
            ? $"Sent to {Display.Plural(count, "recipient", "recipients")}."
            : string.Join(" ", new[] { count > 0 ? $"Sent to {Display.Plural(count, "recipient", "recipients")}." : "Nothing was sent." }
                .Concat(notSent.Select(c => $"Not sent to {string.Join(", ", c.Recipients)}: {c.Error}")));
        if (notSent.Count > 0) TempData[MessageModel.NoticeProblemKey] = true;
        return Redirect($"/messages/{sent.Id}");
    }

    /// <summary>
    /// The form's files: those kept from before (the user's own, not expired, less those ticked "remove") and those
    /// posted now, checked together as the send checks them (<see cref="Attachments.Check"/>: how many, how much in
    /// all, programs), each problem under "attachments". Files over a limit are not read.
    /// </summary>
    async Task<List<AttachmentRequest>> TakeFilesAsync(CurrentUser me, CancellationToken ct)
    {
        await staged.RemoveAsync(me.Id, RemoveKept, ct);
        var (kept, unknown) = await staged.FindAsync(me.Id, [.. Kept.Except(RemoveKept)], ct);
        KeptFiles = kept;
        var problems = new List<string>();
        if (unknown > 0)
        {
            problems.Add(unknown == 1
                ? "A file kept with this form is no longer kept (files are kept for an hour): attach it again."
                : $"{unknown} files kept with this form are no longer kept (files are kept for an hour): attach them again.");
        }
        var files = Files.Where(f => f.Length > 0 || f.FileName.Length > 0).ToList();
        // Named as the send names them: after the kept files.
        var names = files.Select((f, i) => Attachments.SafeName(f.FileName, kept.Count + i)).ToList();
        NotKept = [.. names.Select((n, i) => (n, files[i].Length))];
        var all = kept.Select(k => new AttachmentRequest(k.FileName, k.Content)).ToList();
        if (kept.Count + files.Count > Attachments.MaxFiles)
        {
            problems.Add($"At most {Attachments.MaxFiles} attachments ({kept.Count + files.Count} with those kept); attach fewer, or insert a tracked document link instead.");
        }
        else if (kept.Sum(k => k.Size) + files.Sum(f => f.Length) > MaxAttachmentBytes)
        {
            // Not read at all: the file that crosses the limit is named, as the send would name it.
            long total = 0;
            var sizes = kept.Select(k => (Name: k.FileName, k.Size)).Concat(names.Select((n, i) => (Name: n, Size: files[i].Length))).ToList();
            var over = sizes.First(f => (total += f.Size) > MaxAttachmentBytes);
            problems.Add($"{over.Name} takes the attachments past {Attachments.Size(MaxAttachmentBytes)} in all ({Attachments.Size(total)} with it); attach fewer or smaller files, or insert a tracked document link instead.");
        }
        else
        {
            var read = new List<(string Name, byte[] Content)>();
            for (var i = 0; i < files.Count; i++)
            {
                using var content = new MemoryStream((int)files[i].Length);
                await files[i].CopyToAsync(content, ct);
                read.Add((names[i], content.ToArray()));
            }
            all.AddRange(read.Select(r => new AttachmentRequest(r.Name, r.Content)));
            if (Attachments.Check(all, MaxAttachmentBytes).Errors is { } refused) problems.AddRange(refused);
            // Whatever else is wrong, a file that may go is kept; a program is not.
            keepable = [.. read.Where(r => Attachments.Sniff(r.Name, r.Content).Danger is null)];
            NotKept = [.. read.Where(r => !keepable.Contains(r)).Select(r => (r.Name, r.Content.LongLength))];
        }
        if (problems.Count > 0) Errors["attachments"] = [.. problems];
        return all;
    }

    /// <summary>The form comes back: its files are kept (<see cref="StagedAttachments.KeepAsync"/>) and shown as kept.</summary>
    async Task<IActionResult> KeepFilesAsync(CurrentUser me, CancellationToken ct)
    {
        if (await staged.KeepAsync(me.Id, Key, KeptFiles, keepable, MaxAttachmentBytes, ct) is { } kept) KeptFiles = kept;
        else
        {
            NotKept = [.. keepable.Select(k => (k.Name, k.Content.LongLength)), .. NotKept];
            NotKeptWhy = $"you have {Attachments.Size(MaxAttachmentBytes * StagedAttachments.MaxFormsKept)} of files kept with other messages already, as much as the server keeps for you at once.";
        }
        keepable = [];
        return Page();
    }

    /// <summary>The message this form made already, if it is the user's: its page. Another's id is not answered, and the form gets a new one.</summary>
    async Task<IActionResult?> SentBeforeAsync(CurrentUser me, CancellationToken ct)
    {
        var owner = await db.Messages.Where(m => m.Id == Key).Select(m => (Guid?)m.UserId).FirstOrDefaultAsync(ct);
        if (owner is null) return null;
        if (owner == me.Id) return Redirect($"/messages/{Key}");
        Key = Guid.NewGuid();
        return null;
    }

    /// <summary>
    /// "Insert link": a new share link of the chosen document where the editor's caret was (replacing the selection),
    /// or at the end of the body (no script, or the editor never focused), the draft kept as it is. Sent,
    /// each copy gets its own link to the document (as with the API), so every recipient's reading is theirs.
    /// </summary>
    public async Task<IActionResult> OnPostDocumentAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        await LoadAsync(ct);
        if (Key == Guid.Empty) Key = Guid.NewGuid();
        // The form comes back whatever happens: its files are kept.
        await TakeFilesAsync(me, ct);
        await KeepFilesAsync(me, ct);
        var fromEditor = !string.IsNullOrWhiteSpace(Html);
        var posted = Html;
        Html = fromEditor ? ComposedHtml.Clean(Html!) : null;
        if (DocumentsRefused is not null) { Errors["document"] = [DocumentsRefused]; return Page(); }
        // The library as the Documents page shows it: a member's own documents, an admin's the team's.
        var item = DocumentId is { } id
            ? await ContentStats.Visible(db, me).FirstOrDefaultAsync(c => c.Id == id && c.DeletedAt == null, ct)
            : null;
        if (item is null) { Errors["document"] = [DocumentId is null ? "Choose a document first." : "No such document."]; return Page(); }

        var link = await ContentLinks.CreateShareAsync(db, item, me.Id, clock.GetUtcNow(), ct);
        var url = ContentLinks.Url(TrackingUrls.For(HttpContext, tracking.Value), link.Token);
        // Where the editor's caret was (the selection replaced); never in the editor, or without it, at the end.
        if (fromEditor && ComposedHtml.CleanInserting(posted!, ContentLinks.Html(url, item)) is { } inserted)
        {
            Html = inserted;
            Notice = $"A tracked link to {item.Name} is in the message, where the cursor was.";
            return Page();
        }
        if (fromEditor) Html += "<p>" + ContentLinks.Html(url, item) + "</p>";
        else Text = string.Join("\n\n", new[] { Text?.TrimEnd(), $"{item.Name}: {url}" }.Where(t => !string.IsNullOrEmpty(t)));
        Notice = $"A tracked link to {item.Name} is at the end of the message.";
        return Page();
    }

    async Task LoadAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        Mailboxes = await mailboxes.ListAsync(me, ct);
        if (await library.CheckPlanAsync(me, ct) is not null)
        {
            DocumentsRefused = "Tracked documents come with the Team plan: your team is on the Solo plan. An administrator can move it to the Team plan.";
            return;
        }
        // A member's own documents, an admin's the team's (ContentStats.Visible), as the Documents page, the add-ins and
        // the insert below: a colleague's document is neither named here nor linked.
        Documents = [.. (await ContentStats.Visible(db, me).AsNoTracking().Where(c => c.DeletedAt == null)
                .OrderByDescending(c => c.CreatedAt).Take(MaxDocuments).Select(c => new { c.Id, c.Name, c.PageCount }).ToListAsync(ct))
            .Select(c => (c.Id, c.Name, c.PageCount))];
    }

    /// <summary>
    /// The addresses of one field, as typed: separated by commas, semicolons or line breaks, except inside a quoted name
    /// ("Bradley, Alan" &lt;alan@encom.test&gt;) or angle brackets. Each is then checked as the API checks one entry.
    /// </summary>
    public static List<string> Entries(string? text)
    {
        var entries = new List<string>();
        if (string.IsNullOrWhiteSpace(text)) return entries;
        var current = new System.Text.StringBuilder();
        void Flush()
        {
            var entry = current.ToString().Trim();
            if (entry.Length > 0) entries.Add(entry);
            current.Clear();
        }
        var quoted = false;
        var angle = false;
        for (var i = 0; i < text.Length; i++)
        {
            var ch = text[i];
            if (quoted)
            {
                if (ch == '\\' && i + 1 < text.Length) { current.Append(ch).Append(text[++i]); continue; }
                if (ch == '"') quoted = false;
            }
            else if (ch == '"') quoted = true;
            else if (ch == '<') angle = true;
            else if (ch == '>') angle = false;
            else if (!angle && ch is ',' or ';' or '\n' or '\r') { Flush(); continue; }
            current.Append(ch);
        }
        Flush();
        return entries;
    }
}

/// <summary>
/// The Compose post's limits (<see cref="PostBodyLimitAttribute"/>), set before antiforgery reads the form. Both follow
/// Mailboxes:MaxAttachmentBytes (<see cref="ComposeModel.MaxBodyBytes"/>); a post over them is answered 413 at once,
/// and the error page (<see cref="ErrorModel"/>) explains the limit for Compose.
/// </summary>
public sealed class ComposeBodyLimitAttribute : PostBodyLimitAttribute
{
    protected override long? MaxBodyBytes(HttpContext http) => ComposeModel.MaxBodyBytes(MaxAttachmentBytes(http));

    protected override PostTooLarge TooLarge(HttpContext http) => new("compose", "The form is too large", "The message was too large to send",
        ComposeTooLarge.Detail(MaxAttachmentBytes(http)),
        "A form this large is not read at all, so your recipients, subject, message and files were not kept. Your browser's Back " +
        "button may still show what you typed (not the files): go back to copy it, then attach fewer or smaller files, or insert a " +
        "tracked document link instead.",
        "/compose", "Back to New message");

    static long MaxAttachmentBytes(HttpContext http) => http.RequestServices.GetRequiredService<IOptions<MailboxOptions>>().Value.MaxAttachmentBytes;
}

/// <summary>What a Compose post over its limit is told, on the error page and in the problem.</summary>
public static class ComposeTooLarge
{
    public static string Detail(long maxAttachmentBytes) =>
        $"Nothing was sent. Attachments may weigh up to {Attachments.Size(maxAttachmentBytes)} in all, and the whole form up to " +
        $"{Attachments.Size(ComposeModel.MaxBodyBytes(maxAttachmentBytes))}.";
}
