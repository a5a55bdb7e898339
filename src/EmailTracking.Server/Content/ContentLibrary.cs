using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Content;

/// <summary>A failed upload: the HTTP status and what to tell the user.</summary>
public sealed record UploadFailure(int Status, string Title, string Detail);

/// <summary>
/// Takes an upload through its steps — size limit, type from the bytes, conversion to PDF, a check that the PDF is
/// whole and readable, thumbnails — in a work directory of its own, and only then moves the files into the store and
/// adds the library entry. Whatever fails, the work directory is deleted and nothing half-made is listed.
/// </summary>
public sealed class ContentLibrary(AppDbContext db, ContentStore store, OfficeConverter converter, PdfInspector inspector, Thumbnailer thumbnailer, PdfOptimizer optimizer,
    ConversionSlots slots, ContentMetrics metrics, IOptions<ContentOptions> options, TimeProvider clock, ILogger<ContentLibrary> log)
{
    public const string BusyTitle = "The server is busy converting other documents";

    public const string PlanTitle = "Tracked content is a Team-plan feature";

    /// <summary>Null when the user's team may track documents; otherwise the problem to answer (403).</summary>
    public async Task<UploadFailure?> CheckPlanAsync(CurrentUser me, CancellationToken ct)
    {
        var team = await db.Teams.AsNoTracking().Where(t => t.Id == me.TeamId).Select(t => new { t.Name, t.Plan }).FirstAsync(ct);
        if (team.Plan >= Plan.Team) return null;
        return new UploadFailure(StatusCodes.Status403Forbidden, PlanTitle,
            $"Your team '{team.Name}' is on the Solo plan. Document tracking (uploads, tracked document links, page analytics) " +
            "comes with the Team plan: an administrator can move the team to it with `et teams plan --team \"" + team.Name + "\" --plan team`. " +
            "Files attached to an email the normal way are not affected.");
    }

    public async Task<(ContentItem? Item, UploadFailure? Failure)> UploadAsync(CurrentUser me, string? fileName, Stream body,
        bool allowDownload, CancellationToken ct)
    {
        if (await CheckPlanAsync(me, ct) is { } refused) return (null, refused);
        var o = options.Value;
        var work = store.NewWorkDirectory();
        try
        {
            var upload = Path.Combine(work, "upload");
            long size;
            await using (var f = new FileStream(upload, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                size = await CopyLimitedAsync(body, f, o.MaxUploadBytes, ct);
            }
            if (size > o.MaxUploadBytes)
                return (null, new(StatusCodes.Status413PayloadTooLarge, "The file is too large",
                    $"Files up to {Megabytes(o.MaxUploadBytes)} are taken. Compress the document or split it, and upload it again."));

            var sniffed = await SniffAsync(upload, o, ct);
            if (sniffed is null) return (null, Busy());
            if (sniffed.Type is not { } type)
                return (null, new(StatusCodes.Status415UnsupportedMediaType, "This file type is not taken", sniffed.Error!));

            var original = Path.Combine(work, "original" + ContentSniffer.Extension(type));
            File.Move(upload, original);
            var pdf = original;
            if (type != ContentFileType.Pdf)
            {
                var converted = await converter.ConvertAsync(original, type, work, ct);
                if (converted.Busy) return (null, Busy());
                if (converted.PdfPath is null)
                    return (null, new(StatusCodes.Status422UnprocessableEntity, "The document could not be converted", converted.Error!));
                pdf = converted.PdfPath;
            }

            var inspected = await inspector.InspectAsync(pdf, ct);
            var title = type == ContentFileType.Pdf ? "The PDF cannot be shown" : "The converted document cannot be shown";
            if (inspected.Error is not null)
                return (null, new(StatusCodes.Status422UnprocessableEntity, title, inspected.Error));

            // What the viewer shows: each page with only its own resources, so the first page draws from a few ranges.
            // It also mends a page tree whose page counts are wrong; unmended, no viewer opens such a file.
            var display = await optimizer.OptimizeAsync(pdf, inspected, work, ct) ?? pdf;
            if (display == pdf && inspected.PageCountsWrong)
                return (null, new(StatusCodes.Status422UnprocessableEntity, title,
                    $"The PDF's list of pages is damaged: it does not say how many pages it has ({inspected.PageCount}), so viewers cannot open it. " +
                    "Re-export it from the program that made it (or print it to a new PDF) and upload it again."));

            // Rendered from what the viewer shows, so the thumbnails are of the pages recipients see.
            var thumbs = Path.Combine(work, "thumbs");
            var thumbnailCount = await thumbnailer.RenderAsync(display, inspected.PageCount, thumbs, ct);

            var (originalSha, originalSize) = await store.AddAsync(original, ct);
            var (pdfSha, pdfSize) = display == original ? (originalSha, originalSize) : await store.AddAsync(display, ct);
            if (thumbnailCount > 0) store.AddThumbnails(pdfSha, thumbs);

            var item = new ContentItem
            {
                TeamId = me.TeamId,
                UserId = me.Id,
                Name = DisplayName(fileName, type),
                FileType = type,
                OriginalSha256 = originalSha,
                OriginalSize = originalSize,
                PdfSha256 = pdfSha,
                PdfSize = pdfSize,
                PageCount = inspected.PageCount,
                ThumbnailCount = thumbnailCount,
                AllowDownload = allowDownload,
                CreatedAt = clock.GetUtcNow(),
            };
            db.Contents.Add(item);
            await db.SaveChangesAsync(ct);
            log.LogInformation("Content {Id} added: {Type}, {Pages} pages, {Size} bytes", item.Id, type, item.PageCount, originalSize);
            return (item, null);
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { log.LogWarning(e, "Work directory {Dir} not removed", work); }
        }
    }

    /// <summary>
    /// What the file is (<see cref="ContentSniffer"/>); null when it is a zip and no conversion slot came free in time.
    /// A zip is unpacked (to nowhere, up to <see cref="ContentOptions.MaxUnpackedBytes"/>) in a conversion slot: that takes
    /// a core for a while, and uploads arriving together must not each take one at once. The wait ends with the request.
    /// </summary>
    async Task<ContentSniffer.Result?> SniffAsync(string path, ContentOptions o, CancellationToken ct)
    {
        if (!ContentSniffer.IsZip(path)) return ContentSniffer.Sniff(path, o, ct);
        if (!await slots.EnterAsync(ct)) return null;
        try
        {
            using (metrics.Unpacking()) return ContentSniffer.Sniff(path, o, ct);
        }
        finally
        {
            slots.Release();
        }
    }

    UploadFailure Busy()
    {
        log.LogWarning("An upload found no conversion slot within {Timeout}", options.Value.ConversionQueueTimeout);
        return new(StatusCodes.Status503ServiceUnavailable, BusyTitle, slots.BusyText);
    }

    /// <summary>Removes a document: its links answer "removed"; its files go when no other entry uses them.</summary>
    public async Task DeleteAsync(ContentItem item, CancellationToken ct)
    {
        item.DeletedAt = clock.GetUtcNow();
        await db.SaveChangesAsync(ct);
        foreach (var sha in new[] { item.OriginalSha256, item.PdfSha256 }.Distinct())
        {
            var used = await db.Contents.AnyAsync(c => c.DeletedAt == null && (c.OriginalSha256 == sha || c.PdfSha256 == sha), ct);
            if (!used)
            {
                try
                {
                    File.Delete(store.ObjectPath(sha));
                    if (sha == item.PdfSha256) store.RemoveThumbnails(sha);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { log.LogWarning(e, "Stored file {Sha} not removed", sha); }
            }
        }
    }

    /// <summary>Copies at most <paramref name="limit"/> + 1 bytes: one more than the limit says "too large" without reading it all.</summary>
    static async Task<long> CopyLimitedAsync(Stream from, Stream to, long limit, CancellationToken ct)
    {
        var buffer = new byte[81920];
        long total = 0;
        int n;
        while ((n = await from.ReadAsync(buffer, ct)) > 0)
        {
            total += n;
            if (total > limit) return total;
            await to.WriteAsync(buffer.AsMemory(0, n), ct);
        }
        return total;
    }

    static string Megabytes(long bytes) => $"{bytes / (1024.0 * 1024):0.#} MB";

    /// <summary>The most an upload's form may weigh: the file and a megabyte for the rest of the form.</summary>
    public static long MaxFormBytes(long maxUploadBytes) => maxUploadBytes + 1024 * 1024;

    /// <summary>What an upload over <see cref="MaxFormBytes"/>, answered without being read, is told.</summary>
    public static string FormTooLarge(long maxUploadBytes) => $"Nothing was uploaded. Documents may weigh up to {Megabytes(maxUploadBytes)}.";

    /// <summary>The name shown to recipients: no directories or control characters, with the extension of its real type.</summary>
    public static string DisplayName(string? fileName, ContentFileType type)
    {
        var ext = ContentSniffer.Extension(type);
        var name = Path.GetFileName((fileName ?? "").Replace('\\', '/'));
        name = new string([.. name.Where(c => !char.IsControl(c) && c != '/' && c != '"')]).Trim();
        if (name.Length == 0 || name == "." || name == "..") name = "document";
        if (!name.EndsWith(ext, StringComparison.OrdinalIgnoreCase))
        {
            var stem = Path.GetFileNameWithoutExtension(name);
            name = (stem.Length == 0 ? "document" : stem) + ext;
        }
        // Cut between text elements: a cut inside a surrogate pair (an emoji) would leave half a character, which
        // shows as U+FFFD and which PostgreSQL refuses to store.
        if (name.Length > 255) name = Prefix(name, 255 - ext.Length) + ext;
        return name;
    }

    /// <summary>The longest run of whole text elements (user-perceived characters) from the start of <paramref name="s"/> in at most <paramref name="length"/> chars.</summary>
    static string Prefix(string s, int length)
    {
        var end = 0;
        while (end < s.Length)
        {
            var next = end + System.Globalization.StringInfo.GetNextTextElementLength(s, end);
            if (next > length) break;
            end = next;
        }
        return s[..end];
    }
}
