using System.Buffers;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using EmailTracking.Server.Web;
using MimeKit;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>
/// The parts of a message the rules look at, gathered in one bounded walk of the MIME tree: the report parts, the
/// attached original, and the first <see cref="InboundClassifierOptions.MaxBodyChars"/> characters of body text.
/// </summary>
internal sealed partial class MessageView
{
    private static readonly Encoding Utf8Lenient = new UTF8Encoding(false, false);

    public MimeMessage Message { get; }
    public string Subject { get; }
    public string FromAddress { get; }
    public string FromName { get; }
    /// <summary>The first To address, lower case (parsed on first use: only reports need it).</summary>
    public string ToAddress => toAddress ??= (Message.To.Mailboxes.FirstOrDefault()?.Address ?? "").Trim().ToLowerInvariant();

    private string? toAddress;
    public List<MessageDeliveryStatus> DeliveryStatuses { get; } = [];
    public List<MessageFeedbackReport> FeedbackReports { get; } = [];
    public List<MessageDispositionNotification> DispositionNotifications { get; } = [];

    /// <summary>report-type of the first multipart/report, lower case; null when there is none.</summary>
    public string? ReportType { get; private set; }

    /// <summary>The first attached message/rfc822 or text/rfc822-headers: the message a report is about.</summary>
    public MimeMessage? Original { get; private set; }

    /// <summary>
    /// Body text outside attached messages, HTML reduced to text when there is no plain text; bounded. Decoded on first
    /// use: a delivery report whose fields say it all is never read as text.
    /// </summary>
    public string Text => text ??= BuildText();

    private string? text;

    /// <summary>
    /// Text of parts that hold the original's headers but that MimeKit could not give as a message: encoded
    /// text/rfc822-headers, message/partial, an attached message whose headers ended up in its body, and the raw
    /// delivery-status text (where a wrong boundary leaves the original inside it). For finding its Message-ID.
    /// </summary>
    public string OriginalText => originalText ??= BuildOriginalText();

    private string? originalText;

    private readonly int maxChars;
    private readonly int maxParts;
    private readonly int maxDepth;
    private int visited;
    // What the walk found, read only when asked for: text parts or preamble strings, HTML parts, original-header parts.
    private readonly List<object> plainSources = [];
    private readonly List<TextPart> htmlSources = [];
    private readonly List<(MimePart Part, int Limit)> originalSources = [];

    public MessageView(MimeMessage message, InboundClassifierOptions options)
    {
        Message = message;
        maxChars = Math.Max(1024, options.MaxBodyChars);
        maxParts = Math.Max(1, options.MaxParts);
        maxDepth = Math.Max(1, options.MaxDepth);
        Subject = Clip(message.Subject ?? "", 1000);
        var from = message.From.Mailboxes.FirstOrDefault();
        FromAddress = (from?.Address ?? "").Trim().ToLowerInvariant();
        FromName = Clip(from?.Name ?? "", 200);

        if (message.Body is not null)
            Walk(message.Body, 0);
    }

    private string BuildText()
    {
        // The common case, one text/plain part: its text as it is, without copying it through a builder.
        if (plainSources.Count == 1)
        {
            var only = plainSources[0] is string preamble ? Clip(preamble, maxChars) : ReadText((TextPart)plainSources[0], maxChars);
            if (only.Length > 0)
                return only;
            plainSources.Clear();
        }
        var plain = new StringBuilder();
        foreach (var source in plainSources)
        {
            if (plain.Length >= maxChars)
                break;
            if (plain.Length > 0)
                plain.Append('\n');
            plain.Append(source is string preamble ? Clip(preamble, maxChars - plain.Length) : ReadText((TextPart)source, maxChars - plain.Length));
        }
        if (plain.Length > 0)
            return plain.ToString();
        var html = new StringBuilder();
        foreach (var part in htmlSources)
        {
            if (html.Length >= maxChars)
                break;
            if (html.Length > 0)
                html.Append('\n');
            html.Append(ReadText(part, maxChars - html.Length));
        }
        return HtmlToText(html.ToString(), maxChars);
    }

    private string BuildOriginalText()
    {
        var sb = new StringBuilder();
        foreach (var (part, limit) in originalSources)
        {
            if (sb.Length >= 65536)
                break;
            sb.Append(ReadText(part, limit)).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>The local part of the From address, lower case ("mailer-daemon" for MAILER-DAEMON@host).</summary>
    public string FromLocalPart
    {
        get
        {
            var at = FromAddress.IndexOf('@');
            return at < 0 ? FromAddress : FromAddress[..at];
        }
    }

    /// <summary>
    /// The first value of a header, unfolded and trimmed; null when absent. Content-* headers are looked up on the body
    /// too, where MimeKit keeps them.
    /// </summary>
    public string? Header(string name)
    {
        // Contains is a dictionary lookup, IndexOf a walk over every field: most names asked for are absent.
        var headers = Message.Headers;
        var index = headers.Contains(name) ? headers.IndexOf(name) : -1;
        if (index < 0 && Message.Body is { } body && name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase))
        {
            headers = body.Headers;
            index = headers.Contains(name) ? headers.IndexOf(name) : -1;
        }
        return index < 0 ? null : Clip(headers[index].Value?.Trim() ?? "", 2000);
    }

    public bool HasHeader(string name) => Message.Headers.Contains(name);

    private void Walk(MimeEntity entity, int depth)
    {
        if (++visited > maxParts || depth > maxDepth)
            return;
        switch (entity)
        {
            case MultipartReport report:
                ReportType ??= report.ReportType?.Trim().ToLowerInvariant() ?? "";
                if (report.Count == 0)
                    AppendPlain(report.Preamble);
                foreach (var child in report)
                    Walk(child, depth + 1);
                break;
            case Multipart multipart:
                if (multipart.Count == 0)
                {
                    // A multipart whose boundary lines are missing or wrong: everything it holds is in the preamble.
                    AppendPlain(multipart.Preamble);
                    break;
                }
                foreach (var child in multipart)
                    Walk(child, depth + 1);
                break;
            case MessageDeliveryStatus status:
                DeliveryStatuses.Add(status);
                AppendOriginal(status, 8192);
                break;
            case MessageFeedbackReport feedback:
                FeedbackReports.Add(feedback);
                break;
            case MessageDispositionNotification disposition:
                DispositionNotifications.Add(disposition);
                break;
            case MessagePart attached:
                // Covers message/rfc822, message/global and text/rfc822-headers. Its text is the original's, not the report's.
                Original ??= attached.Message;
                if (attached.Message is { } m && m.Headers.Count == 0 && m.Body is TextPart headersAsBody)
                    AppendOriginal(headersAsBody, 16384);
                break;
            case TextPart headers when headers.ContentType.IsMimeType("text", "rfc822-headers"):
                AppendOriginal(headers, 16384);
                break;
            case MimePart other when other.ContentType.MediaType.Equals("message", StringComparison.OrdinalIgnoreCase):
                // message/partial and other message types MimeKit keeps as plain parts.
                AppendOriginal(other, 16384);
                break;
            case TextPart part when part.IsPlain:
                plainSources.Add(part);
                break;
            case TextPart part when part.IsHtml && !part.IsAttachment:
                htmlSources.Add(part);
                break;
        }
    }

    private void AppendOriginal(MimePart part, int limit) => originalSources.Add((part, limit));

    private void AppendPlain(string? preamble)
    {
        if (!string.IsNullOrEmpty(preamble))
            plainSources.Add(preamble);
    }

    /// <summary>Decodes at most <paramref name="limit"/> characters of a part, whatever its charset claims.</summary>
    private static string ReadText(MimePart part, int limit)
    {
        if (limit <= 0 || part.Content is null)
            return "";
        var encoding = EncodingFor(part.ContentType.Charset);
        // Decoded bytes into a pooled buffer, then one decode: no reader, no per-part buffers to allocate and clear.
        var cap = (int)Math.Min((long)limit * 3 + 16, 1 << 22);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(cap, 16384));
        var length = 0;
        try
        {
            // Content that is not encoded is read where it is stored: Open would copy it through a pass-through
            // filter, with a 4 KiB buffer of its own for each part.
            var content = part.Content;
            var stored = content.Encoding is ContentEncoding.Base64 or ContentEncoding.QuotedPrintable or ContentEncoding.UUEncode
                         || content.Stream is not { CanSeek: true } ? null : content.Stream;
            using var decoding = stored is null ? content.Open() : null;
            var stream = stored ?? decoding!;
            stored?.Seek(0, SeekOrigin.Begin);
            while (length < cap)
            {
                if (length == buffer.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(cap, buffer.Length * 2));
                    Buffer.BlockCopy(buffer, 0, bigger, 0, length);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var read = stream.Read(buffer, length, Math.Min(buffer.Length, cap) - length);
                if (read == 0)
                    break;
                length += read;
            }
            var start = length >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF ? 3 : 0;
            if (start == 3)
                encoding = Utf8Lenient;
            var text = encoding.GetString(buffer, start, length - start);
            return text.Length > limit ? text[..limit] : text;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Encoding> Encodings = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The encoding a charset name stands for; UTF-8 (lenient) for none or an unknown one. Looked up once per name.</summary>
    private static Encoding EncodingFor(string? charset)
    {
        if (string.IsNullOrWhiteSpace(charset) || charset.Length > 64)
            return Utf8Lenient;
        if (Encodings.TryGetValue(charset, out var cached))
            return cached;
        Encoding? encoding = null;
        try
        {
            // MimeKit knows the aliases mail uses ("utf8", "latin1", …); the code-page provider knows the legacy
            // charsets of Japanese, Korean and Chinese servers (ISO-2022-JP, Shift_JIS, EUC-KR, GB2312…). The provider is
            // asked directly rather than registered for the process, which would slow every lookup MimeKit makes.
            encoding = new ContentType("text", "plain") { Charset = charset }.CharsetEncoding
                       ?? CodePagesEncodingProvider.Instance.GetEncoding(charset.Trim().Trim('"'));
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or FormatException)
        {
        }
        encoding ??= Utf8Lenient;
        // Bounded: a flood of made-up charset names does not grow the cache for ever.
        if (Encodings.Count < 512)
            Encodings.TryAdd(charset, encoding);
        return encoding;
    }

    public static string Clip(string value, int max) => TextClip.Prefix(value, max);

    /// <summary>A plain rendering of HTML good enough for matching phrases: block ends become line breaks, tags go.</summary>
    public static string HtmlToText(string html, int maxChars)
    {
        if (html.Length == 0)
            return "";
        var text = DropInvisibleBlocks(html);
        text = HtmlLineBreaks().Replace(text, "\n");
        text = DropTags(text);
        text = WebUtility.HtmlDecode(text).Replace('\u00a0', ' ');
        text = SqueezeBlankLines(text);
        return Clip(text, maxChars);
    }

    /// <summary>
    /// Removes script, style and head elements with their content, scanning once: a regex with a lazy ".*?" would go
    /// back over the rest of the text for every opening tag that is never closed.
    /// </summary>
    private static string DropInvisibleBlocks(string html)
    {
        var sb = new StringBuilder(html.Length);
        var position = 0;
        while (position < html.Length)
        {
            var open = html.IndexOf('<', position);
            if (open < 0)
                break;
            var name = InvisibleElementAt(html, open);
            if (name is null)
            {
                sb.Append(html, position, open + 1 - position);
                position = open + 1;
                continue;
            }
            sb.Append(html, position, open - position).Append(' ');
            var close = html.IndexOf("</" + name, open + 1, StringComparison.OrdinalIgnoreCase);
            if (close < 0)
                return sb.ToString(); // never closed: the rest is inside it
            var end = html.IndexOf('>', close);
            position = end < 0 ? html.Length : end + 1;
        }
        if (position < html.Length)
            sb.Append(html, position, html.Length - position);
        return sb.ToString();
    }

    /// <summary>
    /// Removes every tag: a '&lt;' whose first '&gt;' after it comes within 2,000 characters, through that '&gt;' (what
    /// the pattern <c>&lt;[^&gt;]{0,2000}&gt;</c> removes). A scan with IndexOf: the pattern, tried at each '&lt;', cost
    /// most of the time of a long HTML-only message.
    /// </summary>
    private static string DropTags(string text)
    {
        var sb = new StringBuilder(text.Length);
        var copied = 0;
        var search = 0;
        while (search < text.Length)
        {
            var open = text.IndexOf('<', search);
            if (open < 0)
                break;
            var close = text.AsSpan(open + 1, Math.Min(2001, text.Length - open - 1)).IndexOf('>');
            if (close < 0)
            {
                search = open + 1;
                continue;
            }
            sb.Append(text, copied, open - copied);
            copied = search = open + 1 + close + 1;
        }
        return sb.Append(text, copied, text.Length - copied).ToString();
    }

    /// <summary>
    /// Makes every run of blank lines one empty line: a run of spaces, tabs, carriage returns and line breaks that starts
    /// with a line break and holds two or more becomes "\n\n" (what the pattern <c>\n[ \t\r]*(\n[ \t\r]*)+</c> does).
    /// </summary>
    private static string SqueezeBlankLines(string text)
    {
        var sb = new StringBuilder(text.Length);
        var copied = 0;
        var search = 0;
        while (search < text.Length)
        {
            var start = text.IndexOf('\n', search);
            if (start < 0)
                break;
            var end = start + 1;
            var breaks = 1;
            for (; end < text.Length && text[end] is ' ' or '\t' or '\r' or '\n'; end++)
            {
                if (text[end] == '\n')
                    breaks++;
            }
            if (breaks >= 2)
            {
                sb.Append(text, copied, start - copied).Append("\n\n");
                copied = end;
            }
            search = end;
        }
        return sb.Append(text, copied, text.Length - copied).ToString();
    }

    private static readonly string[] InvisibleElements = ["script", "style", "head"];

    private static string? InvisibleElementAt(string html, int index)
    {
        foreach (var name in InvisibleElements)
        {
            var after = index + 1 + name.Length;
            if (after <= html.Length && string.Compare(html, index + 1, name, 0, name.Length, StringComparison.OrdinalIgnoreCase) == 0
                && (after == html.Length || !char.IsLetterOrDigit(html[after])))
                return name;
        }
        return null;
    }

    [GeneratedRegex(@"<\s*(br|/p|/div|/tr|/li|/h[1-6]|/blockquote|p|div|tr|li|blockquote)\b[^>]*>", RegexOptions.IgnoreCase)]
    private static partial Regex HtmlLineBreaks();
}
