using System.IO.Compression;
using System.Text;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// A file to attach, as the send API takes it: its name and its bytes (base64 in the JSON). A content type the
/// caller gives is not trusted: the type is told from the bytes (<see cref="Attachments.Check"/>).
/// </summary>
public sealed record AttachmentRequest(string? FileName, byte[]? Content, string? ContentType = null);

/// <summary>A checked attachment: a name safe to put in a header and the type its bytes show.</summary>
public sealed record OutgoingAttachment(string FileName, string MediaType, byte[] Content);

/// <summary>
/// Checks the files of a send before anything is registered: the total size (Mailboxes:MaxAttachmentBytes, 25 MB as
/// Gmail and Outlook allow), names without paths or control characters, the type told from the content, and the
/// types Gmail and Outlook refuse to send (programs and scripts, also inside a zip, or bytes that are a program
/// whatever the name says), each refusal naming the file and why.
/// </summary>
public static class Attachments
{
    public const int MaxFiles = 100;
    const int MaxNameLength = 200;

    /// <summary>
    /// The extensions Gmail blocks (support.google.com/mail/answer/6590) and Outlook blocks (the Level 1 list), the
    /// ones that run code when opened.
    /// </summary>
    static readonly HashSet<string> Blocked = new(StringComparer.OrdinalIgnoreCase)
    {
        ".ade", ".adp", ".apk", ".app", ".application", ".appref-ms", ".appx", ".appxbundle", ".asp", ".aspx", ".asx", ".bas", ".bat",
        ".bgi", ".cab", ".cer", ".chm", ".cmd", ".cnt", ".com", ".cpl", ".crt", ".csh", ".der", ".diagcab", ".diagcfg", ".diagpack",
        ".dll", ".dmg", ".ex", ".ex_", ".exe", ".fxp", ".gadget", ".grp", ".hlp", ".hpj", ".hta", ".htc", ".img", ".inf", ".ins",
        ".iso", ".isp", ".its", ".jar", ".jnlp", ".js", ".jse", ".ksh", ".lib", ".lnk", ".mad", ".maf", ".mag", ".mam", ".maq",
        ".mar", ".mas", ".mat", ".mau", ".mav", ".maw", ".mcf", ".mda", ".mdb", ".mde", ".mdt", ".mdw", ".mdz", ".msc", ".msh",
        ".msh1", ".msh2", ".mshxml", ".msh1xml", ".msh2xml", ".msi", ".msix", ".msixbundle", ".msp", ".mst", ".msu", ".nsh",
        ".ops", ".osd", ".pcd", ".pif", ".pl", ".plg", ".prf", ".prg", ".printerexport", ".ps1", ".ps1xml", ".ps2", ".ps2xml",
        ".psc1", ".psc2", ".psd1", ".psdm1", ".pst", ".py", ".pyc", ".pyo", ".pyw", ".pyz", ".pyzw", ".reg", ".scf", ".scr",
        ".sct", ".settingcontent-ms", ".shb", ".shs", ".sys", ".theme", ".tmp", ".udl", ".url", ".vb", ".vbe", ".vbp", ".vbs",
        ".vhd", ".vhdx", ".vsmacros", ".vsw", ".vxd", ".webpnp", ".website", ".ws", ".wsb", ".wsc", ".wsf", ".wsh", ".xbap",
        ".xll", ".xnk",
    };

    /// <summary>The attachments as they go, or the problems (each naming its file); none given is none.</summary>
    public static (List<OutgoingAttachment> Files, string[]? Errors) Check(IReadOnlyList<AttachmentRequest>? files, long maxBytes)
    {
        var checkedFiles = new List<OutgoingAttachment>();
        if (files is null || files.Count == 0) return (checkedFiles, null);
        if (files.Count > MaxFiles) return (checkedFiles, [$"At most {MaxFiles} attachments."]);
        var errors = new List<string>();
        long total = 0;
        for (var i = 0; i < files.Count; i++)
        {
            var file = files[i];
            var name = SafeName(file?.FileName, i);
            if (file?.Content is not { } bytes)
            {
                errors.Add($"{name}: the file's content is missing (\"content\", base64).");
                continue;
            }
            total += bytes.LongLength;
            if (total > maxBytes)
            {
                errors.Add($"{name} takes the attachments past {Size(maxBytes)} in all ({Size(total)} with it); send fewer or smaller files, or share a tracked document link instead.");
                break;
            }
            var (type, danger) = Sniff(name, bytes);
            if (danger is not null)
            {
                errors.Add($"{name} is refused: {danger} Gmail and Outlook block such files because they can run code; zip it with a password or share it another way.");
                continue;
            }
            checkedFiles.Add(new OutgoingAttachment(name, type, bytes));
        }
        return errors.Count > 0 ? ([], [.. errors]) : (checkedFiles, null);
    }

    /// <summary>"12.3 MB": the unit a mail client shows (1 MB = 1024 × 1024 bytes, as Gmail and Outlook count).</summary>
    public static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} bytes",
        < 1024 * 1024 => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.#} KB"),
        _ => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / 1024.0 / 1024.0:0.#} MB"),
    };

    /// <summary>
    /// The name as it may go in a header: the last part of a path (either slash), no control or format characters,
    /// no leading dots or trailing dots and spaces (Windows drops them, so "a.exe." is an .exe), at most 200 characters
    /// keeping the extension. Nothing left: "attachment-N".
    /// </summary>
    public static string SafeName(string? given, int index)
    {
        var name = (given ?? "").Replace('\\', '/');
        name = name[(name.LastIndexOf('/') + 1)..];
        var clean = new StringBuilder(name.Length);
        foreach (var rune in name.EnumerateRunes())
        {
            var category = Rune.GetUnicodeCategory(rune);
            if (category is System.Globalization.UnicodeCategory.Control or System.Globalization.UnicodeCategory.Format
                or System.Globalization.UnicodeCategory.Surrogate or System.Globalization.UnicodeCategory.OtherNotAssigned
                or System.Globalization.UnicodeCategory.LineSeparator or System.Globalization.UnicodeCategory.ParagraphSeparator) continue;
            if (rune.Value is '"' or '<' or '>' or ':' or '|' or '?' or '*') { clean.Append('_'); continue; }
            clean.Append(rune.ToString());
        }
        name = clean.ToString().Trim().TrimStart('.').TrimEnd('.', ' ');
        if (name.Length > MaxNameLength)
        {
            var ext = Path.GetExtension(name);
            if (ext.Length > 20) ext = "";
            name = name[..(MaxNameLength - ext.Length)].TrimEnd() + ext;
        }
        return name.Length == 0 ? $"attachment-{index + 1}" : name;
    }

    /// <summary>
    /// The media type the bytes show, and why the file is refused when it is a program: by its name's extension, by
    /// its bytes (a Windows, Linux or Mac program, or a script with #!), or by the names inside a zip. What is not
    /// recognised goes as application/octet-stream, never as the type the client said.
    /// </summary>
    public static (string MediaType, string? Danger) Sniff(string name, byte[] bytes)
    {
        var ext = Path.GetExtension(name);
        if (Blocked.Contains(ext)) return ("application/octet-stream", $"{ext} files are programs or scripts.");
        ReadOnlySpan<byte> b = bytes;
        if (b.StartsWith("MZ"u8)) return ("application/octet-stream", "its content is a Windows program, whatever its name says.");
        if (b.StartsWith("\u007fELF"u8)) return ("application/octet-stream", "its content is a Linux program, whatever its name says.");
        if (b.Length >= 4 && (b[..4].SequenceEqual(new byte[] { 0xCF, 0xFA, 0xED, 0xFE }) || b[..4].SequenceEqual(new byte[] { 0xCE, 0xFA, 0xED, 0xFE })
            || b[..4].SequenceEqual(new byte[] { 0xCA, 0xFE, 0xBA, 0xBE })))
            return ("application/octet-stream", "its content is a Mac program, whatever its name says.");
        if (b.StartsWith("#!"u8)) return ("application/octet-stream", "its content is a script (#!), whatever its name says.");
        if (b.StartsWith("%PDF-"u8)) return ("application/pdf", null);
        if (b.StartsWith(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A })) return ("image/png", null);
        if (b.StartsWith(new byte[] { 0xFF, 0xD8, 0xFF })) return ("image/jpeg", null);
        if (b.StartsWith("GIF87a"u8) || b.StartsWith("GIF89a"u8)) return ("image/gif", null);
        if (b.Length >= 12 && b.StartsWith("RIFF"u8) && b[8..12].SequenceEqual("WEBP"u8)) return ("image/webp", null);
        if (b.StartsWith(new byte[] { 0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1 }))
        {
            // An OLE compound file: Word, Excel or PowerPoint 97, told apart by the extension only (their streams say the same).
            return (ext.ToLowerInvariant() switch
            {
                ".doc" => "application/msword",
                ".xls" => "application/vnd.ms-excel",
                ".ppt" => "application/vnd.ms-powerpoint",
                ".msg" => "application/vnd.ms-outlook",
                _ => "application/octet-stream",
            }, null);
        }
        if (b.StartsWith("PK\u0003\u0004"u8) || b.StartsWith("PK\u0005\u0006"u8)) return Zip(bytes);
        if (LooksLikeText(b)) return (ext.ToLowerInvariant() switch
        {
            ".csv" => "text/csv",
            ".ics" => "text/calendar",
            ".vcf" => "text/vcard",
            _ => "text/plain",
        }, null);
        return ("application/octet-stream", null);
    }

    /// <summary>A zip: an Office 2007+ document by its parts, else an archive whose entries must not be programs either.</summary>
    static (string, string?) Zip(byte[] bytes)
    {
        try
        {
            using var zip = new ZipArchive(new MemoryStream(bytes, writable: false), ZipArchiveMode.Read);
            var names = zip.Entries.Take(10_000).Select(e => e.FullName).ToList();
            if (names.Contains("[Content_Types].xml"))
            {
                if (names.Any(n => n.StartsWith("word/", StringComparison.Ordinal))) return ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", null);
                if (names.Any(n => n.StartsWith("xl/", StringComparison.Ordinal))) return ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", null);
                if (names.Any(n => n.StartsWith("ppt/", StringComparison.Ordinal))) return ("application/vnd.openxmlformats-officedocument.presentationml.presentation", null);
            }
            if (names.FirstOrDefault(n => Blocked.Contains(Path.GetExtension(n.TrimEnd('/')))) is { } inside)
                return ("application/zip", $"the archive holds {SafeName(inside, 0)}, a program or script.");
            return ("application/zip", null);
        }
        catch (InvalidDataException)
        {
            return ("application/octet-stream", null);
        }
    }

    /// <summary>UTF-8 without NUL or other control characters than tab and line breaks (in the first 64 KB).</summary>
    static bool LooksLikeText(ReadOnlySpan<byte> b)
    {
        var head = b[..Math.Min(b.Length, 64 * 1024)];
        if (head.Length == 0) return true;
        // A multi-byte character cut at the end of the head is not an error.
        var status = System.Text.Unicode.Utf8.ToUtf16(head, new char[head.Length], out _, out _, replaceInvalidSequences: false, isFinalBlock: head.Length == b.Length);
        if (status is System.Buffers.OperationStatus.InvalidData) return false;
        foreach (var c in head)
        {
            if (c < 0x20 && c is not (byte)'\t' and not (byte)'\n' and not (byte)'\r' and not 0x0C) return false;
        }
        return true;
    }
}
