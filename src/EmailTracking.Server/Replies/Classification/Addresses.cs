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
        or "mail-delivery-system" or "mailer" or "daemon" or "bounce" or "bounces" or "mail-delivery" or "ndr"
        // Mailing list managers answer for the list: "list-admin", "owner-list", "list-owner".
        || localPart.EndsWith("-admin", StringComparison.Ordinal) || localPart.EndsWith("-owner", StringComparison.Ordinal)
        || localPart.StartsWith("owner-", StringComparison.Ordinal);

    [GeneratedRegex(@"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*")]
    public static partial Regex Email();
}
