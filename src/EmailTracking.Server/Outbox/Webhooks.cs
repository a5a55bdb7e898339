using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Outbox;

/// <summary>
/// Where a webhook may point: https (http only when allowed), and never at loopback, private, link-local or other
/// non-public addresses unless allowed — checked on the URL, on what its name resolves to, and again on the address
/// actually connected to (a name that resolves differently later is caught there).
/// </summary>
public sealed class WebhookGuard(IOptionsMonitor<WebhookOptions> options)
{
    public string? Check(string? url)
    {
        var o = options.CurrentValue;
        if (string.IsNullOrWhiteSpace(url) || url.Length > 2000 || !Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri))
            return "A webhook URL is an absolute https:// URL.";
        // A URL holds no control characters (they are percent-encoded); a NUL also failed the insert on PostgreSQL.
        if (Web.PlainText.HasControl(url.Trim())) return "A webhook URL may not contain control characters (such as NUL or a line break); percent-encode them.";
        if (uri.Scheme != Uri.UriSchemeHttps && !(uri.Scheme == Uri.UriSchemeHttp && o.AllowHttp))
            return "A webhook URL must use https:// (the payload names your recipients).";
        if (!string.IsNullOrEmpty(uri.UserInfo)) return "A webhook URL may not carry a user name or password; the signature authenticates us.";
        // A host may end in the root's dot ("169.254.169.254.", "localhost."): the connection reaches the same address,
        // so the URL is judged without it. Taken as written, such a webhook was made and then refused on every delivery.
        var host = uri.DnsSafeHost.TrimEnd('.');
        if (IPAddress.TryParse(host, out var ip) && !Allowed(ip)) return $"{uri.Host} is not a public address.";
        if ((uri.IsLoopback || host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) && !o.AllowPrivateTargets) return $"{uri.Host} is this machine.";
        return null;
    }

    public bool Allowed(IPAddress ip) => options.CurrentValue.AllowPrivateTargets || Web.PublicAddress.IsPublic(ip);

    /// <summary>The connection step of the webhook HTTP client: resolves, refuses addresses that are not allowed, connects.</summary>
    public ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct) =>
        Web.PublicAddress.ConnectAsync(context, Allowed, Web.PublicAddress.Resolve, ct);
}

/// <summary>Signs webhook requests: <c>ET-Signature: t={unix seconds},v1={hex HMAC-SHA256 of "{t}.{body}" with the secret}</c>.</summary>
public static class WebhookSignature
{
    public const string Header = "ET-Signature";

    public static string NewSecret() => "whsec_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));

    public static string Sign(string secret, long unixSeconds, string body)
    {
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(unixSeconds.ToString(CultureInfo.InvariantCulture) + "." + body));
        return $"t={unixSeconds.ToString(CultureInfo.InvariantCulture)},v1={Convert.ToHexStringLower(mac)}";
    }

    /// <summary>What a receiver does (the README shows the same): recompute, compare in constant time, refuse old timestamps.</summary>
    public static bool Verify(string secret, string? header, string body, DateTimeOffset now, TimeSpan tolerance)
    {
        if (string.IsNullOrEmpty(header)) return false;
        long? t = null;
        var signatures = new List<string>();
        foreach (var part in header.Split(','))
        {
            var kv = part.Split('=', 2);
            if (kv.Length != 2) continue;
            if (kv[0].Trim() == "t" && long.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ts)) t = ts;
            else if (kv[0].Trim() == "v1") signatures.Add(kv[1].Trim());
        }
        if (t is not { } when || Math.Abs(now.ToUnixTimeSeconds() - when) > tolerance.TotalSeconds) return false;
        var expected = Encoding.ASCII.GetBytes(Sign(secret, when, body).Split("v1=")[1]);
        return signatures.Any(s => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(s), expected));
    }
}

/// <summary>The team's enabled webhooks subscribed to an event type.</summary>
public sealed class WebhookSubscribers(AppDbContext db) : IOutboxSubscribers
{
    public string Kind => WebhookTarget.TargetKind;

    public async Task<IReadOnlyList<Guid>> TargetsAsync(Guid teamId, string eventType, CancellationToken ct)
    {
        var hooks = await db.Webhooks.AsNoTracking().Where(w => w.TeamId == teamId && w.Enabled).Select(w => new { w.Id, w.EventTypes }).ToListAsync(ct);
        return [.. hooks.Where(h => h.EventTypes.Split(',').Contains(eventType)).Select(h => h.Id)];
    }
}

/// <summary>POSTs an event to a webhook, signed; 2xx is delivered, 410 means the endpoint is gone, anything else is tried again.</summary>
public sealed class WebhookTarget(AppDbContext db, IHttpClientFactory http, IDataProtectionProvider protection, TimeProvider clock) : IDeliveryTarget
{
    public const string TargetKind = "webhook";
    public const string HttpClientName = "webhooks";
    public const string ProtectorPurpose = "EmailTracking.Webhooks.Secret.v1";
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public string Kind => TargetKind;

    public async Task<DeliveryResult> DeliverAsync(Guid targetId, OutboxMessage message, CancellationToken ct)
    {
        var hook = await db.Webhooks.AsNoTracking().FirstOrDefaultAsync(w => w.Id == targetId, ct);
        if (hook is null) return new DeliveryResult(DeliveryOutcome.Dead, Detail: "The webhook was deleted.");
        if (!hook.Enabled) return new DeliveryResult(DeliveryOutcome.Skipped, Detail: "The webhook is disabled.");
        string secret;
        try
        {
            secret = protection.CreateProtector(ProtectorPurpose).Unprotect(hook.ProtectedSecret);
        }
        catch (CryptographicException)
        {
            return new DeliveryResult(DeliveryOutcome.Dead, Detail: "The webhook's secret can no longer be read (the server's keys changed); rotate it.");
        }
        var body = JsonSerializer.Serialize(new
        {
            id = message.IdempotencyKey, type = message.Payload.Type, attempt = message.Attempt, createdAt = message.Payload.OccurredAt, data = message.Payload,
        }, Json);
        using var request = new HttpRequestMessage(HttpMethod.Post, hook.Url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add(WebhookSignature.Header, WebhookSignature.Sign(secret, clock.GetUtcNow().ToUnixTimeSeconds(), body));
        request.Headers.Add("ET-Idempotency-Key", message.IdempotencyKey);
        request.Headers.Add("ET-Event-Type", message.Payload.Type);
        request.Headers.UserAgent.Add(new ProductInfoHeaderValue("EmailTracking-Webhooks", "1"));
        try
        {
            using var response = await http.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            var code = (int)response.StatusCode;
            if (response.IsSuccessStatusCode) return new DeliveryResult(DeliveryOutcome.Delivered, code);
            if (code == 410) return new DeliveryResult(DeliveryOutcome.Dead, code, "The receiver says this endpoint is gone (410).");
            var retryAfter = response.Headers.RetryAfter?.Delta ?? (response.Headers.RetryAfter?.Date is { } date ? date - clock.GetUtcNow() : null);
            // 429: the receiver (or a gateway before it) is rate limiting; waiting it out uses up no attempt.
            return new DeliveryResult(code == 429 ? DeliveryOutcome.Limited : DeliveryOutcome.Retry, code,
                $"The receiver answered {code} {response.ReasonPhrase}.", retryAfter);
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return new DeliveryResult(DeliveryOutcome.Retry, Detail: "The receiver did not answer in time.");
        }
        catch (HttpRequestException ex)
        {
            return new DeliveryResult(DeliveryOutcome.Retry, Detail: ex.Message);
        }
    }
}
