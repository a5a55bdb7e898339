using System.Text.Json.Serialization;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Messages;
using EmailTracking.Server.Tracking;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Outlook;

/// <summary>
/// What the Outlook add-in's task pane and on-send handler call besides the general API (<c>POST /api/messages</c> with
/// source <c>outlook-addin</c>, <c>GET /api/content</c>, <c>POST /api/content/{id}/links</c>, <c>GET /api/feed</c>):
/// the sign-in settings, the user's defaults and limits, and what we know about the item open in Outlook.
/// </summary>
public static class OutlookApi
{
    /// <summary>
    /// The internet header the on-send handler sets on tracked mail; its value is the copy's pixel token (the
    /// <c>{token}</c> of the copy's <c>pixelUrl</c>, <c>/o/{token}.gif</c>). It travels with the mail, so the read pane
    /// and the Sent-folder scanner find the tracked copy even when Outlook gave the mail another Message-ID. The same
    /// header as mail sent through Microsoft Graph carries (<c>x-et-token</c>).
    /// </summary>
    public const string TokenHeader = Mailboxes.GraphTransport.TokenHeaderName;

    /// <summary>Where the add-in's pages, scripts and icons are served (web-taskpane's build, in wwwroot/addin).</summary>
    public const string AddinPath = "/addin";

    /// <summary>
    /// The add-in pages' policy: our own scripts, Office.js from its documented CDN (which loads the rest of Office.js
    /// from there), Microsoft sign-in for MSAL's fallback popup, and framing by Outlook's own origins only (Outlook on
    /// the web and new Outlook show the panes in a frame of theirs; classic Outlook and Outlook for Mac show them
    /// unframed), so no other site can frame a signed-in pane and trick a click out of it.
    /// </summary>
    public static string AddinCsp(IEnumerable<string> frameAncestors) =>
        "default-src 'self'; script-src 'self' https://appsforoffice.microsoft.com; style-src 'self'; img-src 'self' data:; " +
        "connect-src 'self' https://login.microsoftonline.com; frame-src https://login.microsoftonline.com; " +
        $"frame-ancestors {string.Join(' ', frameAncestors)}; base-uri 'none'; form-action 'self'; object-src 'none'";

    public sealed record OutlookConfig(string ClientId, string Authority, List<string> Scopes);

    public sealed record OutlookMe(string Email, List<string> Addresses, Plan Plan, bool TrackByDefault, bool ContentAllowed, int MaxRecipients);

    /// <param name="MachineEvents">Machines' opens, clicks and document events (image proxies, scanners, bots), not the sender's own.</param>
    /// <param name="OwnViews">The sender's own opens, clicks and document events (verdict self), apart from the machines'.</param>
    public sealed record OutlookRecipientActivity(string Address, int Opens, int Clicks, int PagesRead, int Downloads, bool Replied,
        DateTimeOffset? LastOpenAt, DateTimeOffset? LastClickAt, int MachineEvents, int OwnViews);

    public sealed record OutlookSentMessage(Guid Id, string Subject, DateTimeOffset? SentAt, bool PerRecipient,
        List<OutlookRecipientActivity> Recipients, OutlookRecipientActivity Everyone);

    /// <param name="Verdict">What the answer was: reply, auto-reply, bounce, complaint or receipt (a read receipt or a delivery notice).</param>
    public sealed record OutlookAnswered(Guid MessageId, string Subject, DateTimeOffset? SentAt, string From, EventKind Verdict);

    /// <param name="Kind">sent (a tracked message of ours), reply (an answer to one), none.</param>
    /// <param name="MatchedBy">How a sent message was found: token (the header), body (the pixel in the item's body, on
    /// the user's own mail), internetMessageId or conversationId (the weakest: a reply in the same conversation has it
    /// too).</param>
    public sealed record OutlookItem(
        string Kind,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? MatchedBy = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] OutlookSentMessage? Message = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] OutlookAnswered? Answered = null);

    /// <summary>What the copy's columns hold (Outlook's conversation ids are about 150 characters).</summary>
    const int MaxConversationIdLength = 200;
    const int MaxRecordedMessageIdLength = 250;

    public static void MapOutlook(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/outlook").RequireAuthorization(Auth.ApiPolicy).WithTags("Outlook add-in");
        g.MapGet("/config", Config).AllowAnonymous()
            .WithSummary("Microsoft sign-in settings for the task pane (MSAL with nested app authentication); 404 when not configured");
        g.MapGet("/me", Me).WithSummary("The user's address, plan, tracking default and limits, for the compose pane");
        g.MapGet("/item", Item)
            .WithSummary("The item open in Outlook: a tracked message of ours with each recipient's activity, a reply to one, or none")
            .WithDescription("Give what the pane could read of the item: token (the x-et-token header), internetMessageId, conversationId, " +
                             "from (the item's sender: ids are kept for a token only on the user's own mail); " +
                             "and, when the header is missing, bodyToken (the token of the last tracking pixel in its body) with from and subject. " +
                             "Each recipient's `machineEvents` counts machines' opens, clicks and document events (proxies, scanners, bots); " +
                             "`ownViews` counts the sender's own (verdict self), which are neither a person's nor a machine's.");
    }

    static Results<Ok<OutlookConfig>, ProblemHttpResult> Config(HttpContext http, IOptions<AzureAdOptions> options)
    {
        var o = options.Value;
        if (!o.IsConfigured)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Microsoft sign-in is not configured on this server.",
                detail: "Set AzureAd:ClientId (and AzureAd:TenantId) to the Entra ID app registration of the Outlook add-in; see the README, 'Outlook add-in'.");
        }
        return TypedResults.Ok(new OutlookConfig(o.ClientId!, o.Authority, [$"{o.AppIdUri(http.Request)}/{o.RequiredScope}"]));
    }

    static async Task<Results<Ok<OutlookMe>, NotFound>> Me(HttpContext http, AppDbContext db, IOptions<TrackingOptions> tracking, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var row = await db.Users.Where(u => u.Id == me.Id)
            .Select(u => new { u.Email, u.TrackByDefault, u.Team!.Plan, Addresses = u.Addresses.Select(a => a.Address).ToList() })
            .AsNoTracking().FirstOrDefaultAsync(ct);
        if (row is null) return TypedResults.NotFound();
        return TypedResults.Ok(new OutlookMe(row.Email ?? me.Email, [.. row.Addresses.Order(StringComparer.Ordinal)], row.Plan, row.TrackByDefault,
            ContentAllowed: row.Plan >= Plan.Team, tracking.Value.MaxRecipients));
    }

    static async Task<Results<Ok<OutlookItem>, ValidationProblem>> Item(HttpContext http, AppDbContext db, string? token, string? internetMessageId,
        string? conversationId, string? bodyToken, string? from, string? subject, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(token) && string.IsNullOrWhiteSpace(internetMessageId) && string.IsNullOrWhiteSpace(conversationId)
            && string.IsNullOrWhiteSpace(bodyToken))
        {
            errors["item"] = ["Give at least one of token, internetMessageId, conversationId and bodyToken."];
        }
        if (!string.IsNullOrWhiteSpace(token) && !Tokens.LooksLikeTrackingToken(token.Trim()))
        {
            errors["token"] = [$"Not a tracking token (the value of the {TokenHeader} header is 24 characters)."];
        }
        if (!string.IsNullOrWhiteSpace(bodyToken) && !Tokens.LooksLikeTrackingToken(bodyToken.Trim()))
        {
            errors["bodyToken"] = ["Not a tracking token (the last part of a pixel's address, /o/{token}.gif, is 24 characters)."];
        }
        // Outlook may name an internal sender by an Exchange address rather than an email address: such an item is
        // simply not the user's own mail, not a bad request.
        var sender = from is { Length: <= 320 } ? AccountService.NormalizeAddress(from) : null;
        if (subject is { Length: > 1000 })
        {
            errors["subject"] = ["Longer than a subject can be (1,000 characters)."];
        }
        if (!string.IsNullOrWhiteSpace(bodyToken) && (string.IsNullOrWhiteSpace(from) || subject is null))
        {
            errors["bodyToken"] = ["Give from and subject with bodyToken: the pixel in a body is the item's own only on the user's own mail with its subject."];
        }
        var messageId = Replies.InboundPipeline.Clean(internetMessageId);
        if (!string.IsNullOrWhiteSpace(internetMessageId) && (messageId is null || !LooksLikeMessageId(messageId)))
        {
            errors["internetMessageId"] = ["Not a Message-ID (at most 500 characters in angle brackets, without spaces, " +
                                           "control or invisible characters, or angle brackets inside)."];
        }
        var conversation = conversationId?.Trim();
        if (!string.IsNullOrEmpty(conversation) && (conversation.Length > MaxConversationIdLength || !conversation.All(IsBase64Char)))
        {
            errors["conversationId"] = [$"Not a conversation id (at most {MaxConversationIdLength} characters of base64, as Outlook's are)."];
        }
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        if (string.IsNullOrEmpty(conversation)) conversation = null;

        var me = CurrentUser.Required(http.User);
        var visible = MessageStats.Visible(db, me);
        // Only the add-in, which signs in with a token, records ids. Signed in by the web app's cookie, this GET could be
        // a link someone else wrote (a recipient knows the pixel's token): it may show, never change, what is kept.
        var mayRecord = http.User.Identity?.AuthenticationType != Microsoft.AspNetCore.Identity.IdentityConstants.ApplicationScheme;

        // Our token is the surest: the on-send handler set it on this very mail. But the header travels with the mail
        // and anyone who got a copy can read the token from its pixel's address and write it into a mail of their own
        // to the sender: the item is shown, but it is the sent copy (its ids kept, the sender's own look at it) only
        // when it is the user's own mail, from one of their addresses.
        if (!string.IsNullOrWhiteSpace(token))
        {
            var t = token.Trim();
            var copy = await (from c in db.Copies join m in visible on c.TrackedMessageId equals m.Id where c.PixelToken == t select c)
                .Include(c => c.TrackedMessage).FirstOrDefaultAsync(ct);
            if (copy is not null)
            {
                if (mayRecord && await IsUsersAddressAsync(db, me.Id, sender, ct))
                {
                    await RecordIdsAsync(db, me, copy, messageId, conversation, ct);
                    await TakeSenderViewAsync(http, db, me, copy.TrackedMessageId, copy.TrackedMessage!.UserId, ct);
                }
                return TypedResults.Ok(await SentAsync(db, copy.TrackedMessageId, "token", ct));
            }
        }

        if (messageId is not null)
        {
            var sent = await (from c in db.Copies join m in visible on c.TrackedMessageId equals m.Id
                              where c.MessageIdHeader == messageId || c.SentMessageIdHeader == messageId
                              select new { m.Id, m.UserId }).FirstOrDefaultAsync(ct);
            if (sent is not null)
            {
                if (mayRecord) await TakeSenderViewAsync(http, db, me, sent.Id, sent.UserId, ct);
                return TypedResults.Ok(await SentAsync(db, sent.Id, "internetMessageId", ct));
            }

            // An answer the mailbox connectors recorded (only answers to tracked mail are kept).
            // Starting from the caller's (or, for an admin, the team's) rows keeps the lookup on the (UserId, InternetMessageId) index.
            var inbound = me.IsAdmin ? db.InboundMessages.Where(i => i.TeamId == me.TeamId) : db.InboundMessages.Where(i => i.UserId == me.Id);
            var reply = await (from i in inbound join m in visible on i.TrackedMessageId equals m.Id
                               where i.InternetMessageId == messageId
                               orderby i.Id
                               select new { m.Id, m.Subject, m.SentAt, i.FromAddress, i.Kind }).FirstOrDefaultAsync(ct);
            if (reply is not null)
            {
                return TypedResults.Ok(new OutlookItem("reply", Answered: new OutlookAnswered(reply.Id, reply.Subject, reply.SentAt, reply.FromAddress, reply.Kind)));
            }
        }

        // The pixel in the body, read by the pane when the header did not survive. An answer or a forward quoting the
        // tracked mail carries the same pixel: it is taken as this item's own only when the item is the user's (sent from
        // one of their addresses) and has the tracked mail's subject (a forward or an answer has "FW:" or "RE:" before it).
        // A tracked mail that answered something already has "RE:", which the user's later answers in the conversation
        // keep: with such a subject the item may be one of those, so the pixel decides nothing (the conversation may
        // still find it below, said as such; a Sent-folder scan records the tracked mail's ids by its token).
        if (!string.IsNullOrWhiteSpace(bodyToken) && sender is not null && subject is not null && !Replies.Subjects.IsAnswer(subject))
        {
            var t = bodyToken.Trim();
            var copy = await (from c in db.Copies join m in visible on c.TrackedMessageId equals m.Id where c.PixelToken == t select c)
                .Include(c => c.TrackedMessage).FirstOrDefaultAsync(ct);
            if (copy is not null && copy.TrackedMessage!.UserId == me.Id
                && string.Equals(copy.TrackedMessage.Subject.Trim(), subject.Trim(), StringComparison.Ordinal)
                && await IsUsersAddressAsync(db, me.Id, sender, ct))
            {
                if (mayRecord)
                {
                    await RecordIdsAsync(db, me, copy, messageId, conversation, ct);
                    await TakeSenderViewAsync(http, db, me, copy.TrackedMessageId, copy.TrackedMessage.UserId, ct);
                }
                return TypedResults.Ok(await SentAsync(db, copy.TrackedMessageId, "body", ct));
            }
        }

        if (conversation is not null)
        {
            var latest = await (from c in db.Copies join m in visible on c.TrackedMessageId equals m.Id
                                where c.ProviderThreadId == conversation
                                orderby m.CreatedAt descending
                                select m.Id).FirstOrDefaultAsync(ct);
            if (latest != Guid.Empty) return TypedResults.Ok(await SentAsync(db, latest, "conversationId", ct));
        }
        return TypedResults.Ok(new OutlookItem("none"));
    }

    /// <summary>Whether the item's sender is one of the user's addresses, its domain written either way (punycode or Unicode).</summary>
    static async Task<bool> IsUsersAddressAsync(AppDbContext db, Guid userId, string? sender, CancellationToken ct)
    {
        if (sender is null) return false;
        var forms = AccountService.StoredForms(sender);
        return await db.UserAddresses.AnyAsync(a => a.UserId == userId && forms.Contains(a.Address), ct);
    }

    /// <summary>Outlook's conversation ids are base64 (EWS and Graph) or URL-safe base64 (REST ids).</summary>
    static bool IsBase64Char(char c) => char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=' or '-' or '_';

    /// <summary>
    /// A Message-ID without its angle brackets: RFC 5322's id-left "@" id-right is visible ASCII, RFC 6532 lets it hold
    /// UTF-8 text. Refused: whitespace of any kind, control and format characters (zero-width, bidirectional
    /// overrides), unassigned code points and noncharacters, private-use characters, the replacement character a
    /// query that was not UTF-8 decodes to, and angle brackets inside.
    /// </summary>
    public static bool LooksLikeMessageId(string id)
    {
        foreach (var rune in id.EnumerateRunes())
        {
            if (rune == System.Text.Rune.ReplacementChar || rune.Value is '<' or '>') return false;
            switch (System.Text.Rune.GetUnicodeCategory(rune))
            {
                case System.Globalization.UnicodeCategory.Control:
                case System.Globalization.UnicodeCategory.Format:
                case System.Globalization.UnicodeCategory.Surrogate:
                case System.Globalization.UnicodeCategory.PrivateUse:
                case System.Globalization.UnicodeCategory.OtherNotAssigned:
                case System.Globalization.UnicodeCategory.SpaceSeparator:
                case System.Globalization.UnicodeCategory.LineSeparator:
                case System.Globalization.UnicodeCategory.ParagraphSeparator:
                    return false;
            }
        }
        return true;
    }

    /// <summary>
    /// The sent item in Outlook carries the Message-ID and conversation the mail really left with (Outlook replaces a
    /// draft's at send): kept on the copy when nothing was recorded yet, so replies to it are matched. Only on the
    /// sender's own message: an admin looking at a teammate's changes nothing.
    /// </summary>
    static async Task RecordIdsAsync(AppDbContext db, CurrentUser me, MessageCopy copy, string? messageId, string? conversation, CancellationToken ct)
    {
        if (copy.TrackedMessage!.UserId != me.Id) return;
        var changed = false;
        if (messageId is not null && messageId.Length <= MaxRecordedMessageIdLength && copy.SentMessageIdHeader is null && messageId != copy.MessageIdHeader)
        {
            copy.SentMessageIdHeader = messageId;
            changed = true;
        }
        if (conversation is not null && copy.ProviderThreadId is null)
        {
            copy.ProviderThreadId = conversation;
            changed = true;
        }
        if (changed) await db.SaveChangesAsync(ct);
    }

    /// <summary>How long before the pane asks an open from the pane's own address counts as the sender's Outlook showing the mail.</summary>
    public static readonly TimeSpan SenderViewWindow = TimeSpan.FromMinutes(2);

    public const string SenderViewReason = "the sender's own Outlook showed the message: opened from the address of their EmailTracking pane beside it";

    /// <summary>
    /// The pane is open beside the user's own sent mail (found by its token, its pixel or its Message-ID, not merely its
    /// conversation): Outlook is showing the body, pixel and all, on the sender's machine, where no device cookie
    /// travels. Opens of the message from the address this request comes from, in the minutes before, are the sender's
    /// own (the pane asks again on each live update, so one just after is taken too). Only the sender's own request:
    /// an admin looking at a member's mail is not its sender.
    /// </summary>
    static async Task TakeSenderViewAsync(HttpContext http, AppDbContext db, CurrentUser me, Guid messageId, Guid ownerId, CancellationToken ct)
    {
        if (ownerId != me.Id || TrackingApi.ClientIp(http)?.ToString() is not { } ip) return;
        var since = http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow() - SenderViewWindow;
        IQueryable<TrackingEvent> Own(AppDbContext d) => d.Events.Where(e => e.TrackedMessageId == messageId && e.Kind == EventKind.Open
                                                                             && e.Verdict == Verdict.Human && e.Ip == ip && e.OccurredAt >= since);
        // Looked for first on the request's own context: the correction takes the events' write lock, which most panes never need.
        if (!await Own(db).AnyAsync(ct)) return;
        await http.RequestServices.GetRequiredService<VerdictCorrections>().RemarkAsync(Own, Verdict.Self, SenderViewReason, ct);
    }

    static async Task<OutlookItem> SentAsync(AppDbContext db, Guid messageId, string matchedBy, CancellationToken ct)
    {
        var m = (await MessageStats.SummarizeAsync(db, db.Messages.Where(x => x.Id == messageId), ct)).Single();
        var docs = await MessageStats.DocumentCountsAsync(db, [messageId], ct);
        // One shared copy cannot say whose open or click it was, but a reply names its author: who replied is known
        // per person whatever the copies (the issue asks for replies per recipient).
        var repliedBy = m.PerRecipient ? [] : await db.Events
            .Where(e => e.TrackedMessageId == messageId && e.Kind == EventKind.Reply && e.Verdict == Verdict.Human && e.RecipientId != null)
            .Select(e => e.RecipientId!.Value).Distinct().ToListAsync(ct);
        OutlookRecipientActivity Of(string who, Guid? recipient, Counts c) => new(who, c.Opens, c.Clicks,
            docs.PagesRead(m.Id, recipient), docs.Downloads(m.Id, recipient), c.Replied || (recipient is { } r && repliedBy.Contains(r)),
            c.LastOpenAt, c.LastClickAt, c.MachineEvents, c.OwnViews);
        return new OutlookItem("sent", matchedBy, new OutlookSentMessage(m.Id, m.Subject, m.SentAt, m.PerRecipient,
            [.. m.Recipients.Select(r => Of(r.Address, r.Id, r.Counts))], Of("everyone", null, m.Counts)));
    }
}
