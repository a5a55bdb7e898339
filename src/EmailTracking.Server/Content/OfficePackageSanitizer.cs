using System.IO.Compression;
using System.Xml;
using System.Xml.Linq;

namespace EmailTracking.Server.Content;

/// <summary>
/// Rewrites a Word or PowerPoint 2007+ package (any of its variants: .docx, .docm, .dotx, .pptx, .pptm, .potx, …)
/// before LibreOffice sees it, so that it refers to nothing outside itself. LibreOffice fetches the target of an
/// external relationship when a picture (<c>a:blip r:link</c>), a linked OLE object, a video or sound, a template or a
/// sub-document points at it — over HTTP from the server's network, or from the server's own files with file://.
/// Every relationship whose target is outside the package is dropped from every <c>.rels</c> part, except a hyperlink
/// that only hyperlinks refer to (a link in the PDF, never fetched). The type alone is not trusted: LibreOffice loads a
/// picture from whatever relationship its <c>r:link</c> names, hyperlink or not. Every other entry is copied as is.
/// The uploaded file itself is kept as uploaded; only the copy that is converted is rewritten.
/// </summary>
public static class OfficePackageSanitizer
{
    public sealed record Result(int Dropped, int KeptHyperlinks);

    /// <summary>
    /// Largest relationships part taken. A part is read whole to be rewritten, in the server's own process. Real ones
    /// hold a few KB (a long document with thousands of hyperlinks, a megabyte or so), but one of random ids packs
    /// only about 10:1, so a 50 MB upload could carry a 500 MB part past the zip-bomb limits, several GB once read.
    /// </summary>
    public const long MaxRelationshipsBytes = 4L * 1024 * 1024;

    /// <summary>A part larger than anything a real document holds; its message says which, for the uploader.</summary>
    public sealed class PartTooLargeException(string message) : Exception(message);

    const string PackageRelationships = "http://schemas.openxmlformats.org/package/2006/relationships";

    /// <summary>The namespaces of <c>r:id</c>, <c>r:link</c>, <c>r:embed</c>… (transitional and strict OOXML).</summary>
    static readonly HashSet<string> ReferenceNamespaces =
    [
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        "http://purl.oclc.org/ooxml/officeDocument/relationships",
    ];

    static readonly HashSet<string> HyperlinkTypes =
    [
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink",
        "http://purl.oclc.org/ooxml/officeDocument/relationships/hyperlink",
    ];

    /// <summary>The elements through which a relationship is only a clickable link (Word's and DrawingML's).</summary>
    static readonly HashSet<string> HyperlinkElements = ["hyperlink", "hlinkClick", "hlinkHover", "hlinkMouseOver"];

    /// <summary>Writes the rewritten package to <paramref name="output"/>.</summary>
    /// <exception cref="InvalidDataException">The package cannot be read safely (damaged zip or relationships part,
    /// or two entries with one name, which readers resolve differently).</exception>
    /// <exception cref="PartTooLargeException">A relationships part unpacks to more than <see cref="MaxRelationshipsBytes"/>.</exception>
    public static Result Sanitize(string input, string output)
    {
        using var source = ZipFile.OpenRead(input);
        var byName = new Dictionary<string, ZipArchiveEntry>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in source.Entries)
        {
            var name = Normalize(entry.FullName);
            if (name.Length > 0 && !byName.TryAdd(name, entry))
                throw new InvalidDataException($"The package holds two parts named {entry.FullName}.");
        }

        int dropped = 0, kept = 0;
        using var target = ZipFile.Open(output, ZipArchiveMode.Create);
        foreach (var entry in source.Entries)
        {
            var copy = target.CreateEntry(entry.FullName, CompressionLevel.Fastest);
            copy.LastWriteTime = entry.LastWriteTime;
            using var to = copy.Open();
            if (Normalize(entry.FullName).EndsWith(".rels", StringComparison.OrdinalIgnoreCase))
            {
                var rels = Load(entry) ?? throw new InvalidDataException($"The relationships part {entry.FullName} cannot be read.");
                // Only a part with an outside hyperlink needs reading (streamed: a document part can be large).
                var references = HasOutsideHyperlink(rels) ? References(SourcePart(entry.FullName, byName)) : null;
                var (d, k) = Rewrite(rels, references);
                dropped += d;
                kept += k;
                rels.Save(to, SaveOptions.DisableFormatting);
            }
            else
            {
                using var from = entry.Open();
                from.CopyTo(to);
            }
        }
        return new(dropped, kept);
    }

    /// <summary>
    /// A part's name as a reader might resolve it ("word//./document.xml" is "word/document.xml"), so that a decoy
    /// under another spelling of a name counts as a second part of that name.
    /// </summary>
    static string Normalize(string name)
    {
        var segments = new List<string>();
        foreach (var segment in name.Replace('\\', '/').Split('/'))
        {
            if (segment is "" or ".") continue;
            if (segment == "..") { if (segments.Count > 0) segments.RemoveAt(segments.Count - 1); continue; }
            segments.Add(segment);
        }
        return string.Join('/', segments);
    }

    /// <summary>"word/_rels/document.xml.rels" describes "word/document.xml"; "_rels/.rels" the package itself.</summary>
    static ZipArchiveEntry? SourcePart(string relsName, Dictionary<string, ZipArchiveEntry> byName)
    {
        var name = Normalize(relsName);
        var slash = name.LastIndexOf('/');
        var folder = slash < 0 ? "" : name[..slash];
        var file = name[(slash + 1)..];
        if (!folder.Equals("_rels", StringComparison.OrdinalIgnoreCase) && !folder.EndsWith("/_rels", StringComparison.OrdinalIgnoreCase)) return null;
        var parent = folder[..^"_rels".Length];
        var part = parent + file[..^".rels".Length];
        return part.Length == 0 ? null : byName.GetValueOrDefault(part);
    }

    /// <summary>
    /// For each relationship id, the local names of the elements whose relationship attributes name it; null when the
    /// part cannot be read as XML (then no external relationship of it is kept).
    /// </summary>
    static Dictionary<string, HashSet<string>>? References(ZipArchiveEntry? part)
    {
        if (part is null) return null;
        // Matched loosely (case, spaces): a near-miss counts as a reference, which only ever drops more.
        var found = new Dictionary<string, HashSet<string>>(StringComparer.OrdinalIgnoreCase);
        try
        {
            using var stream = part.Open();
            using var reader = XmlReader.Create(stream, ReaderSettings);
            while (reader.Read())
            {
                if (reader.NodeType != XmlNodeType.Element || !reader.HasAttributes) continue;
                var element = reader.LocalName;
                while (reader.MoveToNextAttribute())
                {
                    if (!ReferenceNamespaces.Contains(reader.NamespaceURI)) continue;
                    var id = reader.Value.Trim();
                    if (!found.TryGetValue(id, out var names)) found[id] = names = [];
                    names.Add(element);
                }
                reader.MoveToElement();
            }
            return found;
        }
        catch (Exception e) when (e is XmlException or InvalidDataException or IOException)
        {
            return null;
        }
    }

    static bool HasOutsideHyperlink(XDocument rels) =>
        rels.Root?.Elements(XName.Get("Relationship", PackageRelationships))
            .Any(r => HyperlinkTypes.Contains((string?)r.Attribute("Type") ?? "") && PointsOutside(r)) == true;

    static (int Dropped, int Kept) Rewrite(XDocument rels, Dictionary<string, HashSet<string>>? references)
    {
        int dropped = 0, kept = 0;
        var relationships = rels.Root?.Elements(XName.Get("Relationship", PackageRelationships)).ToList() ?? [];
        foreach (var r in relationships)
        {
            var id = ((string?)r.Attribute("Id") ?? "").Trim();
            var type = (string?)r.Attribute("Type") ?? "";
            if (!PointsOutside(r)) continue;
            var onlyLinks = HyperlinkTypes.Contains(type) && references is not null
                && (!references.TryGetValue(id, out var by) || by.All(HyperlinkElements.Contains));
            if (onlyLinks)
            {
                kept++;
                continue;
            }
            r.Remove();
            dropped++;
        }
        // Anything else in a relationships part (LibreOffice reads Relationship elements only) goes too.
        foreach (var other in rels.Root?.Elements().Where(e => e.Name != XName.Get("Relationship", PackageRelationships)).ToList() ?? []) other.Remove();
        return (dropped, kept);
    }

    /// <summary>External by its mode, or a target that is a URI of its own (a part's name is a path in the package).</summary>
    static bool PointsOutside(XElement relationship)
    {
        var mode = ((string?)relationship.Attribute("TargetMode"))?.Trim();
        if (string.Equals(mode, "External", StringComparison.OrdinalIgnoreCase)) return true;
        var target = ((string?)relationship.Attribute("Target"))?.Trim() ?? "";
        var colon = target.IndexOf(':');
        var firstSlash = target.IndexOfAny(['/', '\\']);
        // "file:…", "http:…", "smb:…", "vnd.sun.star.…:" — a scheme before any path separator.
        return colon > 0 && (firstSlash < 0 || colon < firstSlash);
    }

    static readonly XmlReaderSettings ReaderSettings = new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        MaxCharactersInDocument = 512L * 1024 * 1024,
    };

    /// <summary>
    /// Reads a relationships part as XML without a DTD (nothing declared, nothing resolved); null if it is not
    /// well-formed. Its size is counted as it unpacks: the size the zip's directory states can lie.
    /// </summary>
    static XDocument? Load(ZipArchiveEntry entry)
    {
        PartTooLargeException TooLarge() => new(
            $"Its part {entry.FullName} (the list of what the document links to) is larger than {MaxRelationshipsBytes / (1024 * 1024)} MB, " +
            "where a real document's holds a few KB.");
        if (entry.Length > MaxRelationshipsBytes) throw TooLarge();
        try
        {
            using var stream = new CappedStream(entry.Open(), MaxRelationshipsBytes, TooLarge);
            using var reader = XmlReader.Create(stream, ReaderSettings);
            return XDocument.Load(reader);
        }
        catch (Exception e) when (e is XmlException or InvalidDataException or IOException)
        {
            return null;
        }
    }

    /// <summary>Reads through to <paramref name="inner"/> and throws what <paramref name="over"/> makes once more than <paramref name="limit"/> bytes came out.</summary>
    sealed class CappedStream(Stream inner, long limit, Func<Exception> over) : Stream
    {
        long read;

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override int Read(Span<byte> buffer) => Count(inner.Read(buffer));

        int Count(int n)
        {
            read += n;
            if (read > limit) throw over();
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => read; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
