using System.Text;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Net.Smtp;
using MailKit.Search;
using MailKit.Security;
using MimeKit;
using MimeKit.Utils;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>
/// The real local mail loop that test.sh starts (tests/scripts/mail.sh): Postfix for SMTP and Dovecot for IMAP on
/// loopback, local Unix users as mailboxes, under the domains example.test ("ours") and partner.test ("theirs").
/// Every INBOX is emptied when test.sh starts, but tests share them: a test finds its own mail by a unique
/// Message-ID or subject, never as "the only message in the box".
/// </summary>
public static class MailServer
{
    /// <summary>Sends mail in the product's tests ("our" salesperson); receives the bounces and auto-replies.</summary>
    public const string Sender = "et-sender";
    public const string Alice = "et-alice";
    public const string Bob = "et-bob";
    public const string Carol = "et-carol";

    /// <summary>Answers every message with an out-of-office auto-reply (Sieve vacation, RFC 3834), once per sender a
    /// day: send from a sender of your own (<see cref="UniqueSender"/>) to be sure of a reply.</summary>
    public const string Robot = "et-robot";

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static string SmtpHost => Env("ET_TEST_SMTP_HOST");
    public static int SmtpPort => int.Parse(Env("ET_TEST_SMTP_PORT"), System.Globalization.CultureInfo.InvariantCulture);
    public static string ImapHost => Env("ET_TEST_IMAP_HOST");
    public static int ImapPort => int.Parse(Env("ET_TEST_IMAP_PORT"), System.Globalization.CultureInfo.InvariantCulture);
    public static string Password => Env("ET_TEST_MAIL_PASSWORD");
    public static IReadOnlyList<string> Users => Env("ET_TEST_MAIL_USERS").Split(' ', StringSplitOptions.RemoveEmptyEntries);
    public static string Domain => Env("ET_TEST_MAIL_DOMAIN");
    public static string PartnerDomain => Env("ET_TEST_MAIL_PARTNER_DOMAIN");
    /// <summary>A partner-domain address Postfix refuses for now (450 4.7.1), every time: greylisting that never ends.</summary>
    public static string Greylisted => Env("ET_TEST_MAIL_GREYLISTED") + "@" + PartnerDomain;

    /// <summary>The return date the robot's reply states (as yyyy-mm-dd, and spelled out).</summary>
    public static DateOnly RobotReturn => DateOnly.ParseExact(Env("ET_TEST_MAIL_ROBOT_RETURN"), "yyyy-MM-dd");

    static string Env(string name)
    {
        if (Environment.GetEnvironmentVariable("ET_TEST_MAIL") != "1")
        {
            throw new InvalidOperationException(
                "ET_TEST_MAIL is not set: the local Postfix + Dovecot mail loop is not running. Run the tests through " +
                "./test.sh, which installs and starts it (tests/scripts/mail.sh).");
        }
        return Environment.GetEnvironmentVariable(name)
            ?? throw new InvalidOperationException($"{name} is not set although ET_TEST_MAIL is: run ./test.sh.");
    }

    /// <summary>A test user's address, on example.test unless another local domain is named.</summary>
    public static MailboxAddress Address(string user, string? domain = null) => new(user, $"{user}@{domain ?? Domain}");

    /// <summary>et-sender+unique@example.test: lands in et-sender's INBOX, but is a sender the robot has not answered.</summary>
    public static MailboxAddress UniqueSender() => new(Sender, $"{Sender}+{Guid.NewGuid():N}@{Domain}");

    /// <summary>An address in a local domain that no user has: accepted, then bounced with a DSN.</summary>
    public static MailboxAddress UnknownUser(string? domain = null) =>
        new("Nobody", $"et-nobody-{Guid.NewGuid():N}@{domain ?? Domain}");

    /// <summary>A fresh Message-ID (without angle brackets, as MimeKit shows them).</summary>
    public static string NewMessageId() => MimeUtils.GenerateMessageId(Domain);

    public static string UniqueSubject(string text) => $"{text} {Guid.NewGuid():N}";

    /// <summary>A plain-text message with a fresh Message-ID and subject.</summary>
    public static MimeMessage NewMessage(MailboxAddress from, MailboxAddress to, string subject, string body = "Hello.")
    {
        var message = new MimeMessage
        {
            MessageId = NewMessageId(),
            Subject = subject,
            Date = DateTimeOffset.Now,
            Body = new TextPart("plain") { Text = body },
        };
        message.From.Add(from);
        message.To.Add(to);
        return message;
    }

    /// <summary>A person's answer to a message: Re: its subject, In-Reply-To and References to it, its first line quoted.</summary>
    public static MimeMessage Answer(MimeMessage original, string from, string to, string text)
    {
        var reply = new MimeMessage { MessageId = NewMessageId(), Subject = "Re: " + original.Subject, Date = DateTimeOffset.Now };
        reply.From.Add(MailboxAddress.Parse(from));
        reply.To.Add(MailboxAddress.Parse(to));
        reply.InReplyTo = original.MessageId;
        foreach (var r in original.References) reply.References.Add(r);
        reply.References.Add(original.MessageId!);
        reply.Body = new TextPart("plain") { Text = $"{text}\n\nOn {original.Date:R}, {original.From} wrote:\n> {original.TextBody?.Split('\n')[0]}" };
        return reply;
    }

    /// <summary>Sends over SMTP (envelope sender = From), authenticated as a test user when one is named.</summary>
    public static async Task SendAsync(MimeMessage message, string? authenticateAs = null,
        CancellationToken cancellationToken = default)
    {
        var ct = cancellationToken;
        using var smtp = new SmtpClient();
        await smtp.ConnectAsync(SmtpHost, SmtpPort, SecureSocketOptions.None, ct);
        if (authenticateAs is not null) await smtp.AuthenticateAsync(authenticateAs, Password, ct);
        await smtp.SendAsync(message, ct);
        await smtp.DisconnectAsync(true, ct);
    }

    /// <summary>An IMAP client logged in as a test user (plain IMAP on loopback). The caller disposes it.</summary>
    public static async Task<ImapClient> ConnectImapAsync(string user, CancellationToken ct = default)
    {
        var imap = new ImapClient();
        try
        {
            await imap.ConnectAsync(ImapHost, ImapPort, SecureSocketOptions.None, ct);
            await imap.AuthenticateAsync(user, Password, ct);
            return imap;
        }
        catch
        {
            imap.Dispose();
            throw;
        }
    }

    /// <summary>Waits until the message with this Message-ID is in the user's INBOX, and returns it.</summary>
    public static Task<MimeMessage> WaitForMessageIdAsync(string user, string messageId, TimeSpan? timeout = null) =>
        WaitForMessageAsync(user, SearchQuery.HeaderContains("Message-ID", messageId), m => m.MessageId == messageId,
            $"Message-ID <{messageId}>", timeout);

    /// <summary>Waits until a message that matches is in the user's INBOX (polling over one IMAP connection), and
    /// returns the first. The IMAP search narrows what is fetched; the predicate decides.</summary>
    public static async Task<MimeMessage> WaitForMessageAsync(string user, SearchQuery query, Func<MimeMessage, bool> match,
        string description, TimeSpan? timeout = null)
    {
        var limit = timeout ?? DefaultTimeout;
        using var cts = new CancellationTokenSource(limit);
        var seen = new HashSet<UniqueId>();
        var subjects = new List<string>();
        try
        {
            using var imap = await ConnectImapAsync(user, cts.Token);
            var inbox = imap.Inbox;
            await inbox.OpenAsync(FolderAccess.ReadOnly, cts.Token);
            while (true)
            {
                foreach (var uid in await inbox.SearchAsync(query, cts.Token))
                {
                    if (!seen.Add(uid)) continue;
                    MimeMessage message;
                    try
                    {
                        message = await inbox.GetMessageAsync(uid, cts.Token);
                    }
                    catch (FormatException)
                    {
                        // Another test leaves unparseable mail in shared mailboxes on purpose; it is not ours.
                        subjects.Add("(unparseable)");
                        continue;
                    }
                    if (match(message)) return message;
                    subjects.Add(message.Subject ?? "(no subject)");
                }
                await Task.Delay(250, cts.Token);
                await imap.NoOpAsync(cts.Token); // lets Dovecot report new messages
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            var report = new StringBuilder()
                .Append($"No message with {description} reached {user}'s INBOX within {limit.TotalSeconds:0} s. ")
                .Append(subjects.Count == 0 ? "No other message matched the search." : $"Seen instead: {string.Join(" | ", subjects)}.")
                .AppendLine().Append(PostfixLogTail());
            throw new TimeoutException(report.ToString());
        }
    }

    /// <summary>The end of Postfix's log (deliveries, bounces, the LDA's errors), for failure messages.</summary>
    public static string PostfixLogTail(int lines = 40)
    {
        var dir = Environment.GetEnvironmentVariable("ET_TEST_MAIL_LOGS");
        var file = dir is null ? null : Path.Combine(dir, "postfix.log");
        if (file is null || !File.Exists(file)) return "(no Postfix log)";
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().Split('\n');
            return "postfix.log:\n" + string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException e)
        {
            return $"(Postfix log unreadable: {e.Message})";
        }
    }
}

/// <summary>
/// Tests that use the shared test mailboxes run one after another, so that one test's burst of mail (and the
/// robot's once-a-day memory) does not race another's waits.
/// </summary>
[CollectionDefinition(Name)]
public sealed class MailCollection
{
    public const string Name = "local mail loop";
}
