using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Accounts;

/// <summary>
/// The server's own mail (`Mail:*`): the relay through which it sends what is not a user's mail — confirmation mails for
/// addresses, password resets, lock notices and invitations, queued in the database (<see cref="ServerMailQueue"/>). Not a user's connected mailbox: a mail sent through one leaves a copy in that user's Sent folder (Gmail and
/// Microsoft 365 always keep one, most SMTP servers too), and a confirmation link the user can read there proves nothing.
/// </summary>
public sealed class SystemMailOptions
{
    public const string Section = "Mail";

    /// <summary>The sender of the server's mail, e.g. <c>EmailTracking &lt;no-reply@example.com&gt;</c>. Required with a relay.</summary>
    public string? From { get; set; }

    public SmtpRelayOptions Smtp { get; set; } = new();

    /// <summary>How long a mail sent, failed or dropped stays in the queue's table (<see cref="ServerMailQueue"/>) before it is deleted.</summary>
    public TimeSpan KeepFor { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often the queue is looked at for mail another instance queued, or left when it stopped mid-send.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The waits before each new try of a mail the relay did not take for now (<c>Mail:RetryDelays:0</c>, <c>:1</c>, …);
    /// after the last, the mail fails. Unset: <see cref="DefaultRetryDelays"/>.
    /// </summary>
    public TimeSpan[]? RetryDelays { get; set; }

    /// <summary>
    /// Each wait is lengthened by up to this fraction of it, at random (0.2: a 5-minute wait is 5 to 6 minutes), so that
    /// mails that failed together, or instances that share a database, do not all try again at the same moment.
    /// </summary>
    public double RetryJitter { get; set; } = 0.2;

    public static readonly IReadOnlyList<TimeSpan> DefaultRetryDelays =
        [TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(15), TimeSpan.FromMinutes(60)];

    /// <summary>The waits in force.</summary>
    public IReadOnlyList<TimeSpan> Delays => RetryDelays is { Length: > 0 } d ? d : DefaultRetryDelays;

    /// <summary>At most this many tries are waited for; each wait at most a day.</summary>
    public const int MaxRetries = 20;

    public bool Configured => !string.IsNullOrWhiteSpace(Smtp.Host) && AccountService.TryParseAddress(From, out _, out _);

    /// <summary>What is wrong with the retry settings, or null: checked when the server starts.</summary>
    public string? RetryProblem()
    {
        if (RetryDelays is { } d)
        {
            if (d.Length == 0) return "Mail:RetryDelays is empty: give at least one wait (e.g. Mail:RetryDelays:0 = 00:01:00), or leave it out for 1, 5, 15 and 60 minutes.";
            if (d.Length > MaxRetries) return $"Mail:RetryDelays has {d.Length} waits; at most {MaxRetries}.";
            for (var i = 0; i < d.Length; i++)
            {
                if (d[i] <= TimeSpan.Zero || d[i] > TimeSpan.FromDays(1))
                    return $"Mail:RetryDelays:{i} is {d[i]}: each wait is more than zero and at most a day (1.00:00:00).";
            }
        }
        if (double.IsNaN(RetryJitter) || RetryJitter < 0 || RetryJitter > 1)
            return $"Mail:RetryJitter is {RetryJitter.ToString(System.Globalization.CultureInfo.InvariantCulture)}: a fraction from 0 (no spread) to 1 (up to twice each wait).";
        return null;
    }
}

/// <summary>Refuses to start with retry settings that make no sense, saying which and why.</summary>
public sealed class SystemMailOptionsValidation : IValidateOptions<SystemMailOptions>
{
    public ValidateOptionsResult Validate(string? name, SystemMailOptions options) =>
        options.RetryProblem() is { } problem ? ValidateOptionsResult.Fail(problem) : ValidateOptionsResult.Success;
}

public sealed class SmtpRelayOptions
{
    public string? Host { get; set; }
    /// <summary>587 unless given.</summary>
    public int Port { get; set; } = 587;
    /// <summary><c>StartTls</c> (the default; the relay must offer it), <c>SslOnConnect</c> (port 465), <c>StartTlsWhenAvailable</c> or <c>None</c> (a relay on this machine).</summary>
    public string Security { get; set; } = "StartTls";
    public string? Username { get; set; }
    public string? Password { get; set; }
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <param name="temporary">Whether trying again later may succeed: the relay answered 4xx, or could not be reached.</param>
public sealed class SystemMailException(string message, Exception? inner = null, bool temporary = false) : Exception(message, inner)
{
    public bool Temporary => temporary;
}

public interface ISystemMail
{
    /// <summary>Whether this server has a relay (<c>Mail:Smtp:Host</c> and <c>Mail:From</c>).</summary>
    bool Configured { get; }

    /// <summary>The address the server's mail comes from.</summary>
    MailboxAddress? From { get; }

    /// <summary>Sends one message (its From is set here); throws <see cref="SystemMailException"/> saying why it did not go.</summary>
    Task SendAsync(MimeMessage message, CancellationToken ct);
}

/// <summary>Sends through the relay in <see cref="SystemMailOptions"/> with MailKit.</summary>
public sealed class SmtpSystemMail(IOptions<SystemMailOptions> options, ILogger<SmtpSystemMail> log) : ISystemMail
{
    public bool Configured => options.Value.Configured;

    public MailboxAddress? From => options.Value.Configured && MailboxAddress.TryParse(options.Value.From, out var from) ? from : null;

    public async Task SendAsync(MimeMessage message, CancellationToken ct)
    {
        var o = options.Value;
        if (!o.Configured || From is not { } from) throw new SystemMailException("Mail is not configured on this server (Mail:Smtp:Host and Mail:From).");
        message.From.Clear();
        message.From.Add(from);
        var security = Enum.TryParse<SecureSocketOptions>(o.Smtp.Security, ignoreCase: true, out var s) ? s : SecureSocketOptions.StartTls;
        using var smtp = new SmtpClient { Timeout = (int)o.Smtp.Timeout.TotalMilliseconds };
        try
        {
            await smtp.ConnectAsync(o.Smtp.Host!, o.Smtp.Port, security, ct);
            if (!string.IsNullOrEmpty(o.Smtp.Username)) await smtp.AuthenticateAsync(o.Smtp.Username, o.Smtp.Password ?? "", ct);
            await smtp.SendAsync(message, ct);
            await smtp.DisconnectAsync(true, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.LogWarning(ex, "The mail relay {Host}:{Port} did not take a message", o.Smtp.Host, o.Smtp.Port);
            var why = ex switch
            {
                SmtpCommandException c => $"the relay answered {(int)c.StatusCode} {c.Message}",
                AuthenticationException => "the relay refused the server's login",
                _ => "the relay could not be reached",
            };
            // A 4xx answer says to try again later (RFC 5321 4.2.1); a 5xx one or a refused login will not change by itself.
            var temporary = ex switch
            {
                SmtpCommandException c => (int)c.StatusCode < 500,
                AuthenticationException => false,
                _ => true,
            };
            throw new SystemMailException($"The mail could not be sent: {why}. Try again later, or tell your administrator.", ex, temporary);
        }
    }
}
