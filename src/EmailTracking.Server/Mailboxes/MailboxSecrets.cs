using System.Text.Json;
using MailKit.Security;
using Microsoft.AspNetCore.DataProtection;

namespace EmailTracking.Server.Mailboxes;

/// <summary>How a connection to a mail server is secured.</summary>
public enum MailSecurity
{
    /// <summary>TLS from the first byte (IMAPS 993, SMTPS 465).</summary>
    Tls = 0,
    /// <summary>Plain connection upgraded with STARTTLS, which must succeed (IMAP 143, submission 587).</summary>
    StartTls = 1,
    /// <summary>No encryption at all: only for servers on the same machine or network.</summary>
    None = 2,
}

public sealed record ServerEndpoint(string Host, int Port, MailSecurity Security)
{
    public SecureSocketOptions SocketOptions => Security switch
    {
        MailSecurity.Tls => SecureSocketOptions.SslOnConnect,
        MailSecurity.StartTls => SecureSocketOptions.StartTls,
        _ => SecureSocketOptions.None,
    };
}

/// <summary>What an IMAP/SMTP connection needs to log in. Stored only encrypted.</summary>
public sealed record ImapSmtpSecret(ServerEndpoint Imap, ServerEndpoint Smtp, string Username, string Password,
    string? SmtpUsername = null, string? SmtpPassword = null);

/// <summary>
/// Encrypts and decrypts mailbox credentials with ASP.NET Core Data Protection. Each kind of mailbox keeps its own
/// record type (IMAP logins, OAuth refresh tokens), serialized as JSON before it is encrypted.
/// </summary>
public sealed class MailboxSecrets(IDataProtectionProvider provider)
{
    readonly IDataProtector protector = provider.CreateProtector("EmailTracking.Mailboxes.Secret.v1");

    public string Protect<T>(T secret) => protector.Protect(JsonSerializer.Serialize(secret));

    public ImapSmtpSecret? UnprotectImap(string protectedSecret) => Unprotect<ImapSmtpSecret>(protectedSecret);

    /// <summary>Null when the secret cannot be decrypted (keys lost or rotated out): the mailbox must be reconnected.</summary>
    public T? Unprotect<T>(string protectedSecret) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(protector.Unprotect(protectedSecret));
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
