using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace EmailTracking.Server.Messages;

/// <summary>What a request with an Idempotency-Key gets from <see cref="IdempotencyKeys.BeginAsync"/>: the key to work under, or the answer instead.</summary>
/// <param name="Location">The replayed answer's Location header.</param>
/// <param name="RetryAfter">Seconds to wait: the first request is still at work.</param>
/// <param name="Stopped">The claim is the key of a first request that stopped after it made its message (the send may
/// have left in part): the request is to finish that message, not make another.</param>
public sealed record IdempotencyStart(IdempotencyKey? Claim, ProblemHttpResult? Problem = null, ContentHttpResult? Replay = null,
    string? Location = null, int? RetryAfter = null, bool Stopped = false, DateTimeOffset? SentAt = null)
{
    /// <summary>Sets the answer's headers: Idempotent-Replayed and Location on a replay, Retry-After on a request in progress.</summary>
    public void SetHeaders(HttpResponse response)
    {
        if (Replay is not null)
        {
            response.Headers[IdempotencyKeys.ReplayedHeader] = "true";
            if (Location is not null) response.Headers.Location = Location;
        }
        if (RetryAfter is { } seconds) response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}

/// <summary>Marks an endpoint that takes an Idempotency-Key (Swagger documents the header on it).</summary>
public sealed class AcceptsIdempotencyKey;

/// <summary>
/// Idempotency keys on the message API (as Stripe's): a client that timed out and sends the same request again with the
/// same <c>Idempotency-Key</c> gets the first request's answer, with <c>Idempotent-Replayed: true</c>, instead of a
/// second message. Keys are the user's own, kept <see cref="Kept"/> and stored in the database, so that every instance
/// shares them and a restart keeps them.
/// <para>
/// The first request claims the key by inserting its row (the primary key, user and key, refuses a second insert on
/// either database): of two at the same instant one claims it and the other is told it is in progress (409). The claim
/// names the message's id before it is made, as the Compose page's form does, so a claim that never finished (the
/// server died while sending) is settled by what exists: no message means nothing left, and the next request takes the
/// key over; a message with that id may have left in part, and the next send request finishes it (Stopped): the
/// mailbox's Sent folder says per copy what left (recorded) and what did not (sent now), or the answer is a 409 that
/// says why it cannot tell. Only a request that made its message stores its answer; one refused (a validation error,
/// a mailbox that could not send, where nothing left) gives the key back, so the client can fix the request and send
/// it again with the same key. A send where some copies failed is answered, and stored, as it is: the same key gives
/// the same answer, as Stripe's keys do, and never sends the failed copies again.
/// </para>
/// </summary>
public sealed class IdempotencyKeys(AppDbContext db, [FromKeyedServices(IdempotencyKeys.ClockKey)] TimeProvider clock, IdempotencyUpkeep upkeep,
    IOptions<JsonOptions> json)
{
    public const string Header = "Idempotency-Key";
    public const string ReplayedHeader = "Idempotent-Replayed";
    /// <summary>Says (true) that this answer finished a first request that stopped before it answered.</summary>
    public const string CompletedOnRetryHeader = "Idempotent-Completed-On-Retry";
    /// <summary>The clock keys expire by (tests move it).</summary>
    public const string ClockKey = "idempotency";
    public const int MaxLength = 255;

    /// <summary>How long a key is kept: a request with it after this is a new request.</summary>
    public static readonly TimeSpan Kept = TimeSpan.FromHours(24);

    /// <summary>
    /// How long the first request is taken to be at work: above the longest send (a mailbox's timeout for each of many
    /// copies). A retry meanwhile is told to wait; after it, the request is taken to have stopped.
    /// </summary>
    public static readonly TimeSpan Lease = TimeSpan.FromMinutes(10);

    /// <summary>How long a retry that found the first request at work is asked to wait.</summary>
    public const int RetryAfterSeconds = 2;

    /// <summary>The request's key: none when it sends none; a problem (400) when it is not one.</summary>
    public static (string? Key, ProblemHttpResult? Problem) Read(HttpRequest request)
    {
        if (!request.Headers.TryGetValue(Header, out var values)) return (null, null);
        if (values.Count != 1) return (null, Invalid($"Send one {Header} header, not {values.Count}."));
        var key = values[0] ?? "";
        // Spaces alone are no key (HTTP drops the spaces around a header's value: it arrives empty).
        if (string.IsNullOrWhiteSpace(key)) return (null, Invalid($"The {Header} header is empty: leave it out, or give 1 to {MaxLength} characters."));
        if (key.Length > MaxLength) return (null, Invalid($"The {Header} is {key.Length} characters long; at most {MaxLength}. A UUID is a good key."));
        if (key.Any(c => c is < ' ' or > '~'))
        {
            return (null, Invalid($"The {Header} may hold only printable ASCII characters (letters, digits, punctuation and spaces). A UUID is a good key."));
        }
        return (key, null);
    }

    static ProblemHttpResult Invalid(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: $"The {Header} header is not valid.", detail: detail);

    /// <summary>
    /// The request as the endpoint read it, serialized again, with the endpoint's name: the same fields in another order,
    /// spacing or letter case are the same request; another endpoint, or any field's value changed, is another.
    /// </summary>
    public byte[] Hash<T>(string endpoint, T request)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(request, json.Value.SerializerOptions);
        return SHA256.HashData([.. Encoding.UTF8.GetBytes(endpoint), 0, .. body]);
    }

    /// <summary>Claims the key for this request, or answers what the key already stands for.</summary>
    public async Task<IdempotencyStart> BeginAsync(CurrentUser me, string key, byte[] hash, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        if (upkeep.Due(now)) await upkeep.DeleteExpiredAsync(db, now, ct);
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var claim = new IdempotencyKey
            {
                UserId = me.Id, Key = key, RequestHash = hash, MessageId = Guid.NewGuid(), CreatedAt = now, LeaseUntil = now + Lease,
            };
            db.IdempotencyKeys.Add(claim);
            try
            {
                await db.SaveChangesAsync(ct);
                db.Entry(claim).State = EntityState.Detached;
                return new IdempotencyStart(claim);
            }
            catch (DbUpdateException)
            {
                // The key is taken: by an earlier request, or by one at this same instant on any instance.
                db.ChangeTracker.Clear();
            }

            var row = await db.IdempotencyKeys.AsNoTracking().FirstOrDefaultAsync(k => k.UserId == me.Id && k.Key == key, ct);
            if (row is null) continue; // given back meanwhile (its request was refused)
            if (row.CreatedAt <= now - Kept)
            {
                // Expired, not yet deleted by the upkeep: a new request.
                await db.IdempotencyKeys.Where(k => k.UserId == me.Id && k.Key == key && k.MessageId == row.MessageId).ExecuteDeleteAsync(ct);
                continue;
            }
            if (!row.RequestHash.AsSpan().SequenceEqual(hash))
            {
                return new IdempotencyStart(null, TypedResults.Problem(statusCode: StatusCodes.Status422UnprocessableEntity,
                    title: $"This {Header} was used for a different request.",
                    detail: $"The key '{key}' was first used at {row.CreatedAt.UtcDateTime:u} for a request with another body or on another endpoint. " +
                            "Send that request again to get its answer, or use a new key for a new request."));
            }
            if (row.ResponseStatus is { } status)
            {
                return new IdempotencyStart(null, Replay: TypedResults.Content(row.ResponseBody, "application/json", Encoding.UTF8, status),
                    Location: status == StatusCodes.Status201Created ? $"/api/messages/{row.MessageId}" : null);
            }
            if (row.LeaseUntil > now) return new IdempotencyStart(null, InProgress(key), RetryAfter: RetryAfterSeconds);

            // The first request stopped before it finished (the server died, or the send failed in a way that was not
            // answered). What exists says what happened: its message was made, so it left, in part or whole, or may
            // have: this request takes the key over to finish that message (Stopped), never to make another. Nothing
            // made, nothing left: this request takes the key over, with the same message id, so that should the first
            // one still make its message, one of the two inserts is refused. Either way one retry at a time: the
            // others are told it is in progress.
            var made = await db.Messages.Where(m => m.Id == row.MessageId && m.UserId == me.Id).Select(m => new { m.SentAt }).FirstOrDefaultAsync(ct);
            var taken = await db.IdempotencyKeys
                .Where(k => k.UserId == me.Id && k.Key == key && k.MessageId == row.MessageId && k.ResponseStatus == null && k.LeaseUntil == row.LeaseUntil)
                .ExecuteUpdateAsync(s => s.SetProperty(k => k.LeaseUntil, now + Lease), ct);
            if (taken == 1)
            {
                row.LeaseUntil = now + Lease;
                return new IdempotencyStart(row, Stopped: made is not null, SentAt: made?.SentAt);
            }
        }
        return new IdempotencyStart(null, InProgress(key), RetryAfter: RetryAfterSeconds);
    }

    static ProblemHttpResult InProgress(string key) => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict,
        title: $"A request with this {Header} is still in progress.",
        detail: $"The first request with the key '{key}' has not finished. Send this one again in a moment (Retry-After) to get its answer; nothing is sent twice.",
        extensions: new Dictionary<string, object?> { ["retryAfter"] = RetryAfterSeconds });

    /// <summary>
    /// The answer to a retry of a request that stopped after making its message, when what became of it cannot be told
    /// (<paramref name="why"/>; none: the endpoint cannot look). Its claim ends (<see cref="StopAsync"/>): a later retry
    /// looks again.
    /// </summary>
    public async Task<ProblemHttpResult> StoppedAsync(IdempotencyKey claim, DateTimeOffset? sentAt, string? why)
    {
        await StopAsync(claim);
        var (key, messageId) = (claim.Key, claim.MessageId);
        return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict,
            title: $"The first request with this {Header} stopped before it answered; its message is not sent again.",
            detail: (sentAt is { } at
                        ? $"Message {messageId} (key '{key}') was recorded as sent at {at.UtcDateTime:u}. "
                        : $"Message {messageId} (key '{key}') was registered, and may or may not have left: look in the mailbox's Sent folder. ")
                    + (why is null ? "" : $"This retry could not tell which copies left: {why} ")
                    + $"See GET /api/messages/{messageId}; send it again only with a new key.",
            extensions: new Dictionary<string, object?> { ["messageId"] = messageId, ["sentAt"] = sentAt, ["reason"] = why });
    }

    /// <summary>Stores the answer the first request gave, for its retries.</summary>
    public Task CompleteAsync<T>(IdempotencyKey claim, int status, T response, CancellationToken ct)
    {
        var body = JsonSerializer.Serialize(response, json.Value.SerializerOptions);
        return Mine(claim).ExecuteUpdateAsync(s => s.SetProperty(k => k.ResponseStatus, status).SetProperty(k => k.ResponseBody, body), ct);
    }

    /// <summary>Gives the key back: the request was refused and made nothing, so the client may correct it and use the key again.</summary>
    public Task ReleaseAsync(IdempotencyKey claim) => Mine(claim).ExecuteDeleteAsync(CancellationToken.None);

    /// <summary>
    /// The request failed in a way nobody answered (an exception): its claim ends now rather than at the end of its lease,
    /// so that a retry learns at once what became of it (its message made or not).
    /// </summary>
    public Task StopAsync(IdempotencyKey claim)
    {
        var now = clock.GetUtcNow();
        return Mine(claim).ExecuteUpdateAsync(s => s.SetProperty(k => k.LeaseUntil, now), CancellationToken.None);
    }

    IQueryable<IdempotencyKey> Mine(IdempotencyKey claim) => db.IdempotencyKeys.Where(k =>
        k.UserId == claim.UserId && k.Key == claim.Key && k.MessageId == claim.MessageId && k.ResponseStatus == null);
}

/// <summary>
/// Deletes the keys older than <see cref="IdempotencyKeys.Kept"/>: about once a minute per instance, by the first
/// request with a key after it, as the password reset limits' upkeep does. A key expired but not yet deleted is
/// already treated as gone.
/// </summary>
public sealed class IdempotencyUpkeep : Web.UpkeepGate
{
    public async Task DeleteExpiredAsync(AppDbContext db, DateTimeOffset now, CancellationToken ct)
    {
        var expired = now - IdempotencyKeys.Kept;
        await db.IdempotencyKeys.Where(k => k.CreatedAt <= expired).ExecuteDeleteAsync(ct);
    }
}

/// <summary>Documents the Idempotency-Key header and the Idempotent-Replayed answer on the endpoints that take them.</summary>
public sealed class IdempotencyKeyOperationFilter : IOperationFilter
{
    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        if (!context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<AcceptsIdempotencyKey>().Any()) return;
        operation.Parameters ??= [];
        operation.Parameters.Add(new OpenApiParameter
        {
            Name = IdempotencyKeys.Header,
            In = ParameterLocation.Header,
            Required = false,
            Description = "Optional, 1–255 printable ASCII characters (a UUID is a good key), your own per user and kept 24 hours. " +
                          "The same key with the same request answers the first request's answer (with Idempotent-Replayed: true) and " +
                          "registers or sends nothing again; with a different request, 422; while the first is still at work, 409 with Retry-After. " +
                          "A request refused (4xx, or a mailbox that sent nothing) does not keep the key. A send whose first request stopped " +
                          "before it answered is finished by its retry: each copy found in the mailbox's Sent folder is recorded as sent, the " +
                          $"others are sent, and the 201 carries {IdempotencyKeys.CompletedOnRetryHeader}: true; when the mailbox cannot be " +
                          "asked or cannot tell (over SMTP: several copies, or a Sent copy still marked as being sent), 409 with the reason.",
            Schema = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = IdempotencyKeys.MaxLength, Pattern = "^[\\x20-\\x7E]+$" },
        });
        if (operation.Responses?.TryGetValue("201", out var created) == true && created is OpenApiResponse response)
        {
            response.Headers ??= new Dictionary<string, IOpenApiHeader>();
            response.Headers[IdempotencyKeys.ReplayedHeader] = new OpenApiHeader
            {
                Description = "true when this is the stored answer to an earlier request with the same Idempotency-Key.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            };
            if (context.ApiDescription.RelativePath?.EndsWith("/send", StringComparison.Ordinal) == true)
                response.Headers[IdempotencyKeys.CompletedOnRetryHeader] = new OpenApiHeader
            {
                Description = "true when this request finished a first one with the same Idempotency-Key that stopped before it answered.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            };
        }
    }
}
