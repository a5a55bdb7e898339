using System.Text;
using System.Text.RegularExpressions;
using EmailTracking.Server.Accounts;

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

    /// <summary>
    /// The pattern that finds addresses in this text: ASCII addresses in ASCII text (most reports, and the fast path);
    /// in other text, internationalised addresses too (SMTPUTF8 / EAI: "用户@例子.广告", "josé@exämple.de").
    /// </summary>
    public static Regex Email(string text) => Ascii.IsValid(text) ? AsciiEmail() : UnicodeEmail();

    /// <summary>
    /// The form by which two addresses are compared: <see cref="AccountService.AddressKey"/> (lower case, the domain in
    /// Unicode, so that "bob@xn--exmple-cua.de" and "bob@exämple.de" are one mailbox); the address itself when its
    /// punycode cannot be decoded.
    /// </summary>
    public static string Key(string address)
    {
        try
        {
            return AccountService.AddressKey(address);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            return address;
        }
    }

    [GeneratedRegex(@"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*")]
    private static partial Regex AsciiEmail();

    // An internationalised address where the text around it does not run into it: nothing that could be part of an
    // address just before it or just after its domain. Each part (the local part, each label of the domain) is written
    // either in Latin letters (ASCII and Latin-1 to Latin Extended-B: "josé", "exämple") or in other scripts' letters
    // and digits ("用户", "例子", "пример"), not both: Japanese text runs into an ASCII address without a space
    // ("宛先user@example.jpへの"), and then only the ASCII address is meant (the second alternative). The domain is
    // atomic: read as far as it goes, it is not shortened to end before such text.
    [GeneratedRegex(@"(?<![\p{L}\p{M}\p{N}!#$%&'*+/=?^_`{|}~.-])" +
        @"(?:[A-Za-z0-9\u00C0-\u024F!#$%&'*+/=?^_`{|}~.-]{1,64}|(?:[\p{L}\p{M}\p{N}-[\x00-\u024F]]|[0-9._+-]){1,64})@" +
        @"(?>" + Label + @"(?:\." + Label + @")*)(?![\p{L}\p{M}\p{N}_@-])|" +
        @"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*")]
    private static partial Regex UnicodeEmail();

    private const string Label = @"(?:[A-Za-z0-9\u00C0-\u024F](?:[A-Za-z0-9\u00C0-\u024F-]{0,62}[A-Za-z0-9\u00C0-\u024F])?|(?:[\p{L}\p{M}\p{N}-[\x00-\u024F]]|[0-9-]){1,63})";
}
