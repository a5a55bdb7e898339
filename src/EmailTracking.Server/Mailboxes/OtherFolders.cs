using System.Security.Cryptography;
using System.Text;
using EmailTracking.Data;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// What the IMAP and Graph watches share about the folders they read beside the Inbox and Sent (a folder a rule files
/// answers in): each folder's checkpoint name, and where a folder seen for the first time is read back from.
/// </summary>
public static class OtherFolders
{
    /// <summary>A folder's checkpoint name: the prefix and the folder's key (IMAP: its full name; Graph: its id), or a
    /// hash of the key where that would be longer than a checkpoint name may be.</summary>
    public static string CursorName(string prefix, string key)
    {
        var name = prefix + key;
        if (name.Length <= 200) return name;
        return prefix + "#" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
    }

    /// <summary>
    /// Where a folder without a checkpoint is read back from: a day before the folders were last listed and all read
    /// (IMAP's SINCE compares dates; a folder a rule makes as it files an answer loses nothing), or the look-back when
    /// they never were, or were longer ago than that.
    /// </summary>
    public static DateTimeOffset FirstSince(MailboxCursor? lastListed, DateTimeOffset lookback) =>
        lastListed is null || lastListed.UpdatedAt.AddDays(-1) < lookback ? lookback : lastListed.UpdatedAt.AddDays(-1);
}
