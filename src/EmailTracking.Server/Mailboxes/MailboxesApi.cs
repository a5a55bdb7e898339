using EmailTracking.Server.Accounts;
using EmailTracking.Server.Mailboxes.Gmail;
using Microsoft.AspNetCore.Http.HttpResults;

namespace EmailTracking.Server.Mailboxes;

public static class MailboxesApi
{
    public static void MapMailboxes(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/mailboxes").RequireAuthorization(Auth.ApiPolicy).WithTags("Mailboxes");
        g.MapGet("/", List).WithSummary("The user's connected mailboxes and their state (active, needs-reconnect)");
        g.MapPost("/imap", ConnectImap)
            .WithSummary("Connect (or reconnect) a mailbox over IMAP and SMTP; the login is tried before it is kept, and kept encrypted");
        g.MapDelete("/{id:guid}", Remove).WithSummary("Disconnect a mailbox (what was recorded stays)");
        g.MapDelete("/{id:guid}/unreadable", ClearUnreadable)
            .WithSummary("Clear the mailbox's notes of unreadable messages once looked at (`upTo`: only notes with this id or lower, the newest seen)");
        g.MapGet("/{id:guid}/unreadable", Unreadable)
            .WithSummary("Messages of the mailbox that could not be read or handled (newest first, at most `limit`, default 100): the watch went past them; find them in the mail client by folder and date");
        app.MapGmailMailboxes();
    }

    static async Task<Ok<List<MailboxSummary>>> List(HttpContext http, MailboxService mailboxes, CancellationToken ct) =>
        TypedResults.Ok(await mailboxes.ListAsync(CurrentUser.Required(http.User), ct));

    static async Task<Results<Created<MailboxSummary>, Ok<MailboxSummary>, ValidationProblem, ProblemHttpResult>> ConnectImap(
        ConnectImapRequest request, HttpContext http, MailboxService mailboxes, CancellationToken ct)
    {
        var result = await mailboxes.ConnectImapAsync(CurrentUser.Required(http.User), request, ct);
        if (result.Errors is { } errors) return TypedResults.ValidationProblem(errors);
        if (result.ServerProblem is { } problem)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status422UnprocessableEntity, title: "The mailbox could not be connected.",
                detail: problem);
        }
        var summary = mailboxes.Summarize(result.Connection!);
        return result.Created ? TypedResults.Created($"/api/mailboxes/{summary.Id}", summary) : TypedResults.Ok(summary);
    }

    static async Task<Results<Ok<List<UnreadableSummary>>, NotFound, ValidationProblem>> Unreadable(Guid id, HttpContext http, MailboxService mailboxes,
        CancellationToken ct, int limit = 100)
    {
        // Fewer than one is a mistake, not a page (it answered one); more than 1000 is answered with 1000.
        if (limit < 1) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = ["limit is how many to answer: at least 1 (at most 1000 are answered)."] });
        return await mailboxes.UnreadableAsync(CurrentUser.Required(http.User), id, Math.Min(limit, 1000), ct) is { } rows
            ? TypedResults.Ok(rows) : TypedResults.NotFound();
    }

    static async Task<Results<NoContent, NotFound>> ClearUnreadable(Guid id, HttpContext http, MailboxService mailboxes, CancellationToken ct,
        long? upTo = null) =>
        await mailboxes.ClearUnreadableAsync(CurrentUser.Required(http.User), id, upTo, ct) ? TypedResults.NoContent() : TypedResults.NotFound();

    static async Task<Results<NoContent, NotFound>> Remove(Guid id, HttpContext http, MailboxService mailboxes, CancellationToken ct) =>
        await mailboxes.RemoveAsync(CurrentUser.Required(http.User), id, ct) ? TypedResults.NoContent() : TypedResults.NotFound();
}
