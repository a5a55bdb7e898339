using System.Text.RegularExpressions;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>Finding email addresses in free text.</summary>
internal static partial class Addresses
{
    /// <summary>Lower case, without surrounding brackets, quotes or a trailing dot.</summary>
    public static string Clean(string address) => address.Trim().Trim(CleanTrim).ToLowerInvariant();

    private static readonly char[] CleanTrim = ['<', '>', '"', '\'', '.', ',', ';', ':'];

    /// <summary>Local parts of the addresses mail systems send reports from.</summary>
    public static bool IsSystemMailbox(string localPart) => localPart is "mailer-daemon" or "mailer_daemon" or "mailerdaemon"
        or "postmaster" or "post_master" or "mail-daemon" or "maildaemon" or "mdaemon" or "mail.delivery.system"
        or "mail-delivery-system" or "mailer" or "daemon" or "bounce" or "bounces" or "mail-delivery" or "ndr";

    /// <summary>
    /// Whether a mailing-list manager sent the message: a local part in the shape they answer for a list from
    /// ("list-admin", "list-owner", "owner-list") and the list headers they put on their mail. People have such
    /// addresses too (it-admin@, product-owner@), so the shape alone says nothing.
    /// </summary>
    public static bool IsListManager(string localPart, MimeKit.HeaderList headers) =>
        (localPart.EndsWith("-admin", StringComparison.Ordinal) || localPart.EndsWith("-owner", StringComparison.Ordinal)
         || localPart.StartsWith("owner-", StringComparison.Ordinal))
        && HasListHeaders(headers);

    private static readonly string[] ListHeaders =
        ["List-Id", "List-Unsubscribe", "List-Subscribe", "List-Help", "List-Post", "List-Owner", "Mailing-List", "X-Mailman-Version",
         "X-MLServer", "X-ML-Name", "X-ML-Info", "X-Mailing-List", "X-Loop"];

    /// <summary>Whether a message carries a mailing-list manager's header fields (RFC 2369/2919, Mailman, ezmlm, fml).</summary>
    private static bool HasListHeaders(MimeKit.HeaderList headers)
    {
        foreach (var name in ListHeaders)
        {
            if (headers.Contains(name))
                return true;
        }
        return false;
    }

    [GeneratedRegex(@"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*")]
    public static partial Regex Email();
}
