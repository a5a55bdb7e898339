using System.Text;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Content;
using EmailTracking.Server.Feed;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Tracking;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Messages;

public static class MessagesApi
{
    public sealed record RegisterRequest(
        string? From, string? Subject, List<string>? To, List<string>? Cc, List<string>? Bcc, string? Html,
        bool PerRecipient = true, DateTimeOffset? SentAt = null, MessageSource Source = MessageSource.Api);

    /// <param name="Token">The copy's pixel token: what the add-ins put in the x-et-token header.</param>
    public sealed record CopyResponse(Guid Id, List<string> Recipients, string MessageId, string Html, string PixelUrl, List<LinkResponse> Links, string Token);
    public sealed record LinkResponse(int Ordinal, string Url, string TrackedUrl);
    public sealed record RegisterResponse(Guid Id, bool PerRecipient, List<CopyResponse> Copies);
    public sealed record SentRequest(DateTimeOffset? SentAt);
    /// <param name="HiddenMachineEvents">Machines' opens, clicks and document events left out of <paramref name="Events"/> (machines=true shows them).</param>
    /// <param name="HiddenOwnViews">The sender's own opens, clicks and document events (verdict self) left out of
    /// <paramref name="Events"/>, not among <paramref name="HiddenMachineEvents"/> (machines=true shows them too).</param>
    public sealed record MessageDetail(MessageSummary Message, List<ActivityItem> Events, int HiddenMachineEvents, int HiddenOwnViews);

    /// <summary>What the counts of the list and of one message mean, for the API's reference.</summary>
    const string CountsDescription =
        "`counts.opens` and `counts.clicks` are people's. `machineOpens`, `machineClicks`, `machineDocumentEvents` and their sum " +
        "`machineEvents` are machines' (image proxies' prefetches, scanners, bots). The sender's own views (verdict `self`: a device " +
        "they signed in with, their Gmail view of the sent mail) are neither: `selfOpens`, `selfClicks`, `selfDocumentEvents` and " +
        "their sum `ownViews`.";

    public static void MapMessages(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/messages").RequireAuthorization(Auth.ApiPolicy).WithTags("Messages");
        g.MapPost("/", Register)
            .WithSummary("Register an email before it is sent; answers the tracked HTML and our Message-ID for each copy")
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(16 * 1024 * 1024), new AcceptsIdempotencyKey())
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        // Room for the attachments in base64 (4 bytes for every 3) besides the body and the rest of the request.
        var maxAttachments = app.ServiceProvider.GetRequiredService<IOptions<MailboxOptions>>().Value.MaxAttachmentBytes;
        g.MapPost("/send", Send)
            .WithSummary("Register and send an email through a connected mailbox: each copy leaves with our Message-ID, so answers are matched")
            .WithDescription("Attachments go in the JSON request as `attachments`: `[{ \"fileName\": \"q3.pdf\", \"content\": \"<base64>\" }]`, " +
                $"at most {Attachments.Size(maxAttachments)} together (Mailboxes:MaxAttachmentBytes) and {Attachments.MaxFiles} files. " +
                "The name loses any path and control characters; the type is told from the content (a `contentType` given is ignored); " +
                "programs and scripts (.exe, .js, .bat, .scr…, also inside a zip or under another name) are refused as Gmail and Outlook refuse them. " +
                "A refused file is a 400 whose `errors.attachments` names the file and the reason; nothing is registered or sent then. " +
                "Every copy (perRecipient) carries every file.")
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(maxAttachments / 3 * 4 + 16 * 1024 * 1024), new AcceptsIdempotencyKey())
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        g.MapGet("/", List).WithSummary("Tracked messages with per-recipient opens and clicks (humans; machines and the sender's own views counted apart)")
            .WithDescription("Newest registered first, `take` at a time (50 unless told, at most 200). For the next page give the last message's " +
                "`createdAt` as `before` and its `id` as `beforeId`: messages registered at the same instant are then neither skipped nor " +
                "shown twice (with `before` alone, those registered at that very instant are left out). " + CountsDescription);
        g.MapGet("/{id:guid}", Get).WithSummary("One message: recipients, counts and its timeline (machines=true shows machine events and the sender's own views)")
            .WithDescription(CountsDescription + " `hiddenMachineEvents` and `hiddenOwnViews` count the machines' and the sender's own " +
                "events the timeline leaves out without machines=true. " +
                "A recipient whose copy was not sent (the send through a mailbox was refused for that copy) has `notSent`: " +
                "`reason` (the mail server's or the transport's words) and `at` (when the send gave up on it); `message.notSentCount` counts them. " +
                "Such a recipient never got the mail: no open is to be expected from them.");
        g.MapPost("/{id:guid}/resend", Resend)
            .WithSummary("Send again, through the mailbox the send went through, only the copies of the message that were not sent")
            .WithDescription("For the message's owner. Each copy goes with its own Message-ID and pixel (its links made again); the answer lists " +
                "those copies as the send answers its copies, each `sent` or with its `error`. What sending them again needs (the body, plain " +
                "text and files) is kept only while some copy is not sent, for Mailboxes:KeepUnsentFor (7 days) after the send. Nothing is sent, " +
                "and the answer says why, when no copy failed (409), when another request is sending them (409), when the content is no longer " +
                "kept (410), when the mailbox was removed (400) or needs to be reconnected (409), or when the mailbox sends nothing (502).")
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status410Gone).ProducesProblem(StatusCodes.Status502BadGateway);
        g.MapPost("/{id:guid}/sent", MarkSent).WithSummary("Record when the message actually left; timing rules measure from it");
    }

    static async Task<Results<Created<RegisterResponse>, ValidationProblem, ProblemHttpResult, ContentHttpResult>> Register(
        RegisterRequest request, HttpContext http, AppDbContext db, IdempotencyKeys keys, IOptions<TrackingOptions> options, TimeProvider clock,
        CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var urls = TrackingUrls.For(http, options.Value);
        var (key, keyProblem) = IdempotencyKeys.Read(http.Request);
        if (keyProblem is not null) return keyProblem;
        if (key is null)
        {
            var (response, errors) = await RegisterAsync(request, me, db, options.Value, urls, clock, ct);
            return response is null
                ? TypedResults.ValidationProblem(errors!)
                : TypedResults.Created($"/api/messages/{response.Id}", response);
        }

        var start = await keys.BeginAsync(me, key, keys.Hash("POST /api/messages", request), ct);
        start.SetHeaders(http.Response);
        if (start.Claim is not { } claim) return start.Replay is { } replay ? replay : start.Problem!;
        // The message and its answer are stored together: made without its answer, only by a transaction this
        // server did not write. Nothing to finish, nothing to make again.
        if (start.Stopped) return await keys.StoppedAsync(claim, start.SentAt, null);
        try
        {
            // The message and its stored answer in one transaction: a retry finds both or neither.
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var (response, errors) = await RegisterAsync(request, me, db, options.Value, urls, clock, ct, claim.MessageId);
            if (response is null)
            {
                await tx.RollbackAsync(CancellationToken.None);
                await keys.ReleaseAsync(claim);
                return TypedResults.ValidationProblem(errors!);
            }
            await keys.CompleteAsync(claim, StatusCodes.Status201Created, response, ct);
            await tx.CommitAsync(ct);
            return TypedResults.Created($"/api/messages/{response.Id}", response);
        }
        catch
        {
            // Rolled back: nothing was registered, so the key is free again.
            db.ChangeTracker.Clear();
            await keys.ReleaseAsync(claim);
            throw;
        }
    }

    /// <summary>
    /// Validates and stores a tracked message; answers its tracked copies, or the validation errors by field. The id is
    /// new unless the caller chose it (the Gmail compose card names it before either of its buttons registers it).
    /// </summary>
    public static async Task<(RegisterResponse? Response, Dictionary<string, string[]>? Errors)> RegisterAsync(
        RegisterRequest request, CurrentUser me, AppDbContext db, TrackingOptions o, TrackingUrls urls, TimeProvider clock, CancellationToken ct,
        Guid? id = null)
    {
        var errors = new Dictionary<string, string[]>();
        var from = AccountService.NormalizeAddress(request.From);
        if (from is null) errors["from"] = ["The sender's address is required and must be an email address."];
        // In either form its domain may be stored in (AccountService.StoredForms): an alias added as me@例え.jp sends as
        // me@xn--r8jz45g.jp too.
        else if (AccountService.StoredForms(from) is var forms && !await db.UserAddresses.AnyAsync(a => a.UserId == me.Id && forms.Contains(a.Address), ct))
            errors["from"] = [$"{from} is not one of your addresses. Add it under Your addresses (/addresses, or POST /api/me/addresses) first."];

        if (request.Subject is null) errors["subject"] = ["A subject is required (it may be empty)."];
        else if (request.Subject.Length > MaxSubjectLength) errors["subject"] = [$"The subject is longer than {MaxSubjectLength} characters."];

        if (string.IsNullOrWhiteSpace(request.Html)) errors["html"] = ["The HTML body is required."];
        else if (Encoding.UTF8.GetByteCount(request.Html) > o.MaxHtmlBytes) errors["html"] = [$"The HTML body is larger than {o.MaxHtmlBytes} bytes."];

        var recipients = new List<Recipient>();
        var seen = new Dictionary<string, Recipient>();
        var bad = new List<string>();
        foreach (var (list, role) in new[] { (request.To, RecipientRole.To), (request.Cc, RecipientRole.Cc), (request.Bcc, RecipientRole.Bcc) })
        {
            foreach (var text in list ?? [])
            {
                if (!TryParseRecipient(text, out var address, out var name)) { bad.Add(text ?? "(null)"); continue; }
                // One mailbox once, however its domain was written (punycode or Unicode): kept as first written, in the
                // first (most visible) field that names it, with the first name any of its entries gives.
                var key = AccountService.AddressKey(address);
                if (seen.TryGetValue(key, out var earlier)) earlier.Name ??= name;
                else recipients.Add(seen[key] = new Recipient { Address = address, Name = name, Role = role });
            }
        }
        if (bad.Count > 0)
        {
            errors["recipients"] = [.. bad.Take(20).Select(RecipientProblem)];
        }
        else if (recipients.Count == 0) errors["recipients"] = ["At least one recipient (to, cc or bcc) is required."];
        else if (recipients.Count > o.MaxRecipients) errors["recipients"] = [$"At most {o.MaxRecipients} recipients."];
        if (!Enum.IsDefined(request.Source)) errors["source"] = ["Unknown source."];

        if (errors.Count > 0) return (null, errors);

        var body = TrackedHtml.TryParse(request.Html!, out var htmlError);
        if (body is null) return (null, new Dictionary<string, string[]> { ["html"] = [htmlError!] });
        var copies = request.PerRecipient ? recipients.Count : 1;
        if ((long)Encoding.UTF8.GetByteCount(request.Html!) * copies > o.MaxTrackedOutputBytes)
        {
            return (null, new Dictionary<string, string[]>
            {
                ["html"] = [$"{copies} copies of this body would exceed {o.MaxTrackedOutputBytes} bytes. Send one shared copy (perRecipient: false) or fewer recipients."],
            });
        }
        // Each copy tracks its links and one honeypot.
        var linksPerCopy = body.TrackedLinkCount + 1;
        if ((long)linksPerCopy * copies > o.MaxTrackedLinks)
        {
            return (null, new Dictionary<string, string[]>
            {
                ["html"] = [$"{copies} copies × {linksPerCopy} tracked links (the hidden honeypot included) would be {(long)linksPerCopy * copies} links; " +
                            $"at most {o.MaxTrackedLinks} per registration. Register the recipients in smaller groups, send one shared copy (perRecipient: false), " +
                            "or mark links that need no tracking with data-et-notrack."],
            });
        }

        // The moment Send was pressed, by the sender's clock, cannot be later than this request: a clock that runs ahead
        // would make every click until then "clicked before the recorded send time", a scanner's.
        var now = clock.GetUtcNow();
        var message = new TrackedMessage
        {
            Id = id ?? Guid.NewGuid(),
            TeamId = me.TeamId,
            UserId = me.Id,
            Source = request.Source,
            FromAddress = from!,
            Subject = HeaderText(request.Subject!),
            PerRecipient = request.PerRecipient,
            CreatedAt = now,
            SentAt = request.SentAt is { } sentAt ? (sentAt < now ? sentAt : now).ToUniversalTime() : null,
        };
        var shares = await ContentLinks.FindSharesAsync(db, me, body.Hrefs(), urls, ct);
        var documentLinks = new List<ContentLink>();
        var groups = request.PerRecipient ? recipients.Select(r => new List<Recipient> { r }).ToList() : [recipients];
        var responses = new List<CopyResponse>();
        foreach (var group in groups)
        {
            var copy = new MessageCopy
            {
                TrackedMessageId = message.Id,
                UserId = message.UserId,
                TeamId = message.TeamId,
                MessageIdHeader = OurMessageIds.New(urls.MessageIdDomain),
                PixelToken = Tokens.NewTrackingToken(),
                RecipientId = request.PerRecipient ? group[0].Id : null,
            };
            var tracked = body.Build(copy.Id, urls.Click, urls.Pixel(copy.PixelToken),
                ContentLinks.ForCopy(shares, message, copy, urls, documentLinks));
            copy.Links = tracked.Links;
            foreach (var r in group) r.CopyId = copy.Id;
            message.Copies.Add(copy);
            responses.Add(new CopyResponse(copy.Id, [.. group.Select(r => r.Address)], $"<{copy.MessageIdHeader}>", tracked.Html,
                urls.Pixel(copy.PixelToken),
                [.. tracked.Links.Where(l => !l.IsHoneypot).Select(l => new LinkResponse(l.Ordinal, l.Url, urls.Click(l.Token)))], copy.PixelToken));
        }
        message.Recipients = recipients;
        db.Messages.Add(message);
        db.ContentLinks.AddRange(documentLinks);
        await db.SaveChangesAsync(ct);
        return (new RegisterResponse(message.Id, message.PerRecipient, responses), null);
    }

    static async Task<Results<Created<SendResponse>, ValidationProblem, ProblemHttpResult, ContentHttpResult>> Send(
        SendRequest request, HttpContext http, AppDbContext db, MailSender sender, IdempotencyKeys keys, IOptions<TrackingOptions> options,
        CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var urls = TrackingUrls.For(http, options.Value);
        var (key, keyProblem) = IdempotencyKeys.Read(http.Request);
        if (keyProblem is not null) return keyProblem;
        if (key is null) return Answer(await sender.SendAsync(me, request, urls, ct));

        var start = await keys.BeginAsync(me, key, keys.Hash("POST /api/messages/send", request), ct);
        start.SetHeaders(http.Response);
        if (start.Claim is not { } claim) return start.Replay is { } replay ? replay : start.Problem!;
        SendOutcome outcome;
        try
        {
            // The message gets the claim's id, as the Compose page's gets its form's: should this request stop halfway,
            // a retry finds the message and finishes it: the copies in the Sent folder are recorded, the others sent.
            // Once sending has started it finishes, whatever the client does (as on the Compose page): a client that
            // gave up and retries gets this send's answer.
            outcome = start.Stopped
                ? await sender.ResumeAsync(me, request, urls, claim.MessageId, CancellationToken.None)
                : await sender.SendAsync(me, request, urls, CancellationToken.None, claim.MessageId);
        }
        catch
        {
            // Unanswered: a retry is told at once what exists (a message made may have left: never sent again).
            db.ChangeTracker.Clear();
            await keys.StopAsync(claim);
            throw;
        }
        if (start.Stopped && outcome is { Response: null, ProblemStatus: StatusCodes.Status409Conflict })
        {
            // Which copies left cannot be told: none is sent, and the key waits for a retry that can look.
            return await keys.StoppedAsync(claim, start.SentAt, outcome.ProblemDetail);
        }
        if (outcome.Response is { } sent)
        {
            await keys.CompleteAsync(claim, StatusCodes.Status201Created, sent, CancellationToken.None);
            if (start.Stopped) http.Response.Headers[IdempotencyKeys.CompletedOnRetryHeader] = "true";
        }
        // Refused (the request, or the mailbox before anything left: MailSender removes a registration it could not
        // send): the key is free for the corrected request.
        else await keys.ReleaseAsync(claim);
        return Answer(outcome);
    }

    static async Task<Results<Ok<SendResponse>, ValidationProblem, ProblemHttpResult, NotFound>> Resend(Guid id, HttpContext http, MailSender sender,
        IOptions<TrackingOptions> options)
    {
        // Once sending has started it finishes, whatever the client does, as the send does.
        var outcome = await sender.ResendAsync(CurrentUser.Required(http.User), id, TrackingUrls.For(http, options.Value), CancellationToken.None);
        if (outcome.Errors is { } errors) return TypedResults.ValidationProblem(errors);
        if (outcome.Response is { } sent) return TypedResults.Ok(sent);
        if (outcome.ProblemStatus == StatusCodes.Status404NotFound) return TypedResults.NotFound();
        return TypedResults.Problem(statusCode: outcome.ProblemStatus, title: outcome.ProblemTitle, detail: outcome.ProblemDetail);
    }

    static Results<Created<SendResponse>, ValidationProblem, ProblemHttpResult, ContentHttpResult> Answer(SendOutcome outcome)
    {
        if (outcome.Errors is { } errors) return TypedResults.ValidationProblem(errors);
        if (outcome.Response is { } sent) return TypedResults.Created($"/api/messages/{sent.Id}", sent);
        return TypedResults.Problem(statusCode: outcome.ProblemStatus, title: outcome.ProblemTitle, detail: outcome.ProblemDetail);
    }

    /// <summary>The API's list order and pages: newest registered first, then by id.</summary>
    static readonly ListOrder<TrackedMessage> ApiOrder = new(m => m.CreatedAt, m => m.Id);

    /// <param name="take">How many (50 unless told): 1 or more, at most 200 answered.</param>
    /// <param name="before">The registration time of the last message of the page before (its createdAt).</param>
    /// <param name="beforeId">That message's id: with it, messages registered at the same instant as it are neither skipped nor repeated.</param>
    static async Task<Results<Ok<List<MessageSummary>>, ValidationProblem>> List(HttpContext http, AppDbContext db, int? take, DateTimeOffset? before,
        Guid? beforeId, CancellationToken ct)
    {
        // Fewer than one is a mistake, not a page: take=0 answered one message, as if asked for it. More than the most a
        // page holds is answered with the most, as the other lists do.
        if (take < 1) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["take"] = ["take is how many messages to answer: at least 1 (at most 200 are answered)."] });
        if (beforeId is not null && before is null)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["beforeId"] = ["beforeId goes with before: give the last message's createdAt as before and its id as beforeId."],
            });
        }
        var me = CurrentUser.Required(http.User);
        var q = MessageStats.Visible(db, me);
        if (before is { } b)
        {
            // Two messages can be registered at the same instant (the database keeps time to the microsecond, SQLite to
            // a tenth of a millisecond): "older than this time" alone left out those that shared the last one's time but
            // did not fit on its page. The id places the page's last message among them, in the order the page has.
            var utc = b.ToUniversalTime();
            q = beforeId is { } id ? ApiOrder.OlderThan(q, new ListCursor(utc, id)) : q.Where(m => m.CreatedAt < utc);
        }
        var n = Math.Min(take ?? 50, 200);
        // In the order the pages go (newest registered first, ?before= a registration time), not by send time as the
        // web list shows them: a client walking the pages then sees one order from the first to the last.
        var page = ApiOrder.Newest(q).Take(n);
        return TypedResults.Ok(await MessageStats.SummarizeAsync(db, page, ct));
    }

    static async Task<Results<Ok<MessageDetail>, NotFound>> Get(Guid id, HttpContext http, AppDbContext db, bool? machines, CancellationToken ct)
    {
        var detail = await LoadDetailAsync(db, CurrentUser.Required(http.User), id, machines == true, ct);
        return detail is null ? TypedResults.NotFound() : TypedResults.Ok(detail);
    }

    /// <summary>The message with its timeline; null when it does not exist or is not the user's to see.</summary>
    /// <param name="upToEventId">Show only events up to this id (a page whose live feed continues after it).</param>
    public static async Task<MessageDetail?> LoadDetailAsync(AppDbContext db, CurrentUser me, Guid id, bool machines, CancellationToken ct,
        long? upToEventId = null)
    {
        var summary = (await MessageStats.SummarizeAsync(db, MessageStats.Visible(db, me).Where(m => m.Id == id), ct, upToEventId)).FirstOrDefault();
        if (summary is null) return null;
        var events = db.Events.Where(e => e.TrackedMessageId == id);
        if (upToEventId is { } max) events = events.Where(e => e.Id <= max);
        // Machines' events and the sender's own are hidden alike, and counted apart: the sender's own view is no machine.
        var hiddenEvents = events.Where(ActivityItem.HiddenByDefaultFilter);
        var hidden = machines ? 0 : await hiddenEvents.CountAsync(e => e.Verdict != Verdict.Self, ct);
        var hiddenOwn = machines ? 0 : await hiddenEvents.CountAsync(e => e.Verdict == Verdict.Self, ct);
        if (!machines) events = events.Where(ActivityItem.ShownByDefaultFilter);
        var items = await ActivityQuery.Project(db, events).OrderByDescending(i => i.Id).Take(1000).AsNoTracking().ToListAsync(ct);
        return new MessageDetail(summary, items, hidden, hiddenOwn);
    }

    /// <summary>
    /// How far the time given to <c>POST /api/messages/{id}/sent</c> may lie outside what can be, before the message
    /// was registered or after now, and still be taken as a clock differing from the server's: 5 minutes. Beyond it the
    /// time is a mistake (a default of 0001-01-01, a time zone applied twice) and is refused: a send time before the
    /// registration put every click in the past of the scanner window ("clicked within seconds of sending"), and the
    /// message out of its place among the others.
    /// </summary>
    public static readonly TimeSpan SentAtClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>The longest subject a registration takes.</summary>
    public const int MaxSubjectLength = 1000;

    static async Task<Results<NoContent, NotFound, ValidationProblem>> MarkSent(Guid id, SentRequest request, HttpContext http, AppDbContext db,
        TrackingTargets targets, TimeProvider clock, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var message = await MessageStats.Visible(db, me).Include(m => m.Copies).ThenInclude(c => c.Links).FirstOrDefaultAsync(m => m.Id == id, ct);
        if (message is null) return TypedResults.NotFound();
        var now = clock.GetUtcNow();
        var skew = $"{SentAtClockSkew.TotalMinutes:0} minutes";
        if (request.SentAt is { } early && early < message.CreatedAt - SentAtClockSkew)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["sentAt"] = [$"{early.ToUniversalTime():O} is before the message was registered ({message.CreatedAt.ToUniversalTime():O}): it leaves after that. " +
                              $"A time up to {skew} earlier is taken, for a clock behind this server's."],
            });
        }
        if (request.SentAt is { } late && late > now + SentAtClockSkew)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["sentAt"] = [$"{late.ToUniversalTime():O} is in the future by this server's clock ({now.ToUniversalTime():O}). " +
                              $"A time up to {skew} ahead is taken as now, for a clock ahead of this server's."],
            });
        }
        // When it left is past by the time it is said; a later time is the caller's clock running ahead (see RegisterAsync).
        message.SentAt = (request.SentAt is { } sentAt && sentAt < now ? sentAt : now).ToUniversalTime();
        await db.SaveChangesAsync(ct);
        await targets.MessageChangedAsync(message.Id, ct);
        return TypedResults.NoContent();
    }

    static string Truncate(string s, int n) => TextClip.Shorten(s, n + 1);

    /// <summary>The longest name a recipient keeps (its column's length).</summary>
    public const int MaxRecipientNameLength = 200;

    /// <summary>
    /// One recipient entry, as <see cref="AccountService.TryParseAddress"/> reads it, with a name a recipient can keep: an
    /// entry of up to 400 characters could hold a longer one, which PostgreSQL refused at the insert (a 500).
    /// </summary>
    public static bool TryParseRecipient(string? text, out string address, out string? name) =>
        AccountService.TryParseAddress(text, out address, out name) && name is not { Length: > MaxRecipientNameLength };

    /// <summary>Why one recipient entry is not taken (the Compose page says it under the field that has it).</summary>
    public static string RecipientProblem(string entry) => AccountService.IsSeveralAddresses(entry)
        ? $"'{Truncate(entry, 80)}' is more than one address: give each its own entry."
        : AccountService.TryParseAddress(entry, out _, out var name) && name is { Length: > MaxRecipientNameLength }
            ? $"'{Truncate(entry, 80)}' has a name longer than {MaxRecipientNameLength} characters."
            : $"'{Truncate(entry, 80)}' is not an email address.";

    /// <summary>
    /// The subject as one header line (<see cref="PlainText.OneLine"/>). No mail header carries U+0000 and PostgreSQL
    /// text cannot hold it: dropped rather than failing the insert. A line break or tab (a subject pasted from a
    /// document) is a space: MimeKit drops line breaks from a header, which glued the words on either side together in
    /// the mail the recipient got, while the pages showed them apart.
    /// </summary>
    static string HeaderText(string subject) => PlainText.OneLine(subject);
}
